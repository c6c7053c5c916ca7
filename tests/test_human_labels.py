"""CIFAR-10H on tiny fake count files: download via a local HTTP server, validation, flags, metrics."""

import functools
import hashlib
import io
import json
import math

import numpy as np
import pytest
from conftest import CLASSES, closed_port_url

from cmpt726.analysis.human_labels import (TSV_COLUMNS, check_alignment, confidence_bins, cross_entropy,
                                           download_counts, human_metrics, human_table,
                                           load_counts, model_vs_humans, read_human_table,
                                           write_human_labels, write_human_table)
from cmpt726.config import schema_default
from cmpt726.data import save_arrays
from cmpt726.evaluation import read_scores, write_scores

UNSURE = schema_default("analysis.human_labels.unsure_below")  # a run's setting: the functions take it


def unanimous(labels, voters=50):
    counts = np.zeros((len(labels), 10), dtype=np.int64)
    counts[np.arange(len(labels)), labels] = voters
    return counts


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def saved(path, counts):
    np.save(path, counts)
    return path


def serve(server, counts) -> str:
    """`counts` served as /cifar10h-counts.npy; their sha256."""
    buffer = io.BytesIO()
    np.save(buffer, counts)
    server.files["/cifar10h-counts.npy"] = buffer.getvalue()
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def test_download_right_checksum(server, tmp_path):
    counts = unanimous(np.arange(20) % 10, voters=51)
    want = serve(server, counts)
    out = tmp_path / "data" / "cifar10h" / "cifar10h-counts.npy"
    assert download_counts(f"{server.url}/cifar10h-counts.npy", want, out) == "downloaded"
    assert np.array_equal(load_counts(out), counts)
    assert sorted(p.name for p in out.parent.iterdir()) == ["cifar10h-counts.npy"]


def test_download_wrong_checksum_leaves_nothing(server, tmp_path):
    got = serve(server, unanimous(np.arange(20) % 10))
    out, url = tmp_path / "data" / "cifar10h-counts.npy", f"{server.url}/cifar10h-counts.npy"
    with pytest.raises(ValueError) as info:
        download_counts(url, "0" * 64, out)
    assert all(s in str(info.value) for s in (str(out), url, got, "0" * 64)), info.value
    assert not out.exists() and list(out.parent.iterdir()) == []  # no temporary file either


@pytest.mark.parametrize("where", ["closed port", "404"])
def test_unreachable_url_says_which_config_keys(server, tmp_path, where):
    url = closed_port_url("c.npy") if where == "closed port" else f"{server.url}/missing.npy"
    out = tmp_path / "d" / "cifar10h-counts.npy"
    with pytest.raises(ConnectionError) as info:
        download_counts(url, "0" * 64, out, timeout=10)
    assert all(s in str(info.value) for s in (url, "data.cifar10h.root", "data.cifar10h.enabled: false")), info.value
    assert not out.exists() and list(out.parent.iterdir()) == []


@pytest.mark.parametrize("case, array, match", [
    ("wrong shape", np.ones((5, 9), dtype=np.int64), r"shape \(5, 9\)"),
    ("1-d", np.ones(10, dtype=np.int64), r"shape \(10,\)"),
    ("floats", np.ones((5, 10)) / 10, "dtype float64"),
    ("negative", np.array([[50] + [0] * 9, [51, -1] + [0] * 8]), "negative counts.*row 1"),
    ("row of zeros", np.array([[50] + [0] * 9, [50] + [0] * 9, [0] * 10]), "no votes.*row 2"),
])
def test_malformed_counts_refused_naming_the_file(tmp_path, case, array, match):
    path = saved(tmp_path / f"{case}.npy", array)
    with pytest.raises(ValueError, match=match) as info:
        load_counts(path)
    assert str(path) in str(info.value)


def test_other_bad_files_refused(tmp_path):
    text = tmp_path / "text.npy"
    text.write_text("not numpy\n")
    with pytest.raises(ValueError, match=f"{text}: not a .npy"):
        load_counts(text)
    npz = tmp_path / "a.npz"
    np.savez(npz, counts=unanimous(np.arange(3)))
    with pytest.raises(ValueError, match=f"{npz}: an .npz"):
        load_counts(npz)
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        load_counts(tmp_path / "missing.npy")


def test_subset_takes_the_first_rows_and_refuses_too_few(tmp_path):
    counts = unanimous(np.arange(12) % 10)
    counts[:, 9] += np.arange(12)  # make rows distinguishable
    path = saved(tmp_path / "c.npy", counts.astype(np.int32))
    got = load_counts(path, n_images=5)
    assert got.dtype == np.int64 and np.array_equal(got, counts[:5])
    with pytest.raises(ValueError, match=f"{path}: 12 rows, but the run has 13 test images"):
        load_counts(path, n_images=13)


