"""The benchmark scripts still run (their recorded output in docs/performance.md must stay reproducible):
the grid benchmark end to end on tiny random CIFAR-10 files, with its real Snakemake run."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from conftest import REPO, write_backbone, write_cifar10

pytestmark = pytest.mark.slow


def test_grid_benchmark_runs_and_reports_every_measure(tmp_path):
    folder = write_cifar10(tmp_path / "c10", n_train=160, n_test=64)
    backbone = write_backbone(tmp_path / "backbone.pt")
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks/grid_benchmark.py"), "--cifar10", str(folder),
                           "--backbone", str(backbone), "--train", "160", "--test", "64", "--epochs", "1",
                           "--threads", "2", "--threads-per-job", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["jobs_at_once"] == 2 and result["threads_per_job"] == 1
    assert len(result["throughput"]["rounds"]) == 5 and result["throughput"]["ratio"] > 0
    seconds = result["grid_seconds"]
    for key in ["starter", "workflow_fp32_one_at_a_time", "workflow_fp32", "workflow_bf16", "snakemake_fp32"]:
        assert seconds[key] > 0, key
    assert 0 < seconds["snakemake_startup"] < seconds["snakemake_fp32"]
    assert len(result["accuracy"]) == 8  # the config's grid
    for accuracy in result["accuracy"].values():
        assert all(0 <= a <= 100 for a in accuracy.values())
    for stages in (result["stages_fp32_job_seconds"], result["stages_fp32_one_at_a_time"]):
        assert set(stages) == {"features", "head_training", "full_training", "evaluation"}
        assert all(v > 0 for v in stages.values())
    assert result["peak_rss_mb_train_all"] > 100
    assert all(h > 0 for h in result["extrapolated_full_grid_hours"].values())
    assert "| grid: starter-style / real `snakemake --cores 2`" in proc.stdout


def test_linear_probe_chooses_c_on_validation_and_sets_the_heads_against_it(tmp_path):
    """benchmarks/linear_probe.py on features of a known shape: ten noisy Gaussian classes in 64 dimensions and
    few training images, so that too strong and too weak a penalty both lose on validation; the probe is the
    anchor of the tuned heads."""
    import numpy as np

    rng = np.random.default_rng(0)
    means = rng.normal(0, 1.0, (10, 64))

    def features(path, n):
        labels = np.arange(n) % 10
        np.savez(path, features=(means[labels] + rng.normal(0, 3.0, (n, 64))).astype(np.float32), labels=labels,
                 classes=np.array([f"c{i}" for i in range(10)]))

    features(tmp_path / "train.npz", 300)
    features(tmp_path / "test.npz", 300)
    np.savez(tmp_path / "split.npz", train=np.arange(100, 300), val=np.arange(100))
    (tmp_path / "good.json").write_text(json.dumps({"accuracy": 99.9}))
    (tmp_path / "poor.json").write_text(json.dumps({"accuracy": 20.0}))
    out = tmp_path / "probe.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks/linear_probe.py"), "--features",
                           str(tmp_path / "train.npz"), "--split", str(tmp_path / "split.npz"), "--test-features",
                           str(tmp_path / "test.npz"), "--C", "1e-4", "1e-2", "1", "100", "--json", str(out), "--heads",
                           str(tmp_path / "good.json"), str(tmp_path / "poor.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [t["C"] for t in result["trials"]] == [1e-4, 1e-2, 1, 100]
    accs = [t["val_acc"] for t in result["trials"]]
    assert result["val_acc"] == max(accs) and result["C"] == 1e-2 and not result["chosen_at_grid_edge"]
    assert accs[0] < max(accs) and accs[-1] < max(accs)  # the choice mattered
    assert result["test_acc"] > 60 and result["images"] == {"train": 200, "validation": 100, "test": 300}
    assert [h["at_least_probe_minus_margin"] for h in result["heads"]] == [True, False]
    assert "chosen C" in proc.stdout


def test_halving_vs_grid_runs_both_searches_with_the_workflows_code(tmp_path):
    """benchmarks/halving_vs_grid.py on tiny cached features: both searches run, halving's choice is scored by
    the grid's trial of the same configuration, and the compute is counted in trial epochs."""
    import numpy as np
    import yaml

    from cmpt726.data import prepare_cifar10, write_split
    from cmpt726.config import schema_default
    from cmpt726.features import extract_features

    folder = write_cifar10(tmp_path / "c10", n_train=160, n_test=20, seed=4)
    prepare_cifar10(folder, tmp_path / "train.npz", tmp_path / "test.npz", tmp_path / "summary.json", verify=False)
    backbone = write_backbone(tmp_path / "backbone.pt")
    write_split(tmp_path / "train.npz", tmp_path / "split.npz", n_val=40, seed=0)
    normalize = schema_default("training.normalize")
    extract_features(backbone, tmp_path / "train.npz", tmp_path / "features.npz", normalize, "cpu")
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"tuning": {"space": {"lr": [0.003, 0.03, 0.3, 1.0], "weight_decay": [0.0]},
                                                  "settings": {"batch_size": 16}, "epochs": 4, "min_epochs": 1,
                                                  "eta": 4}}))
    out = tmp_path / "rows.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks/halving_vs_grid.py"), "--configfile",
                           str(REPO / "config.yaml"), str(overlay), "--backbone", str(backbone), "--features",
                           str(tmp_path / "features.npz"), "--split", str(tmp_path / "split.npz"), "--variants", "head",
                           "--out", str(tmp_path / "searches"), "--device", "cpu", "--json", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = json.loads(out.read_text())
    assert (row["halving_trial_epochs"], row["grid_trial_epochs"]) == (4 * 1 + 1 * 3, 4 * 4)
    assert row["compute_ratio"] == 7 / 16 and row["passes"] is False  # more than a third of the grid's epochs
    grid_accs = [json.loads((tmp_path / "searches/grid/head/rung0" / f"trial{k}.json").read_text())["val_acc"]
                 for k in range(4)]
    assert row["grid_val_acc"] == max(grid_accs) and row["halving_choice_in_grid"] in grid_accs
    assert row["halving_val_acc"] == row["halving_choice_in_grid"]  # a continued trial = the grid's trial
    assert row["shortfall"] == pytest.approx(max(grid_accs) - row["halving_choice_in_grid"]) and np.isfinite(
        row["shortfall"])


