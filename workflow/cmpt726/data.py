"""CIFAR-10: download (torchvision, md5-checked), read the python pickle batches, prepare compact arrays.

torchvision's CIFAR10 class refuses any folder whose md5 does not match, so reading is
our own: it checks the md5 when asked (`verify`), and always the shapes and labels.
The prepared file is an uncompressed .npz of uint8 images (N, 3, 32, 32) and int64
labels, loaded into memory by training; normalisation happens per batch on the device.
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .io import atomic_path, write_json

BATCH_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]
META = "batches.meta"
NUM_CLASSES = 10


def official_md5(dataset: str = "CIFAR10") -> dict[str, str]:
    """The md5 of each official file, as torchvision checks them (one source of truth); CIFAR10 or CIFAR100."""
    import torchvision.datasets

    cls = getattr(torchvision.datasets, dataset)
    return dict(cls.train_list + cls.test_list + [[cls.meta["filename"], cls.meta["md5"]]])


def md5sum(path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_cifar10(batch_dir, dataset: str = "CIFAR10") -> None:
    """Download and extract into `batch_dir` (…/cifar-10-batches-py; …/cifar-100-python for dataset
    CIFAR100) via torchvision; all or nothing."""
    import torchvision.datasets

    cls = getattr(torchvision.datasets, dataset)
    batch_dir = Path(batch_dir)
    if batch_dir.exists():
        raise FileExistsError(f"{batch_dir} exists; refusing to overwrite it (point data.{dataset.lower()}.root "
                              "at it instead)")
    batch_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=batch_dir.parent, prefix=".download-") as tmp:
        cls(tmp, train=True, download=True)  # checks the archive's md5, then every batch's
        cls(tmp, train=False, download=False)
        shutil.move(str(Path(tmp) / cls.base_folder), batch_dir)


def _unpickle(path) -> dict:
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh, encoding="latin1")
    except FileNotFoundError:
        raise FileNotFoundError(f"CIFAR-10 file missing: {path}") from None
    except Exception as error:
        raise ValueError(f"{path} is not a CIFAR python pickle ({type(error).__name__}: {error})") from error


def read_batches(batch_dir, names, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 from CIFAR-10 pickle batches."""
    batch_dir = Path(batch_dir)
    md5 = official_md5() if verify else {}
    images, labels = [], []
    for name in names:
        path = batch_dir / name
        if verify:
            if not path.exists():
                raise FileNotFoundError(f"CIFAR-10 file missing: {path}")
            got = md5sum(path)
            if got != md5[name]:
                raise ValueError(f"{path}: md5 {got} is not the official {md5[name]} "
                                 "(corrupt or not the official file; set data.cifar10.verify: false to read it anyway)")
        batch = _unpickle(path)
        if "data" not in batch or "labels" not in batch:
            raise ValueError(f"{path}: a CIFAR-10 batch needs 'data' and 'labels' entries, found {sorted(batch)}")
        data = np.asarray(batch["data"])
        lab = np.asarray(batch["labels"], dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"{path}: 'data' must be uint8 of shape (N, 3072), found {data.dtype} {data.shape}")
        if lab.shape != (data.shape[0],):
            raise ValueError(f"{path}: {lab.shape[0]} labels for {data.shape[0]} images")
        if lab.size and (lab.min() < 0 or lab.max() >= NUM_CLASSES):
            raise ValueError(f"{path}: labels must lie in 0..{NUM_CLASSES - 1}, found {lab.min()}..{lab.max()}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(lab)
    return np.concatenate(images), np.concatenate(labels)


def class_names(batch_dir) -> list[str]:
    meta = batch_dir / META
    if meta.exists():
        return list(_unpickle(meta)["label_names"])
    return [f"class{i}" for i in range(NUM_CLASSES)]


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
    return images[:n], labels[:n]


def prepare_cifar10(batch_dir, train_out, test_out, summary_out, verify=True, subset_train=None, subset_test=None) -> dict:
    """Read the six batches once and write compact train/test arrays (optionally the first N)."""
    batch_dir = Path(batch_dir)
    classes = class_names(batch_dir)
    summary = {}
    for split, names, out, n in [("train", TRAIN_BATCHES, train_out, subset_train),
                                 ("test", TEST_BATCHES, test_out, subset_test)]:
        images, labels = read_batches(batch_dir, names, verify)
        images, labels = _take_subset(images, labels, n, f"data.subset.{split}")
        save_arrays(out, images, labels, classes)
        summary[split] = {"images": int(len(labels)), "per_class": np.bincount(labels, minlength=NUM_CLASSES).tolist()}
        print(f"{split}: {len(labels)} images, per class {summary[split]['per_class']}")
    summary["classes"] = classes
    summary["subset"] = {"train": subset_train, "test": subset_test}
    write_json(summary_out, summary)
    return summary
