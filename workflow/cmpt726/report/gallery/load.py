"""The gallery's inputs, each checked against the test images: images, every run's scores, optional analyses."""

from dataclasses import dataclass

import numpy as np

from ...analysis.human_labels import read_human_table
from ...analysis.label_issues import read_label_issues
from ...analysis.near_duplicates import read_near_duplicates
from ...data import load_arrays
from ...evaluation import read_score_set
from ...files import read_json

THUMB = 32  # CIFAR images are 32 × 32
TOP_K = 3  # each card shows the top-3 classes
NO_ANALYSES = {"label_issues": None, "human_labels": None, "near_duplicates": None}


@dataclass(frozen=True)
class Run:
    """One trained model's scores on the test images."""

    variant: str
    seed: int
    probs: np.ndarray  # (N, K)


def _thumbnails(path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images as (N, 32, 32, 3), labels, classes; refuses anything but uint8 (N, 3, 32, 32)."""
    images, labels, classes = load_arrays(path)
    if images.ndim != 4 or images.shape[1:] != (3, THUMB, THUMB) or images.dtype != np.uint8:
        raise ValueError(f"{path}: images must be uint8 (N, 3, 32, 32), found {images.dtype} {images.shape}")
    return images.transpose(0, 2, 3, 1), labels, classes


def load_test_images(test_images) -> dict:
    """Test images (N, 32, 32, 3), labels, class names and the file's path (for messages)."""
    images, labels, classes = _thumbnails(test_images)
    if len(classes) < TOP_K:
        raise ValueError(f"{test_images}: the gallery shows the top {TOP_K} classes, found {len(classes)} classes")
    return {"images": images, "labels": labels, "classes": classes, "path": str(test_images)}


def load_runs(data: dict, runs, scores) -> list[Run]:
    """Every run's scores, in the order of `runs` ((variant, seed) pairs) and `scores` (their files)."""
    runs = [(str(v), int(s)) for v, s in runs]
    tables = read_score_set(scores, data["labels"], data["classes"], test_set=data["path"])
    return [Run(v, s, t["probs"]) for (v, s), t in zip(runs, tables)]


def focus_run(runs, q6_numbers) -> tuple[int, dict]:
    """The index in `runs` of the report's focus run (numbers.json: focus, seed), and the numbers."""
    numbers = read_json(q6_numbers)
    keys = [(str(v), int(s)) for v, s in runs]
    key = (numbers["focus"], numbers["seed"])
    if key not in keys:
        raise ValueError(f"{q6_numbers}: its focus {key} is not one of the runs {sorted(keys)}")
    return keys.index(key), numbers


def load_label_issues(path, data: dict) -> dict:
    """label_issues.tsv → index, suggested (class index), rank; refuses other images' suspects."""
    table = read_label_issues(path, data["classes"])
    n = len(data["labels"])
    index = table["index"]
    if len(index) and (index.min() < 0 or index.max() >= n):
        raise ValueError(f"{path}: index {int(index.max() if index.max() >= n else index.min())} is outside "
                         f"0..{n - 1} ({data['path']} has {n} images)")
    if len(np.unique(index)) != len(index):
        raise ValueError(f"{path}: an image is listed twice")
    wrong = np.flatnonzero(table["given"] != data["labels"][index])
    if len(wrong):
        i = int(index[wrong[0]])
        raise ValueError(f"{path}: image {i} is given {data['classes'][table['given'][wrong[0]]]!r} here but "
                         f"{data['classes'][data['labels'][i]]!r} in {data['path']}")
    return {"index": index, "suggested": table["suggested"], "rank": table["rank"]}


def load_human_labels(path, data: dict) -> dict:
    """The CIFAR-10H table (one row per test image) → votes (N, 10), majority (class index), flags."""
    table = read_human_table(path)
    n, classes = len(data["labels"]), data["classes"]
    if len(table["index"]) != n or not np.array_equal(table["index"], np.arange(n)):
        raise ValueError(f"{path}: {len(table['index'])} rows, expected one per test image of {data['path']} "
                         f"(0..{n - 1} in order)")
    lookup = {c: k for k, c in enumerate(classes)}
    for column in ("label", "human_majority"):
        unknown = sorted(set(table[column]) - set(lookup))
        if unknown:
            raise ValueError(f"{path}: column {column} has class names {unknown} not in {classes}")
    label = np.array([lookup[c] for c in table["label"]], dtype=np.int64)
    wrong = np.flatnonzero(label != data["labels"])
    if len(wrong):
        i = int(wrong[0])
        raise ValueError(f"{path}: image {i} is labelled {classes[label[i]]!r} here but "
                         f"{classes[data['labels'][i]]!r} in {data['path']}")
    votes = table["votes"]
    if votes.shape[1] != len(classes) or votes.min(initial=0) < 0:
        raise ValueError(f"{path}: votes must be {len(classes)} counts of 0 or more per image")
    return {"votes": votes, "majority": np.array([lookup[c] for c in table["human_majority"]]),
            "disagree": table["disagree"], "unsure": table["unsure"]}


def load_near_duplicates(path, train_images, data: dict) -> dict:
    """near_duplicates.tsv and the training images → the flagged test images and their training twins."""
    if train_images is None:
        raise ValueError(f"{path}: near-duplicates need the training images (train_images) for their thumbnails")
    rows = read_near_duplicates(path)
    n = len(data["labels"])
    if [r["index"] for r in rows] != list(range(n)):
        raise ValueError(f"{path}: {len(rows)} rows, expected one per test image of {data['path']} "
                         f"(0..{n - 1} in order)")
    flagged = [r for r in rows if r["flagged"]]
    train, train_labels, train_classes = _thumbnails(train_images)
    if list(train_classes) != list(data["classes"]):
        raise ValueError(f"{train_images}: classes {train_classes} differ from {data['classes']} in {data['path']}")
    bad = [r["train_index"] for r in flagged if not 0 <= r["train_index"] < len(train)]
    if bad:
        raise ValueError(f"{path}: train_index {bad[0]} is not an image of {train_images} ({len(train)} images)")
    twins = sorted({r["train_index"] for r in flagged})
    tile = {t: k for k, t in enumerate(twins)}
    return {"index": np.array([r["index"] for r in flagged], dtype=np.int64),
            "train_index": np.array([r["train_index"] for r in flagged], dtype=np.int64),
            "tile": np.array([tile[r["train_index"]] for r in flagged], dtype=np.int64),
            "distance": np.array([float(r["pixel_distance"]) for r in flagged]),
            "train_label": train_labels[[r["train_index"] for r in flagged]].astype(np.int64),
            "images": train[twins]}


def load_analyses(data: dict, *, train_images=None, label_issues=None, human_labels=None,
                  near_duplicates=None) -> dict:
    return {"label_issues": None if label_issues is None else load_label_issues(label_issues, data),
            "human_labels": None if human_labels is None else load_human_labels(human_labels, data),
            "near_duplicates": (None if near_duplicates is None
                                else load_near_duplicates(near_duplicates, train_images, data))}
