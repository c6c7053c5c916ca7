"""Tiny real-format data made on the fly: CIFAR-10 pickle batches and a chenyaofo-shaped checkpoint."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root: Path, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """A CIFAR-10 folder in the real pickle format (5 train batches + test batch + meta).

    The images carry a class-dependent colour so that a model can learn something.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(n, label):
        labels = rng.integers(0, 10, n)
        base = (labels[:, None] * 25).astype(np.int16)
        data = np.clip(base + rng.integers(-40, 40, (n, 3072)), 0, 255).astype(np.uint8)
        return {"batch_label": label, "labels": labels.tolist(), "data": data,
                "filenames": [f"img_{label}_{i}.png" for i in range(n)]}

    sizes = np.full(5, n_train // 5)
    sizes[: n_train % 5] += 1
    for i, n in enumerate(sizes, start=1):
        with open(folder / f"data_batch_{i}", "wb") as fh:
            pickle.dump(batch(int(n), f"training batch {i} of 5"), fh)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump(batch(n_test, "testing batch 1 of 1"), fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": CLASSES, "num_cases_per_batch": n_train // 5, "num_vis": 3072}, fh)
    return folder


def write_cifar10h(folder: Path, cifar10: Path, seed: int = 0, votes: int = 51) -> Path:
    """A fake CIFAR-10H counts file for the test batch under `cifar10` (…/cifar-10-batches-py): most people
    choose the image's label, a few another class (never the real CIFAR-10H, which tests may not use)."""
    rng = np.random.default_rng(seed)
    with open(cifar10 / "test_batch", "rb") as fh:
        labels = np.asarray(pickle.load(fh, encoding="latin1")["labels"])
    counts = np.zeros((len(labels), 10), dtype=np.int64)
    for i, label in enumerate(labels):
        agree = rng.integers(votes // 2 + 5, votes + 1)
        counts[i, label] = agree
        counts[i] += np.bincount(rng.integers(0, 10, votes - agree), minlength=10)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "cifar10h-counts.npy", counts)
    return folder / "cifar10h-counts.npy"


def write_backbone(path: Path, seed: int = 0) -> Path:
    import torch

    from cmpt726.models import cifar_resnet20

    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(cifar_resnet20(100).state_dict(), path)
    return path


def smoke_config(data_root: Path, backbone: Path, **overrides) -> dict:
    """The default config.yaml, shrunk: 2 variants, 1 epoch, the tiny data, a local backbone."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["data"]["cifar10"] = {"root": str(data_root), "verify": False}
    config["data"]["cifar10h"] = {"enabled": True, "root": str(data_root.parent / "cifar10h"), "verify": False}
    config["backbone"] = {"source": "path", "path": str(backbone)}
    config["training"].update(epochs=1, batch_size=32, lr=0.01, validation=40)
    config["seeds"] = [0]
    config["variants"] = {"head": {"train": "head"}, "all": {"train": "all"}}
    config["report"]["gallery_variant"] = "all"
    config["device"] = "cpu"
    for key, value in overrides.items():
        config[key] = value
    return config


def run_snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow")}
    proc = subprocess.run([*SNAKEMAKE, "-s", str(REPO / "Snakefile"), *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    write_cifar10(root / "cifar10", n_train=200, n_test=100)
    write_cifar10h(root / "cifar10h", root / "cifar10" / "cifar-10-batches-py")
    write_backbone(root / "backbone.pth")
    return root


def make_project(workdir: Path, config: dict) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return workdir


@pytest.fixture(scope="session")
def smoke_run(tiny_inputs, tmp_path_factory):
    """One real Snakemake run of the whole DAG on the tiny data, shared by the tests that read it."""
    import time

    workdir = make_project(tmp_path_factory.mktemp("smoke"),
                           smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth"))
    tic = time.perf_counter()
    proc = run_snakemake(workdir, "--cores", "2")
    return {"dir": workdir, "seconds": time.perf_counter() - tic, "log": proc.stderr}