def test_tuned_twins_compares_the_twins_of_several_runs(tmp_path):
    """benchmarks/tuned_twins.py on two run folders of twins (real score and search files, no fixed variants):
    a twin right on far more images is ahead, and the question between them is answered "yes"."""
    from cmpt726.evaluation import write_scores

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000)

    def twin(folder, variant, right, seeds):
        for seed in seeds:
            hit = rng.random(len(labels)) < right
            pred = np.where(hit, labels, (labels + 1) % 10)
            probs = np.full((len(labels), 10), 0.02)
            probs[np.arange(len(labels)), pred] = 0.82
            path = folder / "results" / "scores" / f"{variant}-tuned" / f"seed{seed}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_scores(path, labels, probs, np.full(len(labels), 0.5))
        search = folder / "results" / "tuning" / variant / "search.json"
        search.parent.mkdir(parents=True, exist_ok=True)
        search.write_text(json.dumps({"config": {"lr": 0.1}, "val_acc": 100 * right, "kept_epoch": 3, "epochs": 3,
                                      "converged": {"last_fifth_rise": None}}))

    twin(tmp_path / "gpu", "all_augment", 0.9, [0, 1, 2])
    twin(tmp_path / "gpu", "all", 0.7, [0, 1, 2])
    twin(tmp_path / "cpu", "head", 0.5, [0, 1])
    test_set = tmp_path / "cpu" / "results" / "data" / "cifar10" / "test.npz"  # the labels the scores are checked on
    test_set.parent.mkdir(parents=True)
    np.savez(test_set, images=np.zeros((len(labels), 3, 32, 32), np.uint8), labels=labels,
             classes=np.array([str(k) for k in range(10)]))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"report": {"comparisons": [
        {"a": "all_augment", "b": "all", "asks": "Does augmentation help?"},
        {"a": "all", "b": "head", "asks": "Does fine-tuning everything beat the head?"},
        {"a": "all_dropout", "b": "all", "asks": "Does dropout help?"}]}}))  # no such twin: not asked
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks/tuned_twins.py"), str(tmp_path / "gpu"),
                           str(tmp_path / "cpu"), "--configfile", str(config)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| all") or line.startswith("| head")]
    assert [r.split(" | ")[0] for r in rows[:3]] == ["| all_augment-tuned", "| all-tuned", "| head-tuned"]
    assert "| Does augmentation help? (all_augment-tuned − all-tuned) | +2" in proc.stdout
    assert proc.stdout.count("| yes |") == 2 and "dropout" not in proc.stdout
    assert "verdict: top all_augment-tuned, best all_augment-tuned" in proc.stdout
    truncated = tmp_path / "gpu" / "results" / "scores" / "all-tuned" / "seed1.tsv"
    truncated.write_text("".join(truncated.read_text().splitlines(keepends=True)[:1500]))
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks/tuned_twins.py"), str(tmp_path / "gpu"),
                           str(tmp_path / "cpu"), "--configfile", str(config)], capture_output=True, text=True)
    assert proc.returncode != 0 and f"{truncated}: 1499 rows, expected 2000" in proc.stderr


