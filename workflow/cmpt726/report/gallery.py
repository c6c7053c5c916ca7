"""The per-image gallery: every test image with its true class, prediction, score and top-3, for every run.

gallery.html is one self-contained file. The thumbnails are one JPEG sprite (a data URI) that CSS places;
everything else is one JSON object (`<script id="gallery-data">`, see `page_data`) that a small script
turns into cards, sorted and filtered in the browser. A selector picks the run (variant, then seed) whose
scores the cards show; the default is the report's focus run (numbers.json of rule compare_variants: `focus`,
`seed`). Each run's scores are packed (`pack_run`) into 8 bytes per image, base64 in the JSON:

    bytes 0-1  uint16 little-endian: top-1 | top-2 << 4 | top-3 << 8   (class indices, 4 bits each)
    bytes 2-7  three uint16 little-endian: the top-3 softmax probabilities × 10,000, rounded

so 10,000 images take 80 kB (107 kB as base64) per run, and 30 runs about 3.2 MB beside the ~5.5 MB sprite.

Optional per-image analyses add badges, marks and filters: likely label errors (cleanlab,
`analysis.label_issues`), what people said (CIFAR-10H, `analysis.human_labels`) and near-duplicates in
the training set (`analysis.near_duplicates`; the flagged twins' thumbnails are a second, small sprite).

gallery.pdf is a print layout of the focus run (a fixed 8 × 10 grid per A4 page, no script) converted by
wkhtmltopdf, each thumbnail a small PNG data URI, with a short line per analysis that flags the image.
"""

from __future__ import annotations

import base64
import io
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..analysis.human_labels import read_human_table
from ..analysis.label_issues import read_label_issues
from ..analysis.near_duplicates import read_near_duplicates
from ..data import load_arrays
from ..evaluation import read_scores
from ..io import read_json, write_text
from .render import environment, html_to_pdf

THUMB = 32  # CIFAR images are 32 × 32
SPRITE_COLUMNS = 100
TOP_K = 3
PROB_SCALE = 10_000  # probabilities travel as uint16 ten-thousandths
RECORD = np.dtype([("top", "<u2"), ("p", "<u2", (TOP_K,))])  # 8 bytes per image and run
MAX_CLASSES = 16  # 4 bits per class index in RECORD["top"]
HUMAN_DISAGREE, HUMAN_UNSURE = 1, 2  # bits of the per-image human flags
NO_ANALYSES = {"label_issues": None, "human_labels": None, "near_duplicates": None}


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Run:
    """One trained model's scores on the test images."""

    variant: str
    seed: int
    probs: np.ndarray  # (N, K)
    path: str = ""


def load_test_images(test_images) -> dict:
    """Test images (N, 32, 32, 3), labels and class names; refuses anything but uint8 (N, 3, 32, 32)."""
    images, labels, classes = load_arrays(test_images)
    if images.ndim != 4 or images.shape[1:] != (3, THUMB, THUMB) or images.dtype != np.uint8:
        raise ValueError(f"{test_images}: images must be uint8 (N, 3, 32, 32), found {images.dtype} {images.shape}")
    if not TOP_K <= len(classes) <= MAX_CLASSES:
        raise ValueError(f"{test_images}: the gallery packs {TOP_K} to {MAX_CLASSES} classes, found {len(classes)}")
    return {"images": images.transpose(0, 2, 3, 1), "labels": labels, "classes": classes, "path": str(test_images)}


def load_run_scores(scores_path, data: dict) -> np.ndarray:
    """The probabilities (N, K) of one score file; refuses one that does not match the test images."""
    scores = read_scores(scores_path, expected_rows=len(data["labels"]))
    if not np.array_equal(scores["label"], data["labels"]):
        raise ValueError(f"{scores_path}: its labels differ from those in {data['path']}; re-evaluate the variant")
    if scores["probs"].shape[1] != len(data["classes"]):
        raise ValueError(f"{scores_path}: {scores['probs'].shape[1]} probability columns for "
                         f"{len(data['classes'])} classes in {data['path']}")
    return scores["probs"]


