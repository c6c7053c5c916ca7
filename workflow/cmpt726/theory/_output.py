"""Atomic writers for the theory outputs (JSON of numbers, PNG figures)."""

from __future__ import annotations

import json
import os

import matplotlib

matplotlib.use("Agg")  # no display on the workers; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..io import atomic_path  # noqa: E402

FIGSIZE = (6.0, 4.5)
WIDE_FIGSIZE = (10.0, 3.8)  # three panels side by side
DPI = 120


def _plain(value):
    """numpy scalars/arrays -> plain Python for json."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(path: str | os.PathLike, numbers: dict) -> None:
    """Write `numbers` at full precision; a reader never sees a half-written file."""
    # allow_nan=False: a NaN in the report's numbers is a bug, fail here.
    text = json.dumps(numbers, indent=2, default=_plain, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_figure(fig, path: str | os.PathLike) -> None:
    """Save `fig` as PNG at the report's dpi, atomically, and close it."""
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=DPI, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)


__all__ = ["DPI", "FIGSIZE", "WIDE_FIGSIZE", "plt", "save_figure", "write_json"]
