"""The product's benchmark scripts still run (docs/performance.md gives their commands): the grid benchmark end
to end on tiny random CIFAR-10 files with its real Snakemake run, the linear probe, halving against the grid."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
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
