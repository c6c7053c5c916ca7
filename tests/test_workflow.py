"""Real Snakemake runs of the DAG: the plan for the default config, and the whole smoke run."""

import json
import re
import shutil

import numpy as np
import pytest

from conftest import REPO, snakemake
from cmpt726.evaluation import SCORE_COLUMNS, read_scores


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Rule → job count from the 'Job stats' table that `snakemake -n` prints."""
    table = dry_run_output.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M) if m[1] != "total"}


def test_default_config_plans_every_variant_and_seed_and_one_feature_cache(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    # The shipped config tunes: every variant also gets its tuned twin, a search (successive halving per
    # variant, 12 configurations for 2 epochs, 4 for 6, 1 for 15; head_1ep: 12 for 1) and its recipe twin.
    proc = snakemake(tmp_path, "-n", "--cores", "2")
    tuned = job_counts(proc.stdout + proc.stderr)
    assert tuned["train_variant"] == 3 * 10 * 3 and tuned["evaluate_variant"] == 3 * 10 * 3
    assert tuned["tuning_trial"] == 9 * (12 + 4 + 1) + 12 and tuned["tuning_choice"] == 10
    assert tuned["plot_tuning"] == 1
    # tuning.enabled: false is the assignment's grid alone
    proc = snakemake(tmp_path, "-n", "--cores", "2", "--config", 'tuning={"enabled": false}')
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts["train_variant"] == 10 * 3  # ten variants, three seeds
    assert counts["evaluate_variant"] == 10 * 3
    assert "tuning_trial" not in counts and "plot_tuning" not in counts
    assert counts["cache_features"] == 2  # train + test, shared by the four frozen-backbone variants
    assert counts["split_cifar10"] == 1  # one validation split for every variant and seed
    for rule in ("label_issues", "human_labels", "download_cifar10h", "near_duplicates", "summarize_analyses",
                 "download_cifar10", "fetch_backbone", "report_html", "report_pdf"):
        assert counts[rule] == 1, rule
    assert not (tmp_path / "results").exists()


def test_smoke_run_writes_complete_score_files(smoke_run):
    results = smoke_run["dir"] / "results"
    for variant in ("head", "all"):
        path = results / "scores" / variant / "seed0.tsv"
        assert path.read_text().splitlines()[0].split("\t") == SCORE_COLUMNS
        scores = read_scores(path, expected_rows=100)
        assert np.allclose(scores["probs"].sum(1), 1.0, atol=1e-4)
        assert np.array_equal(scores["pred"], scores["probs"].argmax(1))
        labels = np.load(results / "data/cifar10/test.npz")["labels"]
        assert np.array_equal(scores["label"], labels)
        metrics = json.loads((results / "metrics" / variant / "seed0.json").read_text())
        assert metrics["n"] == 100
        assert metrics["accuracy"] == pytest.approx(100 * np.mean(scores["pred"] == scores["label"]))
        assert np.array(metrics["confusion"]).sum() == 100
        epochs = (results / "metrics" / variant / "seed0.epochs.tsv").read_text().splitlines()
        assert epochs[0].split("\t") == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]
        assert len(epochs) == 2  # header + 1 epoch
        assert not (results / "models" / variant / "seed0.resume.pt").exists()  # removed once finished


def test_smoke_run_every_rule_logs_and_benchmarks(smoke_run):
    results = smoke_run["dir"] / "results"
    for rule in ("prepare_cifar10", "import_backbone", "report_html", "report_pdf"):
        assert (results / "logs" / f"{rule}.log").exists(), rule
        assert (results / "benchmarks" / f"{rule}.tsv").exists(), rule
    assert (results / "benchmarks/train/all/seed0.tsv").exists()
    assert "accuracy" in (results / "logs/evaluate/all/seed0.log").read_text()


def test_smoke_run_builds_the_report_pdf(smoke_run):  # report.html: tests/test_report.py
    pdf = (smoke_run["dir"] / "report/report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 5000


def test_frozen_variants_train_on_the_shared_feature_cache(smoke_run):
    log = smoke_run["log"]
    assert log.count("rule cache_features") == 2
    features = list((smoke_run["dir"] / "results/features").glob("*/train.npz"))
    assert len(features) == 1 and np.load(features[0])["features"].shape == (200, 64)
