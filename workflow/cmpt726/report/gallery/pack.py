"""What gallery.html carries to the browser: the thumbnails as JPEG sprites, and one plain JSON object of arrays:

    n, classes, labels (N class indices), title, sprite_columns, focus (index into runs), scale (10,000)
    runs[k]: variant, seed, correct, accuracy,
             top: 3·N class indices, image by image: its top-1 (the prediction), top-2, top-3
             p:   3·N the softmax probabilities of those classes × scale, rounded (ten-thousandths)
    variants[j]: name, runs (indices into runs), note (what the report's verdict says), accuracy (mean)
    label_issues: null or [test index, suggested class, rank] by rank
    humans: null or {votes: N·K counts image by image, majority: N classes, flags: N of 1 disagree | 2 unsure}
    duplicates: null or {columns, twins: [test index, tile in the twin sprite, train index, train label, distance]}
"""

import base64
import io
import json
import math

import numpy as np

from .load import TOP_K, Run

SPRITE_COLUMNS = 100
PROB_SCALE = 10_000  # probabilities travel as integer ten-thousandths
HUMAN_DISAGREE, HUMAN_UNSURE = 1, 2  # bits of the per-image human flags


def sprite(images: np.ndarray, columns: int = SPRITE_COLUMNS) -> np.ndarray:
    """(N, 32, 32, 3) → one (rows·32, columns·32, 3) sheet, image i at row i // columns, column i % columns."""
    n, size = len(images), images.shape[1]
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    padded = np.full((rows * columns, size, size, 3), 255, dtype=np.uint8)
    padded[:n] = images
    return padded.reshape(rows, columns, size, size, 3).transpose(0, 2, 1, 3, 4).reshape(
        rows * size, columns * size, 3)


def encode(array: np.ndarray, fmt: str = "JPEG", **options) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def sprite_uri(images: np.ndarray, columns: int = SPRITE_COLUMNS, quality: int = 85) -> str:
    return encode(sprite(images, columns), "JPEG", quality=quality, subsampling=2)  # 4:2:0: 16-px blocks


def sprite_columns(n: int) -> int:
    return max(1, min(SPRITE_COLUMNS, n))


def top_k(probs: np.ndarray, k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
    """Classes (N, k) by decreasing score, ties to the lower class index, and their scores."""
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(probs, order, 1)


def run_scores(probs: np.ndarray) -> dict:
    """One run's `top` and `p` arrays of the page JSON (see the module docstring)."""
    order, p = top_k(probs)
    scaled = np.rint(np.clip(p, 0, 1) * PROB_SCALE).astype(int)
    return {"top": order.reshape(-1).tolist(), "p": scaled.reshape(-1).tolist()}


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


def page_data(data: dict, runs: list[Run], focus: int, analyses: dict, *, title: str,
              verdict: dict | None = None) -> dict:
    """Everything the page script needs, as one JSON-able object (the module docstring has its layout)."""
    labels = data["labels"]
    variants: dict[str, list[int]] = {}
    for k, run in enumerate(runs):
        variants.setdefault(run.variant, []).append(k)
    notes = variant_notes(verdict)
    accuracy = [summary(labels, r.probs, None) for r in runs]
    out = {
        "n": len(labels), "classes": data["classes"], "labels": labels.tolist(), "title": title,
        "sprite_columns": sprite_columns(len(labels)), "focus": focus, "scale": PROB_SCALE,
        "runs": [{"variant": r.variant, "seed": r.seed, "correct": a["correct"], "accuracy": a["accuracy"],
                  **run_scores(r.probs)} for r, a in zip(runs, accuracy)],
        "variants": [{"name": name, "runs": ks, "note": notes.get(name, ""),
                      "accuracy": float(np.mean([accuracy[k]["accuracy"] for k in ks]))}
                     for name, ks in variants.items()],
        "label_issues": None, "humans": None, "duplicates": None,
    }
    li = analyses.get("label_issues")
    if li is not None:
        out["label_issues"] = [[int(i), int(s), int(r)] for r, i, s in sorted(zip(li["rank"], li["index"],
                                                                                    li["suggested"]))]
    h = analyses.get("human_labels")
    if h is not None:
        flags = h["disagree"].astype(int) * HUMAN_DISAGREE | h["unsure"].astype(int) * HUMAN_UNSURE
        out["humans"] = {"votes": h["votes"].reshape(-1).tolist(), "majority": h["majority"].tolist(),
                         "flags": flags.tolist()}
    d = analyses.get("near_duplicates")
    if d is not None:
        out["duplicates"] = {"columns": sprite_columns(len(d["images"])),
                             "twins": [[int(i), int(t), int(j), int(y), round(float(x), 4)] for i, t, j, y, x in
                                       zip(d["index"], d["tile"], d["train_index"], d["train_label"], d["distance"])]}
    return out


def script_json(obj) -> str:
    """JSON safe inside a <script> element: no <, > or & at all (JSON.parse reads the \\u escapes back)."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
