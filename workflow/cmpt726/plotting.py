"""matplotlib for every figure of the workflow: the Agg backend (no display on the workers) set
once, before pyplot is imported, and one atomic PNG writer."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

from .io import atomic_path  # noqa: E402

DPI = 130


def save_figure(fig, path, dpi: int = DPI) -> None:
    """Write `fig` as PNG (tight bounding box) atomically, and close it."""
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)


__all__ = ["DPI", "plt", "save_figure"]