def test_near_duplicates_check_samples_blind_records_and_scores(tmp_path):
    """benchmarks/near_duplicates_check.py on a tiny finished run: `sample` draws from every stratum and writes
    sheets without distances; the filled TSV `record`s as a sample the workflow's check_sample reads; `score`
    prints the precision and recall that follow from the verdicts."""
    import csv

    from cmpt726.analysis import near_duplicates as nd
    from cmpt726.io import write_json, write_tsv

    run = tmp_path / "run"
    rng = np.random.default_rng(0)
    threshold, distances = 0.5, [0.3] * 40 + [0.55] * 30 + [0.63] * 30 + [0.7] * 30 + [1.0] * 70
    rows = [[i, 1000 + i, d, 1000 + i, 0.9, int(d <= threshold)] for i, d in enumerate(distances)]
    write_tsv(run / "results/analysis/near_duplicates.tsv", nd.COLUMNS, rows)
    write_json(run / "results/analysis/near_duplicates.json", {"threshold": threshold})
    for split, n in [("train", 1200), ("test", len(distances))]:
        (run / "results/data/cifar10").mkdir(parents=True, exist_ok=True)
        np.savez(run / f"results/data/cifar10/{split}.npz", images=rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8))
    script = [sys.executable, str(REPO / "benchmarks/near_duplicates_check.py")]
    subprocess.run([*script, "sample", str(run), str(tmp_path / "sheets")], check=True, capture_output=True)
    with open(tmp_path / "sheets/to-check.tsv", newline="") as fh:
        drawn = list(csv.DictReader(fh, delimiter="\t"))
    assert {d["stratum"] for d in drawn} == {"flagged", "band1", "band2", "band3"}
    assert len(drawn) == 90 and (tmp_path / "sheets/sheet1.png").stat().st_size > 0
    for d in drawn:  # every flagged pair a copy, the bands none
        d["verdict"] = "same" if d["stratum"] == "flagged" else "different"
    with open(tmp_path / "filled.tsv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(drawn[0]), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(drawn)
    subprocess.run([*script, "record", str(run), str(tmp_path / "filled.tsv"), "--out", str(tmp_path / "s.json")],
                   check=True, capture_output=True)
    proc = subprocess.run([*script, "score", str(run), str(tmp_path / "s.json")], check=True, capture_output=True,
                          text=True)
    assert "precision of the flag: 100.0 %" in proc.stdout and "recall: 100.0 %" in proc.stdout