def flag_example():
    """8 images, 50 people each; people disagree with the label on 2 and 7, are unsure on 2, 5, 6."""
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    counts = unanimous(labels)
    counts[2, [2, 9]] = [20, 30]   # majority 9 != label 2; top share 0.6 -> unsure
    counts[5, [5, 3]] = [32, 18]   # label wins, top share 0.64 -> unsure only
    counts[6, [6, 0]] = [25, 25]   # a tie including the label: not "disagree"; unsure
    counts[7, [7, 4]] = [10, 40]   # majority 4 != label 7; top share 0.8 -> sure
    return labels, counts


def flagged(table, key):
    return list(np.flatnonzero(table[key]))


def test_flags_exactly_the_chosen_images(tmp_path):
    labels, counts = flag_example()
    table = human_table(counts, labels, unsure_below=UNSURE)
    assert flagged(table, "disagree") == [2, 7] and flagged(table, "unsure") == [2, 5, 6]
    assert flagged(human_table(counts, labels, unsure_below=0.65), "unsure") == [2, 5, 6]
    assert flagged(human_table(counts, labels, unsure_below=0.61), "unsure") == [2, 6]
    assert table["majority"][6] == 6 and table["majority"][2] == 9 and table["agreement"][7] == pytest.approx(0.2)
    assert table["entropy"][0] == 0.0 and table["entropy"][6] == pytest.approx(math.log(2))  # nats

    out = tmp_path / "out" / "human_labels.tsv"
    result = write_human_table(saved(tmp_path / "counts.npy", counts), labels, out, CLASSES, unsure_below=UNSURE)
    assert (result["n_images"], result["n_disagree"], result["n_unsure"]) == (8, 2, 3)
    assert out.read_text().splitlines()[0].split("\t") == TSV_COLUMNS
    back = read_human_table(out)
    assert flagged(back, "disagree") == [2, 7] and flagged(back, "unsure") == [2, 5, 6]
    assert back["human_majority"][2] == "truck" and back["label"][2] == "bird"
    assert np.array_equal(back["votes"], counts) and np.allclose(back["entropy"], table["entropy"], rtol=1e-5)
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:3] + [lines[3].rsplit("\t", 1)[0]] + lines[4:]) + "\n")
    with pytest.raises(ValueError, match=f"{out}: line 4 has 8 columns"):
        read_human_table(out)


def test_counts_for_more_images_than_the_run(tmp_path):
    labels, counts = flag_example()
    path = saved(tmp_path / "counts.npy", np.vstack([counts, unanimous([0, 1, 2])]))  # more rows than the run
    result = write_human_table(path, labels, tmp_path / "h.tsv", CLASSES, unsure_below=UNSURE)
    assert result["n_images"] == 8 and result["n_disagree"] == 2


def test_counts_in_another_order_refused(tmp_path):
    labels = np.arange(40) % 10
    counts = unanimous(labels)
    path = saved(tmp_path / "counts.npy", counts[::-1])
    with pytest.raises(ValueError, match=f"{path}: the human majority matches the official label on only"):
        write_human_table(path, labels, tmp_path / "h.tsv", CLASSES, unsure_below=UNSURE)
    assert not (tmp_path / "h.tsv").exists()
    check_alignment(counts, labels, path)  # the right order passes


def test_cross_entropy_and_accuracy_vs_majority_by_hand():
    labels = np.array([0, 1, 2])
    counts = np.zeros((3, 10), dtype=np.int64)
    counts[0, 0] = 10                 # h = (1, 0, ...)
    counts[1, [0, 1]] = [6, 4]        # h = (0.6, 0.4, ...): majority 0, label 1
    counts[2, [1, 2]] = [2, 8]        # h = (0, 0.2, 0.8, ...)
    probs = np.zeros((3, 10))
    probs[0, [0, 3]] = [0.8, 0.2]
    probs[1, [0, 1, 5]] = [0.5, 0.3, 0.2]
    probs[2, [2, 7]] = [0.6, 0.4]     # p_1 = 0 where h_1 = 0.2: clipped at eps
    eps = 1e-12
    by_hand = -(1.0 * math.log(0.8) + 0.6 * math.log(0.5) + 0.4 * math.log(0.3)
                + 0.2 * math.log(eps) + 0.8 * math.log(0.6)) / 3
    assert cross_entropy(counts / counts.sum(1, keepdims=True), probs) == pytest.approx(by_hand, rel=1e-12)
    m = model_vs_humans(counts, probs, labels)
    assert m["cross_entropy"] == pytest.approx(by_hand, rel=1e-12)
    # predictions 0, 0, 2; human majority 0, 0, 2; labels 0, 1, 2
    assert m["accuracy_vs_majority"] == pytest.approx(100.0) and m["accuracy"] == pytest.approx(200 / 3)
    assert model_vs_humans(counts, probs, labels, eps=1e-6)["cross_entropy"] == pytest.approx(
        by_hand + 0.2 * (math.log(1e-12) - math.log(1e-6)) / 3, rel=1e-12)


