"""The per-image gallery: every test image with its true class, prediction, score and top-3.

gallery.html is one self-contained file: the thumbnails are one JPEG sprite (a data URI) that CSS
places, the per-image facts one JSON array that a small script turns into cards, sorted and filtered
in the browser. gallery.pdf is a print layout (a fixed grid per page, no script) converted by
wkhtmltopdf, each thumbnail a small PNG data URI.
"""

from __future__ import annotations

import base64
import io
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from ..data import load_arrays
from ..evaluation import read_scores
from ..io import read_json, write_text
from .render import environment, html_to_pdf

THUMB = 32  # CIFAR images are 32 × 32
SPRITE_COLUMNS = 100
TOP_K = 3


# --------------------------------------------------------------------------- data
def load_gallery(test_images, scores_path) -> dict:
    """Test images (N, 32, 32, 3) and their scores; refuses a score file that does not match the images."""
    images, labels, classes = load_arrays(test_images)
    if images.ndim != 4 or images.shape[1:] != (3, THUMB, THUMB) or images.dtype != np.uint8:
        raise ValueError(f"{test_images}: images must be uint8 (N, 3, 32, 32), found {images.dtype} {images.shape}")
    scores = read_scores(scores_path, expected_rows=len(labels))
    if not np.array_equal(scores["label"], labels):
        raise ValueError(f"{scores_path}: its labels differ from those in {test_images}; re-evaluate the variant")
    return {"images": images.transpose(0, 2, 3, 1), "labels": labels, "probs": scores["probs"],
            "classes": classes}


def top_k(probs: np.ndarray, k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
    """Classes (N, k) by decreasing score, ties to the lower class index, and their scores."""
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(probs, order, 1)


def records(labels: np.ndarray, probs: np.ndarray) -> list[list]:
    """One compact row per image for the page script: [true, top1, top2, top3, p1, p2, p3] (p to 4 places)."""
    order, p = top_k(probs)
    p = np.round(p, 4)
    return [[int(y), *map(int, o), *map(float, q)] for y, o, q in zip(labels, order, p)]


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
    """JSON safe inside a <script> element."""
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/")


def summary(labels, probs, classes) -> dict:
    pred = probs.argmax(1)
    return {"n": int(len(labels)), "correct": int((pred == labels).sum()),
            "accuracy": float(100 * (pred == labels).mean()), "classes": classes}


def write_gallery_html(out_html, template, data: dict, *, variant: str, seed: int, title: str) -> dict:
    labels, probs = data["labels"], data["probs"]
    columns = min(SPRITE_COLUMNS, len(labels))
    context = {
        "title": title, "variant": variant, "seed": seed, **summary(labels, probs, data["classes"]),
        "sprite": sprite_uri(data["images"], columns),
        "sprite_columns": columns, "sprite_rows": math.ceil(len(labels) / columns),
        "records_json": _script_json(records(labels, probs)),
        "classes_json": _script_json(data["classes"]),
    }
    _render(template, out_html, context)
    return context


def print_cells(data: dict) -> list[dict]:
    """The facts under each thumbnail of the print layout."""
    labels, probs, classes = data["labels"], data["probs"], data["classes"]
    order, p = top_k(probs)
    return [{"index": i, "uri": encode(data["images"][i], "PNG", compress_level=6),
             "true": classes[labels[i]], "correct": bool(order[i, 0] == labels[i]),
             "top": [(classes[c], float(q)) for c, q in zip(order[i], p[i])]}
            for i in range(len(labels))]


def write_gallery_pdf(out_pdf, template, data: dict, *, variant: str, seed: int, title: str,
                      columns: int = 8, rows: int = 10) -> None:
    """A fixed grid of columns × rows images per A4 page, rendered by wkhtmltopdf."""
    cells = print_cells(data)
    per_page = columns * rows
    pages = [[cells[i:i + columns] for i in range(start, min(start + per_page, len(cells)), columns)]
             for start in range(0, len(cells), per_page)]
    context = {"title": title, "variant": variant, "seed": seed, "pages": pages, "columns": columns,
               **summary(data["labels"], data["probs"], data["classes"])}
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
def focus_scores(runs: list, scores: list, q6_numbers) -> tuple[str, int, str]:
    """The focus variant of the report (numbers.json of rule plot_q6), its first seed and that run's score file."""
    numbers = read_json(q6_numbers)
    by_run = {tuple(run): path for run, path in zip(runs, scores)}
    key = (numbers["focus"], numbers["seed"])
    if key not in by_run:
        raise ValueError(f"{q6_numbers}: its focus {key} is not one of the runs {sorted(by_run)}")
    return numbers["focus"], numbers["seed"], by_run[key]


def _build(write, test_images, runs, scores, q6_numbers, out, template, *, title: str) -> None:
    tic = time.perf_counter()
    variant, seed, path = focus_scores(runs, scores, q6_numbers)
    data = load_gallery(test_images, path)
    write(out, template, data, variant=variant, seed=seed, title=title)
    print(f"{out}: {len(data['labels'])} images of {variant} (seed {seed}), {Path(out).stat().st_size / 1e6:.1f} MB, "
          f"{time.perf_counter() - tic:.1f} s")


def gallery_html(test_images, runs, scores, q6_numbers, out_html, template, **kwargs) -> None:
    _build(write_gallery_html, test_images, runs, scores, q6_numbers, out_html, template, **kwargs)


def gallery_pdf(test_images, runs, scores, q6_numbers, out_pdf, template, **kwargs) -> None:
    _build(write_gallery_pdf, test_images, runs, scores, q6_numbers, out_pdf, template, **kwargs)
