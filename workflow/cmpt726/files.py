"""Atomic writes, JSON (sorted keys, no NaN: it fails naming the file) and TSV (floats to 6 significant digits)."""

import contextlib
import csv
import glob
import hashlib
import json
import math
import os
import re
import socket
import stat
import tempfile
import zipfile
from pathlib import Path


_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def writer_prefix(prefix: str) -> str:
    """`prefix` followed by this writer's host and pid: how `dead_writers_leftovers` tells whose a temporary is."""
    return f"{prefix}{_HOST}-{os.getpid()}-"


def dead_writers_leftovers(folder, prefix: str) -> list[Path]:
    """The entries of `folder` named `writer_prefix(prefix)…` by a dead writer on this host: a killed job's."""
    pattern = re.compile(rf"{re.escape(prefix)}(\w+)-(\d+)-")
    found = []
    for candidate in Path(folder).glob(f"{glob.escape(prefix)}*"):
        match = pattern.match(candidate.name)
        if match and match.group(1) == _HOST and not _alive(int(match.group(2))):
            found.append(candidate)
    return found


def remove_stale_temporaries(path) -> list[Path]:
    """Remove (and return) the temporary siblings of `path` (`.<name>.tmp-<host>-<pid>-…`) of dead writers here."""
    path = Path(path)
    removed = dead_writers_leftovers(path.parent, f".{path.name}.tmp-")
    for candidate in removed:
        candidate.unlink(missing_ok=True)
    return removed


def publish(tmp, path) -> None:
    """Give the finished file `tmp` the name `path` only where no file has it (a hard link), else FileExistsError."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} appeared while this job wrote it; that file is kept as it is") from None
    except OSError:  # a file system without hard links: the check and the rename are two steps there
        if os.path.lexists(path):
            raise FileExistsError(f"{path} appeared while this job wrote it; that file is kept as it is") from None
        os.rename(tmp, path)
        return
    os.unlink(tmp)


# Seconds a download waits to connect or for the next bytes: a stalled server fails the job instead of hanging it.
DOWNLOAD_TIMEOUT = 60.0


@contextlib.contextmanager
def download_timeout(seconds: float | None = None):
    """urllib's default socket timeout (torchvision's and torch.hub's downloads take no timeout of their own)."""
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT if seconds is None else seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


@contextlib.contextmanager
def atomic_path(path, suffix: str | None = None, *, replace: bool = True):
    """Yield a temporary path beside `path`; move it into place (`replace=False`: never over a file) on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=writer_prefix(f".{path.name}.tmp-"), suffix=suffix or path.suffix,
                               dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the result a normal file's permissions
    try:
        yield Path(tmp)
        if replace:
            os.replace(tmp, path)
        else:
            publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def make_read_only(path) -> None:
    """Take away every write permission bit of a file, as Snakemake's protected() does for an output."""
    mode = os.stat(path).st_mode
    os.chmod(path, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def file_digest(path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (md5 for the CIFAR batches, sha256 for CIFAR-10H)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_digest(path) -> str:
    """sha256 of a torch.save file's entries (by name, less the random serialization id), not of its bytes."""
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(path) as archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename.split("/", 1)[-1]):
                name = info.filename.split("/", 1)[-1]
                if name != ".data/serialization_id":
                    digest.update(name.encode() + b"\0" + archive.read(info))
    except zipfile.BadZipFile:  # torch's legacy (pre-1.6) format: the bytes are all there is
        return file_digest(path)
    return digest.hexdigest()


def _plain(value):
    """numpy scalars and arrays → plain Python (json calls this for what it cannot write)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(path, obj) -> None:
    try:
        text = json.dumps(obj, indent=2, sort_keys=True, default=_plain, allow_nan=False)
    except ValueError as error:  # allow_nan=False: say where
        raise ValueError(f"{path}: {error} (a NaN or infinity at {_first_nan(obj) or '?'})") from None
    write_text(path, text + "\n")


def _first_nan(obj, where: str = "") -> str | None:
    if isinstance(obj, float) and not math.isfinite(obj):
        return where or "(top level)"
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    for key, value in items:
        found = _first_nan(value, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def read_json(path):
    """A JSON file; one cut off or edited into something else is refused naming the file (json's message does not)."""
    with open(path, encoding="utf-8") as fh:
        try:
            return json.load(fh)
        except ValueError as error:
            raise ValueError(f"{path}: not a JSON file ({error}); delete it to rebuild it") from None


def format_cell(value) -> str:
    """None → empty, float → 6 significant digits, anything else (ints, numpy ints, text) → str."""
    if value is None:
        return ""
    if isinstance(value, float) or type(value).__name__.startswith("float"):
        return f"{float(value):.6g}"
    if type(value).__name__.startswith(("int", "uint")):
        return str(int(value))
    return str(value)


def write_tsv(path, columns: list[str], rows) -> None:
    """A header and one line per row; a row is a sequence in column order or a dict keyed by column."""
    lines = ["\t".join(columns)]
    for row in rows:
        values = [row.get(c) for c in columns] if isinstance(row, dict) else row
        lines.append("\t".join(format_cell(v) for v in values))
    write_text(path, "\n".join(lines) + "\n")


def read_table(path, columns: list[str]) -> list[list[str]]:
    """The text rows of a TSV whose header must be `columns`, or a ValueError naming the file and line."""
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in fh if line.strip()]
    if header != columns:
        raise ValueError(f"{path}: header {header} is not {columns}")
    for n, row in enumerate(rows, start=2):
        if len(row) != len(columns):
            raise ValueError(f"{path}: line {n} has {len(row)} columns, expected {len(columns)}")
    return rows


def read_tsv(path) -> list[dict]:
    """Rows as dicts, numbers parsed (int, else float, else the text; empty → None)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh, delimiter="\t")]


def _number(text):
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text
