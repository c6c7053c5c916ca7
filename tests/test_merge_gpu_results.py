"""benchmarks/merge_gpu_results.sh: GPU-trained results into a run folder, never overwriting what is there."""

from __future__ import annotations

import os
import subprocess

from conftest import REPO


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_merge_copies_results_keeps_mtimes_and_never_overwrites(tmp_path):
    gpu, run = tmp_path / "gpu" / "results", tmp_path / "run"
    _write(gpu / "metrics/all/seed0.json", "gpu metrics")
    _write(gpu / "tuning/all/rung0/trial0.json", "trial")
    _write(gpu / "logs/train/all/seed0.log", "log")
    _write(gpu / "data/cifar10/test.npz", "data the run makes itself")
    _write(gpu / "scores/all/seed0.tsv", "gpu scores")
    os.utime(gpu / "metrics/all/seed0.json", (1_000_000_000, 1_000_000_000))
    _write(run / "results/scores/all/seed0.tsv", "the user's own scores")
    _write(run / "results/metrics/head/seed0.json", "head")

    proc = subprocess.run(["bash", str(REPO / "benchmarks/merge_gpu_results.sh"), str(run), str(gpu)],
                          capture_output=True, text=True, check=True)

    out = run / "results"
    assert (out / "metrics/all/seed0.json").read_text() == "gpu metrics"
    assert (out / "metrics/all/seed0.json").stat().st_mtime == 1_000_000_000  # the tar's times, for --touch
    assert (out / "tuning/all/rung0/trial0.json").read_text() == "trial"
    assert (out / "logs/train/all/seed0.log").read_text() == "log"
    assert not (out / "data").exists()  # the run folder makes its own data
    assert (out / "scores/all/seed0.tsv").read_text() == "the user's own scores"
    assert f"kept (differs, not overwritten): {out}/scores/all/seed0.tsv" in proc.stdout
    assert (out / "metrics/head/seed0.json").read_text() == "head"
