"""Experiments side by side (cmpt726.compare_runs): the comparison page and the runs it refuses."""

import base64
import os
import re

import numpy as np
import pytest
import torch
import yaml
from workflow_helpers import copy_project, snakemake

from cmpt726 import compare_runs as compare, stats
from cmpt726.evaluation import read_scores
from cmpt726.files import file_digest, read_json, weights_digest
from cmpt726.text import signed


def _fake_run(name, settings, seeds):
    rows = [{"name": v, "seed_list": seeds[v]} for v in settings]
    numbers = {"variant_settings": settings, "rows": rows, "seeds": sorted({s for v in seeds.values() for s in v}),
               "alpha": 0.05, "replicates": 100, "devices": ["cpu"], "backbone_file": None}
    return {"name": name, "numbers": numbers, "n_test": 10, "test_digest": "0" * 64,
            "data": {"train": {"images": 20}, "subset": {"train": None, "test": None}}}


def test_a_changed_default_is_listed_once_and_a_variant_change_under_its_variant():
    base = {"lr": 0.01, "batch_size": 32, "head": {"hidden": []}}
    one = _fake_run("one", {"head": base, "all": base}, {"head": [0], "all": [0]})
    two = _fake_run("two", {"head": {**base, "batch_size": 64, "lr": 0.05}, "all": {**base, "batch_size": 64},
                            "extra": base}, {"head": [0, 1], "all": [0, 1], "extra": [0]})
    diff = compare.settings_differences([one, two])
    assert diff["common"] == [{"key": "batch_size", "cells": ["32", "64"]}]
    assert diff["per_variant"] == [{"variant": "head", "rows": [{"key": "lr", "cells": ["0.01", "0.05"]}]}]
    assert diff["only_in"] == [{"variant": "extra", "in": ["two"]}]
    rows = {r["key"]: r for r in diff["global"]}
    assert rows["variants"]["differs"] and rows["seeds"]["cells"] == ["0", "0, 1"]  # seeds: here, not per variant


def test_several_seeds_are_compared_by_the_run_level_test_with_holm_over_the_page():
    rng = np.random.default_rng(0)
    good = rng.random((3, 400)) < 0.9  # three seeds, ~90 % right
    poor = rng.random((1, 400)) < 0.6  # one seed, ~60 % right
    runs = [{"name": "first", "correct": {"a": poor, "b": good[:1]}},
            {"name": "second", "correct": {"a": good, "b": good[:1], "c": good}}]
    result = compare.paired_tests(runs, alpha=0.05, smallest_effect=0.5)
    tests = {t["variant"]: t for t in result["tests"]}
    assert set(tests) == {"a", "b"}  # c is in one experiment only
    a, b = tests["a"], tests["b"]
    assert (a["a"], a["b"], a["test"]) == ("second", "first", stats.RUN_LEVEL_TEST)
    assert a["diff_points"] == pytest.approx(100 * (good.mean() - poor.mean())) and a["significant"]
    assert b["test"] == stats.MCNEMAR_TEST and b["diff_points"] == 0 and not b["significant"]
    assert [a["p_adjusted"], b["p_adjusted"]] == stats.holm([a["p"], b["p"]])


