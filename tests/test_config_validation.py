"""Bad configs are rejected while Snakemake reads the Snakefile, before any job, naming the key."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import make_project, smoke_config
from workflow_helpers import leftovers, snakemake


def _set(path: str, value):
    """An edit that sets config[a][b]... = value for path 'a.b...' (creating dicts on the way)."""

    def edit(config):
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return edit


# (id, edit, text the error must contain: the key path)
BAD_CONFIGS = [
    # wrong types
    ("lr-string", _set("training.lr", "fast"), "training.lr"),
    ("verify-string", _set("data.cifar10.verify", "yes"), "data.cifar10.verify"),
    ("seeds-not-list", _set("seeds", 0), "seeds"),
    # zero or negative epochs / lr / batch size (defaults and variant overrides)
    ("epochs-zero", _set("training.epochs", 0), "training.epochs"),
    ("variant-lr-negative", _set("variants.head.lr", -0.01), "variants.head.lr"),
    ("variant-batch-size-zero", _set("variants.all.batch_size", 0), "variants.all.batch_size"),
    # unknown train mode
    ("train-mode-unknown", _set("variants.head.train", "frozen"), "variants.head.train"),
    # unknown keys, at every level
    ("unknown-top-level", _set("epochs", 3), "epochs"),
    ("unknown-data-key", _set("data.cifar10.rooot", "x"), "data.cifar10.rooot"),
    ("unknown-head-key", _set("training.head.widths", [64]), "training.head.widths"),
    ("unknown-variant-key", _set("variants.all.lr_rate", 0.1), "variants.all.lr_rate"),
    ("unknown-variant-head-key", _set("variants.all.head", {"dropuot": 0.1}), "variants.all.head.dropuot"),
    # duplicate seeds
    ("duplicate-seeds", _set("seeds", [0, 1, 0]), "seeds"),
    # cross-key checks
    ("gallery-variant-unknown", _set("report.gallery_variant", "nope"), "report.gallery_variant"),
]


@pytest.fixture(scope="module")
def rejections(tiny_inputs, tmp_path_factory):
    """Every bad config run at once (a few Snakemake processes in parallel): case id -> (process, workdir)."""
    root = tmp_path_factory.mktemp("bad-configs")

    def attempt(case):
        name, edit, _ = case
        config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
        edit(config)
        workdir = make_project(root / name, config)
        return name, (snakemake(workdir, "--cores", "1", check=False, timeout=300), workdir)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(attempt, BAD_CONFIGS))


@pytest.mark.parametrize("case, key", [pytest.param(i, k, id=i) for i, _, k in BAD_CONFIGS])
def test_bad_config_is_rejected_before_any_job(rejections, case, key):
    proc, workdir = rejections[case]
    assert proc.returncode != 0, proc.stderr[-2000:]
    assert f"config key {key}" in proc.stderr, proc.stderr[-2000:]
    assert "Building DAG" not in proc.stderr and "rule " not in proc.stderr, "jobs were planned"
    assert leftovers(workdir / "results") == []


@pytest.mark.slow
def test_subset_larger_than_the_data_fails_in_prepare_without_output(tiny_inputs, tmp_path):
    """Only reading the data tells how many images there are: the prepare job refuses, naming the key."""
    config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
    config["data"]["subset"] = {"train": 100, "test": 10_000}  # the tiny test split has 100 images
    workdir = make_project(tmp_path / "project", config)
    proc = snakemake(workdir, "--cores", "1", "results/data/cifar10/summary.json", check=False, timeout=300)
    assert proc.returncode != 0
    assert "config key data.subset.test: 10000 is more than the 100 images available" in proc.stderr
    # train.npz was written before the test split was read: the failed job's outputs are removed.
    assert [p for p in leftovers(workdir / "results") if not p.startswith(("logs/", "benchmarks/"))] == []
