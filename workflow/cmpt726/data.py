"""CIFAR-10 for fine-tuning: the official batches → an .npz of uint8 images, int64 labels and class names; the
validation split, a file of indices into the training images, the same for every variant and seed.
"""

from pathlib import Path

import numpy as np

from . import cifar
from .files import atomic_path, write_json

LAYOUT = cifar.CIFAR10
BATCH_DIR = LAYOUT.folder


def download_cifar10(batch_dir, url: str | None = None, receipt=None) -> str:
    """`cifar.download` of CIFAR-10 from `url`; `receipt` records it. Returns "downloaded" or "found"."""
    status = cifar.download(LAYOUT, batch_dir, url=url)
    if receipt is not None:
        cifar.write_receipt(receipt, LAYOUT, batch_dir, status, url)
    return status


def save_arrays(path, images: np.ndarray, labels: np.ndarray, classes: list[str]) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, images=images, labels=labels, classes=np.array(classes))


def load_arrays(path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    with np.load(path) as f:
        return f["images"], f["labels"], [str(c) for c in f["classes"]]


def _take_subset(images, labels, n, key):
    if n is None:
        return images, labels
    if n > len(labels):
        raise ValueError(f"config key {key}: {n} is more than the {len(labels)} images available")
    missing = sorted(set(range(LAYOUT.classes)) - set(labels[:n].tolist()))
    if missing:  # per-class results and cleanlab need every class
        raise ValueError(f"config key {key}: the first {n} images leave out the classes {missing}; "
                         "choose a larger subset")
    return images[:n], labels[:n]


def prepare_cifar10(batch_dir, train_out, test_out, summary_out, verify=True, subset_train=None,
                    subset_test=None) -> dict:
    """Read the six batches once and write compact train/test arrays (optionally the first N)."""
    batch_dir = Path(batch_dir)
    summary, classes = {}, None
    for split, out, n in [("train", train_out, subset_train), ("test", test_out, subset_test)]:
        images, labels = cifar.read_split(batch_dir, LAYOUT, split, verify)
        classes = classes or cifar.read_classes(batch_dir, LAYOUT, verify)  # after the data files: their md5 first
        images, labels = _take_subset(images, labels, n, f"data.subset.{split}")
        save_arrays(out, images, labels, classes)
        per_class = np.bincount(labels, minlength=LAYOUT.classes).tolist()
        summary[split] = {"images": int(len(labels)), "per_class": per_class}
        print(f"{split}: {len(labels)} images, per class {per_class}")
    summary["classes"] = classes
    summary["subset"] = {"train": subset_train, "test": subset_test}
    write_json(summary_out, summary)
    return summary


def split_train_val(labels: np.ndarray, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices (train, val): `n_val` images held out, stratified by class (largest remainders), from `seed`."""
    labels = np.asarray(labels)
    n = len(labels)
    if not 0 < n_val < n:
        raise ValueError(f"config key training.validation: {n_val} must lie between 1 and {n - 1} "
                         f"(the {n} training images)")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n_val / n
    share = np.floor(exact).astype(int)
    share[np.argsort(-(exact - share), kind="stable")[: n_val - share.sum()]] += 1
    rng = np.random.default_rng(seed)
    val = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, share)]))
    return np.setdiff1d(np.arange(n), val), val


def write_split(train_images, out_path, n_val: int, seed: int) -> dict:
    """The split of rule split_cifar10: indices `train` and `val` into the prepared training images."""
    _, labels, classes = load_arrays(train_images)
    train, val = split_train_val(labels, n_val, seed)
    with atomic_path(out_path, suffix=".npz") as tmp:
        np.savez(tmp, train=train, val=val)
    per_class = np.bincount(labels[val], minlength=len(classes)).tolist()
    print(f"{len(train)} training and {len(val)} validation images (seed {seed}); validation per class {per_class}")
    return {"train": len(train), "val": len(val), "val_per_class": per_class}
