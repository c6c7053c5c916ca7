"""Tiny fake inputs in the real formats, for a fully offline trial of the workflow and for the tests.

    python -m cmpt726.fake_data .test/data       # then: snakemake --cores 2 --directory .test
"""

import argparse
import pickle
from pathlib import Path

import numpy as np

from .cifar import safe_load

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root: Path, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """A CIFAR-10 folder in the real pickle format (5 train batches + test batch + meta) under `root`."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
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
    """Fake CIFAR-10H counts for the test batch under `cifar10`: most votes for the image's label."""
    rng = np.random.default_rng(seed)
    with open(Path(cifar10) / "test_batch", "rb") as fh:
        labels = np.asarray(safe_load(fh)["labels"])  # the reader that runs no code
    counts = np.zeros((len(labels), 10), dtype=np.int64)
    for i, label in enumerate(labels):
        agree = rng.integers(votes // 2 + 5, votes + 1)
        counts[i, label] = agree
        counts[i] += np.bincount(rng.integers(0, 10, votes - agree), minlength=10)
    Path(folder).mkdir(parents=True, exist_ok=True)
    np.save(Path(folder) / "cifar10h-counts.npy", counts)
    return Path(folder) / "cifar10h-counts.npy"


def write_backbone(path: Path, seed: int = 0) -> Path:
    """A randomly initialised CIFAR-100 ResNet-20 state_dict, loadable like the published file."""
    import torch

    from .models import cifar_resnet20

    torch.manual_seed(seed)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(cifar_resnet20(100).state_dict(), path)
    return Path(path)


def write_all(folder: Path, n_train: int = 200, n_test: int = 100, seed: int = 0) -> dict:
    folder = Path(folder)
    batches = write_cifar10(folder / "cifar10", n_train, n_test, seed)
    return {"cifar10": batches, "cifar10h": write_cifar10h(folder / "cifar10h", batches, seed),
            "backbone": write_backbone(folder / "backbone.pth", seed)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="where to write cifar10/, backbone.pth and cifar10h/ (e.g. .test/data)")
    parser.add_argument("--train", type=int, default=200, help="training images (default 200)")
    parser.add_argument("--test", type=int, default=100, help="test images (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name, path in write_all(Path(args.folder), args.train, args.test, args.seed).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
