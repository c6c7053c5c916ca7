"""The CIFAR python-pickle format, one reader for CIFAR-10 and CIFAR-100 (a `Layout` says where they differ): no
code runs while reading (`SafeUnpickler`), and the download replaces nothing, so runs can share a data root.
"""

import codecs
import fcntl
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import (dead_writers_leftovers, download_timeout, file_digest, make_read_only, write_json,
                    writer_prefix)

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


def files(layout: Layout) -> tuple[str, ...]:
    """The files of a layout's folder that the workflow reads: a rule's inputs, file by file."""
    return layout.train + layout.test + (layout.meta,)


def official_md5(layout: Layout) -> dict[str, str]:
    """The md5 of each official file, as torchvision checks them."""
    import torchvision.datasets

    cls = getattr(torchvision.datasets, layout.torchvision)
    return dict(cls.train_list + cls.test_list + [[cls.meta["filename"], cls.meta["md5"]]])


def download(layout: Layout, batch_dir, fetch=None, url: str | None = None) -> str:
    """Download the official archive into `batch_dir` under a lock, renamed into place in one step, replacing
    nothing; `fetch(tmp)` puts `layout.folder` under `tmp`. Returns "downloaded" or "found"."""
    batch_dir = Path(batch_dir)
    names = files(layout)
    batch_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(batch_dir.parent / f".{batch_dir.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also when the process is killed
        present = [name for name in names if (batch_dir / name).exists()]
        if len(present) == len(names):
            print(f"{batch_dir}: found (downloaded by another run)")
            return "found"
        if present or (batch_dir.exists() and not batch_dir.is_dir()):
            raise FileExistsError(f"{batch_dir} holds only part of {layout.name} ({', '.join(present)}); refusing "
                                  f"to overwrite it (complete it, or point {layout.config_key}.root elsewhere)")
        if batch_dir.is_dir() and (others := sorted(p.name for p in batch_dir.iterdir())):
            raise FileExistsError(f"{batch_dir} holds other files ({', '.join(others[:5])}), none of {layout.name}'s; "
                                  f"refusing to download into it (point {layout.config_key}.root elsewhere)")
        prefix = f".download-{batch_dir.name}-"
        for stale in dead_writers_leftovers(batch_dir.parent, prefix):  # a killed download's, never a live one's
            shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(dir=batch_dir.parent, prefix=writer_prefix(prefix)) as tmp:
            (fetch or _torchvision_fetch(layout, url, batch_dir))(tmp)
            unpacked = Path(tmp) / layout.folder
            for name in names:
                make_read_only(unpacked / name)
            try:  # onto no folder or an empty one; the same file system, so one step, never nested
                os.rename(unpacked, batch_dir)
            except OSError as error:  # filled meanwhile by someone who took no lock: theirs is kept
                raise FileExistsError(f"{batch_dir} was filled while this run downloaded {layout.name}; it is kept "
                                      f"as it is and this run's copy dropped ({error.strerror})") from error
    print(f"{batch_dir}: downloaded")
    return "downloaded"


def write_receipt(path, layout: Layout, batch_dir, status: str, url: str | None = None) -> None:
    """The download rule's output (never a file of the shared root): which data, where, and whether found."""
    batch_dir = Path(batch_dir)
    write_json(path, {"data": layout.name, "folder": str(batch_dir), "status": status, "url": url,
                      "sizes": {name: (batch_dir / name).stat().st_size for name in files(layout)}})


def _torchvision_fetch(layout: Layout, url: str | None, batch_dir: Path):
    """torchvision's download of the archive (its md5 checked) from `url`, then its check of every file."""

    def fetch(tmp):
        import urllib.error

        import torchvision.datasets
        from torchvision.datasets.utils import download_and_extract_archive

        cls = getattr(torchvision.datasets, layout.torchvision)
        source = url or cls.url
        try:
            with download_timeout():
                download_and_extract_archive(source, tmp, filename=cls.filename, md5=cls.tgz_md5)
        except (urllib.error.URLError, OSError, RuntimeError) as error:  # RuntimeError: a partial or corrupt file
            key = f" (config key {layout.config_key}.url)" if url else ""
            raise OSError(f"{layout.name} cannot be downloaded from {source}{key} ({error}); nothing was kept. "
                          f"Offline: put an existing {layout.folder}/ at {batch_dir}, or set {layout.config_key}.root "
                          "to the folder that holds one") from error
        cls(tmp, train=True, download=False)  # torchvision's md5 check of every file
        cls(tmp, train=False, download=False)

    return fetch


def _latin1_encode(text, encoding="latin1"):
    """What a protocol-2 pickle of bytes names (`_codecs.encode`), for latin-1 only."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return codecs.encode(text, "latin1")


def _allowed_globals() -> dict:
    """(module, name) → object: every global the CIFAR files (numpy 1 and 2 pickles) may name."""
    from numpy._core import multiarray, numeric
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               ("_codecs", "encode"): _latin1_encode, ("codecs", "encode"): _latin1_encode}
    for prefix in ("numpy.core", "numpy._core"):
        allowed.update({(f"{prefix}.multiarray", "_reconstruct"): multiarray._reconstruct,
                        (f"{prefix}.multiarray", "scalar"): multiarray.scalar,
                        (f"{prefix}.numeric", "_frombuffer"): numeric._frombuffer})
    return allowed


class SafeUnpickler(pickle.Unpickler):
    """Builds only plain containers, strings, numbers and numpy arrays; any other global is refused."""

    _allowed = None

    def find_class(self, module, name):
        if SafeUnpickler._allowed is None:
            SafeUnpickler._allowed = _allowed_globals()
        try:
            return SafeUnpickler._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR file never does "
                                         "(refused: unpickling it could run code)") from None


def safe_load(fh):
    """`pickle.load(fh, encoding="latin1")` that runs no code (SafeUnpickler)."""
    return SafeUnpickler(fh, encoding="latin1").load()


def unpickle(path, layout: Layout, md5: str | None = None) -> dict:
    """A CIFAR pickle as a dict (md5-checked when `md5` is given), or an error naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{layout.name} file missing: {path}")
    if md5 is not None and (got := file_digest(path, "md5")) != md5:
        raise ValueError(f"{path}: md5 {got} is not the official {md5} (corrupt or not the official file; "
                         f"set {layout.config_key}.verify: false to read it anyway)")
    try:
        with open(path, "rb") as fh:
            content = safe_load(fh)
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
    parts = [read_data_file(Path(batch_dir) / name, layout, md5.get(name)) for name in getattr(layout, split)]
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