def load_gallery(test_images, scores_path) -> dict:
    """Test images and the scores of one run (a dict with images, labels, classes, probs)."""
    data = load_test_images(test_images)
    return {**data, "probs": load_run_scores(scores_path, data)}


def load_runs(data: dict, runs, scores) -> list[Run]:
    """Every run's scores, in the order of `runs` ((variant, seed) pairs) and `scores` (their files)."""
    runs = [(str(v), int(s)) for v, s in runs]
    if len(runs) != len(scores):
        raise ValueError(f"{len(scores)} score files for {len(runs)} runs ({runs})")
    if len(set(runs)) != len(runs):
        raise ValueError(f"a run is listed twice in {runs}")
    if not runs:
        raise ValueError("the gallery needs at least one run")
    return [Run(v, s, load_run_scores(path, data), str(path)) for (v, s), path in zip(runs, scores)]


def top_k(probs: np.ndarray, k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
    """Classes (N, k) by decreasing score, ties to the lower class index, and their scores."""
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(probs, order, 1)


def pack_run(probs: np.ndarray) -> bytes:
    """One run's top-3 classes and probabilities, RECORD (8 bytes) per image; see the module docstring."""
    order, p = top_k(probs)
    packed = np.empty(len(probs), RECORD)
    packed["top"] = order[:, 0] | order[:, 1] << 4 | order[:, 2] << 8
    packed["p"] = np.rint(np.clip(p, 0, 1) * PROB_SCALE)
    return packed.tobytes()


def unpack_run(raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    """`pack_run` back: classes (N, 3) and probabilities (N, 3), to 1e-4."""
    packed = np.frombuffer(raw, RECORD)
    top = packed["top"].astype(np.int64)
    return np.stack([top & 15, top >> 4 & 15, top >> 8 & 15], 1), packed["p"] / PROB_SCALE


def _b64(array_or_bytes) -> str:
    raw = array_or_bytes if isinstance(array_or_bytes, bytes) else np.ascontiguousarray(array_or_bytes).tobytes()
    return base64.b64encode(raw).decode("ascii")


# --------------------------------------------------------------------------- analyses (optional)
def load_label_issues(path, data: dict) -> dict:
    """label_issues.tsv → index, given, suggested (class indices), rank; refuses other images' suspects."""
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
    return {"index": index, "given": table["given"], "suggested": table["suggested"], "rank": table["rank"],
            "self_confidence": table["self_confidence"], "path": str(path)}


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
    if votes.shape[1] != len(classes) or votes.min(initial=0) < 0 or votes.max(initial=0) > 255:
        raise ValueError(f"{path}: votes must be {len(classes)} counts of 0..255 per image")
    return {"votes": votes.astype(np.uint8), "majority": np.array([lookup[c] for c in table["human_majority"]]),
            "disagree": table["disagree"], "unsure": table["unsure"], "path": str(path)}


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
    train, train_labels, train_classes = load_arrays(train_images)
    if train.ndim != 4 or train.shape[1:] != (3, THUMB, THUMB) or train.dtype != np.uint8:
        raise ValueError(f"{train_images}: images must be uint8 (N, 3, 32, 32), found {train.dtype} {train.shape}")
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
            "images": train[twins].transpose(0, 2, 3, 1), "path": str(path)}


def load_analyses(data: dict, *, train_images=None, label_issues=None, human_labels=None,
                  near_duplicates=None) -> dict:
    """The analyses that are given (each None when its file is not)."""
    return {"label_issues": None if label_issues is None else load_label_issues(label_issues, data),
            "human_labels": None if human_labels is None else load_human_labels(human_labels, data),
            "near_duplicates": (None if near_duplicates is None
                                else load_near_duplicates(near_duplicates, train_images, data))}


# --------------------------------------------------------------------------- images
def sprite(images: np.ndarray, columns: int = SPRITE_COLUMNS) -> np.ndarray:
    """(N, 32, 32, 3) → one (rows·32, columns·32, 3) sheet, image i at row i // columns, column i % columns."""
    n = len(images)
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    padded = np.full((rows * columns, THUMB, THUMB, 3), 255, dtype=np.uint8)
    padded[:n] = images
    return padded.reshape(rows, columns, THUMB, THUMB, 3).transpose(0, 2, 1, 3, 4).reshape(
        rows * THUMB, columns * THUMB, 3)


def encode(array: np.ndarray, fmt: str = "JPEG", **options) -> str:
    """An image array as a data URI."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def sprite_uri(images: np.ndarray, columns: int = SPRITE_COLUMNS, quality: int = 85) -> str:
    # 4:2:0 chroma blocks are 16 px, so no block straddles two 32-px thumbnails.
    return encode(sprite(images, columns), "JPEG", quality=quality, subsampling=2)


# --------------------------------------------------------------------------- pages
def _script_json(obj) -> str:
    """JSON safe inside a <script> element: no <, > or & at all (JSON.parse reads the \\u escapes back)."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def summary(labels, probs, classes) -> dict:
    pred = probs.argmax(1)
    return {"n": int(len(labels)), "correct": int((pred == labels).sum()),
            "accuracy": float(100 * (pred == labels).mean()), "classes": classes}


def variant_notes(verdict: dict | None) -> dict[str, str]:
    """What the report's verdict says of a variant, for the selector: best / top, tied / tied with top."""
    verdict = verdict or {}
    top, tied = verdict.get("top"), list(verdict.get("tied_with_top") or [])
    notes = {}
    if verdict.get("best"):
        notes[verdict["best"]] = "best"
    elif top is not None:
        notes[top] = "top, tied" if len(tied) > 1 else "top"
    for name in tied:
        notes.setdefault(name, "tied with top")
    return notes


def page_data(data: dict, runs: list[Run], focus: int, analyses: dict, verdict: dict | None = None) -> dict:
    """Everything the page script needs, as one JSON-able object (the module docstring has the run format)."""
    labels = data["labels"]
    n = len(labels)
    variants: dict[str, list[int]] = {}
    for k, run in enumerate(runs):
        variants.setdefault(run.variant, []).append(k)
    notes = variant_notes(verdict)
    out = {
        "n": n, "classes": data["classes"], "labels": _b64(labels.astype(np.uint8)), "scale": PROB_SCALE,
        "focus": focus,
        "runs": [{"variant": r.variant, "seed": r.seed, **{k: v for k, v in summary(labels, r.probs, None).items()
                                                             if k in ("correct", "accuracy")},
                  "data": _b64(pack_run(r.probs))} for r in runs],
        "variants": [{"name": name, "runs": ks, "note": notes.get(name, ""),
                      "accuracy": float(np.mean([100 * (runs[k].probs.argmax(1) == labels).mean() for k in ks]))}
                     for name, ks in variants.items()],
        "label_issues": None, "humans": None, "duplicates": None,
    }
    if analyses.get("label_issues") is not None:
        li = analyses["label_issues"]
        # [test index, suggested class, rank], by rank
        out["label_issues"] = [[int(i), int(s), int(r)] for r, i, s in sorted(zip(li["rank"], li["index"],
                                                                                    li["suggested"]))]
    if analyses.get("human_labels") is not None:
        h = analyses["human_labels"]
        flags = h["disagree"].astype(np.uint8) * HUMAN_DISAGREE | h["unsure"].astype(np.uint8) * HUMAN_UNSURE
        out["humans"] = {"votes": _b64(h["votes"]), "majority": _b64(h["majority"].astype(np.uint8)),
                         "flags": _b64(flags)}
    if analyses.get("near_duplicates") is not None:
        d = analyses["near_duplicates"]
        # [test index, tile in the twin sprite, train index, train label, pixel distance]
        out["duplicates"] = {"columns": min(SPRITE_COLUMNS, max(1, len(d["images"]))),
                             "twins": [[int(i), int(t), int(j), int(y), round(float(x), 4)] for i, t, j, y, x in
                                       zip(d["index"], d["tile"], d["train_index"], d["train_label"], d["distance"])]}
    return out


def write_gallery_html(out_html, template, data: dict, runs: list[Run], *, title: str, focus: int = 0,
                       analyses: dict | None = None, verdict: dict | None = None) -> dict:
    """The interactive gallery of every run; `focus` (an index into runs) is the run shown first."""
    analyses = analyses or NO_ANALYSES
    labels = data["labels"]
    columns = min(SPRITE_COLUMNS, len(labels))
    dups = analyses.get("near_duplicates")
    twin_columns = min(SPRITE_COLUMNS, len(dups["images"])) if dups is not None and len(dups["images"]) else 0
    shown = runs[focus]
    context = {
        "title": title, "variant": shown.variant, "seed": shown.seed,
        **summary(labels, shown.probs, data["classes"]),
        "sprite": sprite_uri(data["images"], columns),
        "sprite_columns": columns, "sprite_rows": math.ceil(len(labels) / columns),
        "twin_sprite": sprite_uri(dups["images"], twin_columns) if twin_columns else None,
        "twin_columns": twin_columns, "twin_rows": math.ceil(len(dups["images"]) / twin_columns) if twin_columns else 0,
        "data_json": _script_json(page_data(data, runs, focus, analyses, verdict)),
        "n_runs": len(runs), "n_variants": len({r.variant for r in runs}),
        "multi_seed": len({r.variant for r in runs}) < len(runs),
        "has": {k: analyses.get(k) is not None for k in NO_ANALYSES},
    }
    _render(template, out_html, context)
    return context


def badges(analyses: dict, classes: list[str]) -> dict[int, list[tuple[str, str]]]:
    """Per flagged test image, the short lines of the print layout: (kind, text)."""
    out: dict[int, list[tuple[str, str]]] = {}
    li = analyses.get("label_issues")
    if li is not None:
        for i, s in zip(li["index"], li["suggested"]):
            out.setdefault(int(i), []).append(("label", f"label? → {classes[s]}"))
    h = analyses.get("human_labels")
    if h is not None:
        for i in np.flatnonzero(h["disagree"]):
            m = int(h["majority"][i])
            out.setdefault(int(i), []).append(("humans", f"humans: {classes[m]} {int(h['votes'][i, m])}/"
                                                         f"{int(h['votes'][i].sum())}"))
    d = analyses.get("near_duplicates")
    if d is not None:
        for i, j in zip(d["index"], d["train_index"]):
            out.setdefault(int(i), []).append(("dup", f"dup of train #{int(j)}"))
    return out


PRINT_IMAGE = 60  # px of the print thumbnail; each badge line (10 px) takes its height from it


def print_cells(data: dict, run: Run, analyses: dict | None = None) -> list[dict]:
    """The facts under each thumbnail of the print layout."""
    labels, classes = data["labels"], data["classes"]
    order, p = top_k(run.probs)
    marks = badges(analyses or NO_ANALYSES, classes)
    return [{"index": i, "uri": encode(data["images"][i], "PNG", compress_level=6),
             "true": classes[labels[i]], "correct": bool(order[i, 0] == labels[i]),
             "top": [(classes[c], float(q)) for c, q in zip(order[i], p[i])],
             "badges": marks.get(i, []), "size": PRINT_IMAGE - 10 * len(marks.get(i, []))}
            for i in range(len(labels))]


def write_gallery_pdf(out_pdf, template, data: dict, run: Run, *, title: str, analyses: dict | None = None,
                      columns: int = 8, rows: int = 10) -> None:
    """A fixed grid of columns × rows images per A4 page of one run, rendered by wkhtmltopdf."""
    analyses = analyses or NO_ANALYSES
    cells = print_cells(data, run, analyses)
    per_page = columns * rows
    pages = [[cells[i:i + columns] for i in range(start, min(start + per_page, len(cells)), columns)]
             for start in range(0, len(cells), per_page)]
    context = {"title": title, "variant": run.variant, "seed": run.seed, "pages": pages, "columns": columns,
               "has": {k: analyses.get(k) is not None for k in NO_ANALYSES},
               **summary(data["labels"], run.probs, data["classes"])}
    with tempfile.TemporaryDirectory(prefix="gallery-") as tmp:
        html = Path(tmp) / "gallery-print.html"
        _render(template, html, context)
        html_to_pdf(html, out_pdf, {"margin-top": "10mm", "margin-bottom": "10mm", "margin-left": "10mm",
                                    "margin-right": "10mm"})


def _render(template, out_html, context: dict) -> None:
    template = Path(template)
    html = environment(template.parent).get_template(template.name).render(**context)
    write_text(out_html, html)


# --------------------------------------------------------------------------- entry points for the rules
def focus_run(runs, q6_numbers) -> tuple[int, dict]:
    """The index in `runs` of the report's focus run (numbers.json of rule compare_variants: focus, seed),
    and the numbers."""
    numbers = read_json(q6_numbers)
    keys = [(str(v), int(s)) for v, s in runs]
    key = (numbers["focus"], numbers["seed"])
    if key not in keys:
        raise ValueError(f"{q6_numbers}: its focus {key} is not one of the runs {sorted(keys)}")
    return keys.index(key), numbers


def _load(test_images, runs, scores, q6_numbers, *, focus_only: bool, **analysis_files):
    focus, numbers = focus_run(runs, q6_numbers)
    data = load_test_images(test_images)
    if focus_only:
        runs, scores, focus = [runs[focus]], [scores[focus]], 0
    loaded = load_runs(data, runs, scores)
    return data, loaded, focus, numbers, load_analyses(data, **analysis_files)


def _log(out, data, what: str, tic: float) -> None:
    print(f"{out}: {len(data['labels'])} images, {what}, {Path(out).stat().st_size / 1e6:.1f} MB, "
          f"{time.perf_counter() - tic:.1f} s")


def gallery_html(test_images, runs, scores, q6_numbers, out_html, template, *, title: str, train_images=None,
                 label_issues=None, human_labels=None, near_duplicates=None) -> None:
    """report/gallery.html: every run (`runs` (variant, seed) pairs, `scores` their files in the same order),
    the focus run of `q6_numbers` first; each analysis file None when that analysis is off."""
    tic = time.perf_counter()
    data, loaded, focus, numbers, analyses = _load(
        test_images, runs, scores, q6_numbers, focus_only=False, train_images=train_images,
        label_issues=label_issues, human_labels=human_labels, near_duplicates=near_duplicates)
    write_gallery_html(out_html, template, data, loaded, title=title, focus=focus, analyses=analyses,
                       verdict=numbers.get("verdict"))
    _log(out_html, data, f"{len(loaded)} runs, first {loaded[focus].variant} (seed {loaded[focus].seed})", tic)


def gallery_pdf(test_images, runs, scores, q6_numbers, out_pdf, template, *, title: str, train_images=None,
                label_issues=None, human_labels=None, near_duplicates=None) -> None:
    """report/gallery.pdf: the focus run of `q6_numbers` only, with the analyses' marks."""
    tic = time.perf_counter()
    data, loaded, _, _, analyses = _load(
        test_images, runs, scores, q6_numbers, focus_only=True, train_images=train_images,
        label_issues=label_issues, human_labels=human_labels, near_duplicates=near_duplicates)
    write_gallery_pdf(out_pdf, template, data, loaded[0], title=title, analyses=analyses)
    _log(out_pdf, data, f"{loaded[0].variant} (seed {loaded[0].seed})", tic)