def test_confidence_bins_by_hand():
    agreement = np.array([0.3, 0.6, 0.95, 1.0, 1.0])
    labels = np.array([0, 0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [0.4, 0.6], [0.0, 1.0]])
    bins = confidence_bins(agreement, probs, labels, edges=[0, 0.5, 0.9, 1.0])
    assert bins["n"] == [1, 1, 3] and bins["lo"] == [0.0, 0.5, 0.9] and bins["hi"] == [0.5, 0.9, 1.0]
    assert bins["mean_confidence"] == pytest.approx([0.9, 0.5, 0.8])
    assert bins["mean_prob_label"] == pytest.approx([0.9, 0.5, 0.8])
    assert bins["accuracy"] == pytest.approx([100.0, 100.0, 100.0])
    assert bins["mean_human"] == pytest.approx([0.3, 0.6, 2.95 / 3])
    empty = confidence_bins(agreement, probs, labels, edges=[0, 0.2, 0.5, 1.0])
    assert empty["n"] == [0, 1, 4] and empty["mean_confidence"][0] is None


def test_human_metrics_per_variant(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.arange(30) % 10
    counts = unanimous(labels)
    counts[:5, 9] += 60                # people say "truck" on the first five
    path = saved(tmp_path / "counts.npy", counts)
    files = {variant: [tmp_path / f"{variant}_{seed}.tsv" for seed in range(2)] for variant in ("head", "full")}
    for f in files["head"] + files["full"]:
        write_scores(f, labels, rng.dirichlet(np.ones(10), 30), np.zeros(30))
    result = human_metrics(path, files, labels, unsure_below=UNSURE)
    assert result["humans"]["n_disagree"] == 5
    for variant, paths in files.items():
        per_seed = [model_vs_humans(counts, read_scores(p)["probs"], labels) for p in paths]
        v = result["variants"][variant]
        assert [s["path"] for s in v["seeds"]] == [str(p) for p in paths]
        assert v["cross_entropy"] == pytest.approx(np.mean([m["cross_entropy"] for m in per_seed]))
        assert v["accuracy_vs_majority"] == pytest.approx(np.mean([m["accuracy_vs_majority"] for m in per_seed]))
        assert v["cross_entropy_std"] == pytest.approx(np.std([m["cross_entropy"] for m in per_seed], ddof=1))
        assert v["bins"]["n"] == per_seed[0]["bins"]["n"]
    # The ranking by cross-entropy comes with paired intervals: the variant means are the ones above.
    ranking = result["cross_entropy_ranking"]
    assert set(ranking["order"]) == {"head", "full"} and ranking["lowest"] == ranking["order"][0]
    for variant in files:
        row = ranking["rows"][variant]
        assert row["mean"] == pytest.approx(result["variants"][variant]["cross_entropy"])
        assert row["ci_low"] <= row["mean"] <= row["ci_high"]
    other = ranking["rows"][ranking["order"][1]]
    assert other["diff_ci_low"] <= other["diff_to_lowest"] <= other["diff_ci_high"]

    bad, other = tmp_path / "bad.tsv", labels.copy()
    other[3] = 4
    write_scores(bad, other, np.full((30, 10), 0.1), np.zeros(30))
    with pytest.raises(ValueError, match=f"{bad}: labels disagree with the test set on 1 images .first: index 3"):
        human_metrics(path, {"head": files["head"], "x": [bad]}, labels, unsure_below=UNSURE)


def test_rule_refuses_a_counts_file_with_another_sha256_and_writes_nothing(tmp_path):
    """Rule human_labels with data.cifar10h.verify on: a counts file of another sha256 is refused naming the file,
    both hashes and the config key; with the right sha256 (any case) both outputs appear."""
    labels = np.arange(20) % 10
    save_arrays(tmp_path / "test.npz", np.zeros((20, 3, 32, 32), np.uint8), labels, CLASSES)
    counts = saved(tmp_path / "cifar10h-counts.npy", unanimous(labels))
    scores = tmp_path / "scores.tsv"
    probs = np.full((20, 10), 0.01)
    probs[np.arange(20), labels] = 0.91
    write_scores(scores, labels, probs, -np.log(probs[np.arange(20), labels]))
    out_tsv, out_json = tmp_path / "out" / "human_labels.tsv", tmp_path / "out" / "human_labels.json"
    run = functools.partial(write_human_labels, counts, tmp_path / "test.npz", [("v", 0)], [scores], out_tsv, out_json,
                            unsure_below=UNSURE)
    wrong = "0" * 64
    with pytest.raises(ValueError, match=rf"{counts}: sha256 {sha256(counts)}, expected {wrong}; .*"
                                         r"data\.cifar10h\.verify: false"):
        run(sha256=wrong)
    assert not out_tsv.parent.exists() or list(out_tsv.parent.iterdir()) == []
    metrics = run(sha256=sha256(counts).upper())
    assert out_tsv.exists() and json.loads(out_json.read_text()) == json.loads(json.dumps(metrics))
    assert metrics["variants"]["v"]["accuracy"] == 100.0
