"""The numbers a tiny run produces are pinned: the shared smoke run (conftest.smoke_run: 200 / 100 fake
CIFAR-10 images, a random backbone, variants head and all, one epoch, seed 0 on the CPU) must give the score
files and the report's numbers recorded in tests/data/pinned/. A refactor that changes a number fails here.
Times, memory and paths are left out; floats are compared to 1e-6, predictions and counts exactly. Every x86 CPU
computes them with the same AVX2 kernels (conftest.py); the pins were recorded so."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cmpt726.evaluation import read_scores

PINNED = Path(__file__).parent / "data" / "pinned"
# What differs from run to run or machine to machine, not what the run computed.
VOLATILE = {"seconds", "train_seconds", "peak_rss_mb", "max_rss_mb", "time_ratio", "peak_cuda_mb", "counts",
            "devices", "scored_on", "device", "threads"}


def same(expected, actual, where: str = "") -> list[str]:
    """Where `actual` differs from `expected` (floats to 1e-6 relative or absolute), VOLATILE keys left out."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        keys = (set(expected) | set(actual)) - VOLATILE
        return [d for k in sorted(keys, key=str) for d in same(expected.get(k), actual.get(k), f"{where}.{k}")]
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [d for i, (e, a) in enumerate(zip(expected, actual)) for d in same(e, a, f"{where}[{i}]")]
    if isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return [] if math.isclose(expected, actual, rel_tol=1e-6, abs_tol=1e-6) else [f"{where}: {expected} → {actual}"]
    return [] if expected == actual else [f"{where}: {str(expected)[:200]} → {str(actual)[:200]}"]


@pytest.mark.parametrize("pinned, produced", [("q6_numbers.json", "results/figures/q6/numbers.json"),
                                              ("analysis_numbers.json", "results/analysis/numbers.json")])
def test_the_reports_numbers_are_the_pinned_ones(smoke_run, pinned, produced):
    expected = json.loads((PINNED / pinned).read_text())
    actual = json.loads((smoke_run["dir"] / produced).read_text())
    assert same(expected, actual) == []


@pytest.mark.parametrize("variant", ["head", "all"])
def test_the_score_files_are_the_pinned_ones(smoke_run, variant):
    expected = read_scores(PINNED / "scores" / variant / "seed0.tsv")
    actual = read_scores(smoke_run["dir"] / "results" / "scores" / variant / "seed0.tsv")
    assert (actual["pred"] == expected["pred"]).all() and (actual["label"] == expected["label"]).all()
    assert abs(actual["probs"] - expected["probs"]).max() < 1e-5
    assert abs(actual["loss"] - expected["loss"]).max() < 1e-5


def test_a_changed_number_is_seen():
    pinned = json.loads((PINNED / "q6_numbers.json").read_text())
    changed = json.loads(json.dumps(pinned))
    changed["rows"][0]["accuracy"] += 0.01
    assert same(pinned, changed) == [".rows[0].accuracy: "
                                     f"{pinned['rows'][0]['accuracy']} → {changed['rows'][0]['accuracy']}"]