def test_weights_digest_sees_the_weights_not_the_file(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    torch.save(state, tmp_path / "a.pt")
    torch.save(state, tmp_path / "b.pt")
    torch.save({"w": state["w"] + 1}, tmp_path / "c.pt")
    assert file_digest(tmp_path / "a.pt") != file_digest(tmp_path / "b.pt")  # torch's random serialization id
    assert weights_digest(tmp_path / "a.pt") == weights_digest(tmp_path / "b.pt")
    assert weights_digest(tmp_path / "a.pt") != weights_digest(tmp_path / "c.pt")


def test_refuses_a_missing_folder(smoke_run, tmp_path):
    out = tmp_path / "cmp.html"
    with pytest.raises(compare.CompareError, match="nowhere: no such experiment folder"):
        compare.write_comparison([smoke_run["dir"], tmp_path / "nowhere"], out)
    assert not out.exists()


def test_refuses_an_unfinished_run_naming_it(smoke_run, tmp_path, capsys):
    other = copy_project(smoke_run["dir"], tmp_path / "exp2")
    (other / compare.NUMBERS).unlink()
    out = tmp_path / "cmp.html"
    assert compare.main([str(smoke_run["dir"]), str(other), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{other}: {compare.NUMBERS} is missing" in err and "snakemake" in err
    assert not out.exists()


def test_refuses_a_run_snakemake_marks_incomplete(smoke_run, tmp_path):
    other = copy_project(smoke_run["dir"], tmp_path / "exp2")
    mark = base64.urlsafe_b64encode(b"results/scores/head/seed0.tsv").decode()
    (other / ".snakemake" / "incomplete").mkdir(parents=True, exist_ok=True)
    (other / ".snakemake" / "incomplete" / mark).write_text("")
    with pytest.raises(compare.CompareError, match=r"exp2: .*incomplete \(results/scores/head/seed0.tsv\)"):
        compare.comparison_context([smoke_run["dir"], other])


def test_refuses_runs_on_other_test_images(smoke_run, tmp_path):
    other = copy_project(smoke_run["dir"], tmp_path / "exp2")
    path = other / compare.TEST_IMAGES
    with np.load(path) as f:
        arrays = dict(f)
    arrays["images"][0] ^= 1  # one pixel of one image: another test set, same labels
    np.savez(path, **arrays)
    with pytest.raises(compare.CompareError, match="exp2 was scored on other test images than"):
        compare.comparison_context([smoke_run["dir"], other])


@pytest.mark.slow
def test_two_real_runs_side_by_side(smoke_run, tmp_path):
    exp1 = smoke_run["dir"]
    exp2 = copy_project(smoke_run["dir"], tmp_path / "tuned")
    config = yaml.safe_load((exp2 / "config.yaml").read_text())
    assert config["variants"]["head"] == {"train": "head"} and config["training"]["lr"] == 0.01
    config["variants"]["head"]["lr"] = 0.5
    (exp2 / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    # Only what the page reads: head retrains, compare_variants reruns (the analyses and the report are not needed).
    snakemake(exp2, "--cores", "2", compare.NUMBERS)

    out = tmp_path / "pages" / "comparison.html"
    context = compare.write_comparison([exp1, exp2], out, names=["assignment", "tuned"])
    html = out.read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))

    # The differing setting, under its variant; the unchanged variant is said to be identical.
    assert context["settings"]["per_variant"] == [
        {"variant": "head", "rows": [{"key": "lr", "cells": ["0.01", "0.5"]}]}]
    assert re.search(r"head lr 0.01 0.5", text)
    assert "Settings identical : all" in text or "Settings identical: all" in text
    # Each (experiment, variant)'s accuracy and interval, as that run's report has them.
    for folder, name in [(exp1, "assignment"), (exp2, "tuned")]:
        for row in read_json(folder / compare.NUMBERS)["rows"]:
            assert f"{name} 1 {row['accuracy']:,.2f} [{row['ci_low']:,.2f}, {row['ci_high']:,.2f}] wilson" in text
    # The paired tests, one per shared variant, oriented later − earlier: McNemar on the score files, Holm over 2.
    tests = {t["variant"]: t for t in context["tests"]["tests"]}
    assert set(tests) == {"head", "all"}
    labels = {}
    for variant in ("head", "all"):
        a, b = (read_scores(f / "results/scores" / variant / "seed0.tsv") for f in (exp2, exp1))
        expected = stats.mcnemar_exact(a["pred"] == a["label"], b["pred"] == b["label"])
        t = tests[variant]
        assert (t["a"], t["b"], t["test"]) == ("tuned", "assignment", stats.MCNEMAR_TEST)
        assert t["mcnemar"] == expected
        labels[variant] = t
    assert [t["p_adjusted"] for t in (labels["head"], labels["all"])] == stats.holm(
        [labels["head"]["p"], labels["all"]["p"]])
    all_ = labels["all"]  # the same model in both folders: no difference at all
    assert all_["diff_points"] == 0 and all_["mcnemar"] == {"b": 0, "c": 0, "p": 1.0}
    assert "all tuned assignment 1 / 1 0.00 [0.00, 0.00] mcnemar exact 1.000 1.000 not distinguishable" in text
    head = labels["head"]
    assert (f"head tuned assignment 1 / 1 {signed(head['diff_points'])} "
            f"[{signed(head['ci_low'])}, {signed(head['ci_high'])}] mcnemar exact") in text
    assert "-0.00" not in text
    # The page links each run's report relative to itself.
    assert f'href="{os.path.relpath(exp2 / "report" / "report.html", out.parent)}"' in html
    # and names each folder relative to itself too: no path of the machine that made it
    assert f"<code>{os.path.relpath(exp2, out.parent)}</code>" in html and str(tmp_path) not in html
