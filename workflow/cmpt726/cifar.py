"""The CIFAR python-pickle format, one reader for CIFAR-10 and CIFAR-100.

A `Layout` says where the two datasets differ (folder, file names, label key, class count);
everything else is shared: the official md5 of every file (torchvision's own table, one source
of truth), the download (torchvision, all or nothing), and one checked reader that refuses a
malformed file with a message naming the file and what is wrong — never a bare KeyError.
torchvision's dataset classes refuse any folder whose md5 does not match, so reading is ours:
the md5 is checked when asked (`verify`), the keys, shapes and labels always.
"""

from __future__ import annotations

import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import file_digest

SIZE = 32


@dataclass(frozen=True)
class Layout:
    name: str           # in messages
    torchvision: str    # torchvision.datasets class
    folder: str         # what the official archive unpacks to (= torchvision's base_folder)
    train: tuple        # data files of the training split
    test: tuple         # data files of the test split
    labels: str         # key of the labels in a data file
    meta: str           # file with the class names
    names: str          # key of the class names in it
    classes: int
    config_key: str     # config key that names the data's folder


CIFAR10 = Layout("CIFAR-10", "CIFAR10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                 ("test_batch",), "labels", "batches.meta", "label_names", 10, "data.cifar10")
CIFAR100 = Layout("CIFAR-100", "CIFAR100", "cifar-100-python", ("train",), ("test",), "fine_labels", "meta",
                  "fine_label_names", 100, "data.cifar100")


def official_md5(layout: Layout) -> dict[str, str]:
    """The md5 of each official file, as torchvision checks them."""
    import torchvision.datasets

    cls = getattr(torchvision.datasets, layout.torchvision)
    return dict(cls.train_list + cls.test_list + [[cls.meta["filename"], cls.meta["md5"]]])


def md5sum(path) -> str:
    return file_digest(path, "md5")


def download(layout: Layout, batch_dir) -> None:
    """Download and extract the official archive into `batch_dir` (…/<layout.folder>) with torchvision,
    which checks the archive's md5 and every file's; all or nothing, never over an existing folder."""
    import torchvision.datasets

    cls = getattr(torchvision.datasets, layout.torchvision)
    batch_dir = Path(batch_dir)
    if batch_dir.exists():
        raise FileExistsError(f"{batch_dir} exists; refusing to overwrite it (point {layout.config_key}.root at it "
                              "instead)")
    batch_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=batch_dir.parent, prefix=".download-") as tmp:
        cls(tmp, train=True, download=True)
        cls(tmp, train=False, download=False)
        shutil.move(str(Path(tmp) / cls.base_folder), batch_dir)


def unpickle(path, layout: Layout, md5: str | None = None) -> dict:
    """A CIFAR pickle as a dict (md5-checked when `md5` is given), or an error naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{layout.name} file missing: {path}")
    if md5 is not None:
        got = md5sum(path)
        if got != md5:
            raise ValueError(f"{path}: md5 {got} is not the official {md5} (corrupt or not the official file; "
                             f"set {layout.config_key}.verify: false to read it anyway)")
    try:
        with open(path, "rb") as fh:
            content = pickle.load(fh, encoding="latin1")
    except Exception as error:
        raise ValueError(f"{path} is not a CIFAR python pickle ({type(error).__name__}: {error})") from error
    if not isinstance(content, dict):
        raise ValueError(f"{path} is not a CIFAR python pickle (a {type(content).__name__}, not a dict)")
    return content


def read_data_file(path, layout: Layout, md5: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one data file, every field checked."""
    batch = unpickle(path, layout, md5)
    if "data" not in batch or layout.labels not in batch:
        raise ValueError(f"{path}: a {layout.name} file needs 'data' and '{layout.labels}' entries, found "
                         f"{sorted(map(str, batch))}")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[layout.labels])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIZE * SIZE:
        raise ValueError(f"{path}: 'data' must be uint8 of shape (N, 3072), found {data.dtype} {data.shape}")
    if labels.ndim != 1 or not (labels.size == 0 or np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"{path}: '{layout.labels}' must be a list of integers, found {labels.dtype} "
                         f"{labels.shape}")
    labels = labels.astype(np.int64)
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path}: {labels.shape[0]} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() >= layout.classes):
        raise ValueError(f"{path}: labels must lie in 0..{layout.classes - 1}, found {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, SIZE, SIZE), labels


def read_split(batch_dir, layout: Layout, split: str, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Every data file of `split` ("train" | "test") in order, concatenated."""
    md5 = official_md5(layout) if verify else {}
    parts = [read_data_file(Path(batch_dir) / name, layout, md5.get(name))
             for name in getattr(layout, split)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def read_classes(batch_dir, layout: Layout, verify: bool = True) -> list[str]:
    """The class names from the meta file, checked to be `layout.classes` strings."""
    path = Path(batch_dir) / layout.meta
    meta = unpickle(path, layout, official_md5(layout)[layout.meta] if verify else None)
    names = meta.get(layout.names)
    if not isinstance(names, (list, tuple)) or len(names) != layout.classes:
        found = f"{len(names)} names" if isinstance(names, (list, tuple)) else f"keys {sorted(map(str, meta))}"
        raise ValueError(f"{path}: needs '{layout.names}', a list of {layout.classes} class names; found {found}")
    return [str(n) for n in names]
