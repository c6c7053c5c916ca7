"""CIFAR-100 for pretraining the backbone, from the pickle layout or an ImageFolder tree, to CIFAR-10's arrays."""

from pathlib import Path

import numpy as np

from . import cifar, data
from .files import write_json

LAYOUT = cifar.CIFAR100
BATCH_DIR = LAYOUT.folder  # = torchvision CIFAR100.base_folder
NUM_CLASSES = LAYOUT.classes
SIZE = cifar.SIZE


def download_cifar100(batch_dir, receipt=None) -> str:
    """`cifar.download` of CIFAR-100; `receipt` records it."""
    status = cifar.download(LAYOUT, batch_dir)
    if receipt is not None:
        cifar.write_receipt(receipt, LAYOUT, batch_dir, status)
    return status


def read_pickle_split(batch_dir, split: str, verify: bool = True) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images (N, 3, 32, 32) uint8, fine labels (N,) int64 and the class names of one split."""
    images, labels = cifar.read_split(batch_dir, LAYOUT, split, verify)
    return images, labels, cifar.read_classes(batch_dir, LAYOUT, verify)


def read_imagefolder_split(root, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`root/split/<class>/*` (torchvision ImageFolder: classes sorted by name) → uint8 arrays."""
    from PIL import Image
    from torchvision.datasets import ImageFolder

    folder = Path(root) / split
    if not folder.is_dir():
        raise FileNotFoundError(f"CIFAR-100 ImageFolder split missing: {folder} (data.cifar100.imagefolder)")
    dataset = ImageFolder(str(folder))
    if len(dataset.classes) != NUM_CLASSES:
        raise ValueError(f"{folder}: CIFAR-100 needs 100 class folders, found {len(dataset.classes)}")
    images = np.empty((len(dataset.samples), SIZE, SIZE, 3), dtype=np.uint8)
    labels = np.empty(len(dataset.samples), dtype=np.int64)
    for i, (path, label) in enumerate(dataset.samples):
        try:
            with Image.open(path) as img:
                pixels = np.asarray(img.convert("RGB"))
        except Exception as error:
            raise ValueError(f"{path}: not a readable image ({type(error).__name__}: {error})") from error
        if pixels.shape != (SIZE, SIZE, 3):
            raise ValueError(f"{path}: CIFAR images are 32×32 RGB, found {pixels.shape}")
        images[i], labels[i] = pixels, label
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)), labels, list(dataset.classes)


def tree_digest(root) -> str:
    """A digest of every file's relative path, size and mtime under `root`: an image replaced in place reruns."""
    import hashlib
    import os

    digest = hashlib.sha256()
    for folder, dirs, names in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(names):
            stat = os.stat(os.path.join(folder, name))
            digest.update(f"{os.path.relpath(os.path.join(folder, name), root)}\0{stat.st_size}\0"
                          f"{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def source_of(cfg: dict) -> tuple[str, str]:
    """data.cifar100 → ("imagefolder", path) when `imagefolder` is set, else ("pickle", root/cifar-100-python)."""
    if cfg.get("imagefolder"):
        return "imagefolder", str(cfg["imagefolder"])
    return "pickle", str(Path(cfg["root"]) / BATCH_DIR)


def prepare_cifar100(source, kind: str, train_out, test_out, summary_out, verify: bool = True) -> dict:
    """Read both splits once (pickle layout or ImageFolder tree) and write compact uint8 arrays."""
    summary: dict = {"source": str(source), "kind": kind}
    classes_seen = None
    for split, out in [("train", train_out), ("test", test_out)]:
        if kind == "imagefolder":
            images, labels, classes = read_imagefolder_split(source, split)
        else:
            images, labels, classes = read_pickle_split(source, split, verify)
        if classes_seen is not None and classes != classes_seen:
            raise ValueError(f"{source}: the train and test splits name different classes")
        classes_seen = classes
        data.save_arrays(out, images, labels, classes)
        per_class = np.bincount(labels, minlength=NUM_CLASSES).tolist()
        summary[split] = {"images": int(len(labels)), "per_class": per_class}
        print(f"{split}: {len(labels)} images from {source} ({kind}), {min(per_class)}..{max(per_class)} per class")
    summary["classes"] = classes_seen
    write_json(summary_out, summary)
    return summary
