"""matplotlib for every figure: Agg, an atomic PNG writer, `plain_text` (a `$` in a name is not typeset as math)."""

import matplotlib

matplotlib.use("Agg")  # must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

import functools  # noqa: E402

from .files import atomic_path  # noqa: E402

DPI = 130


def save_figure(fig, path, dpi: int = DPI) -> None:
    """Write `fig` as PNG (tight bounding box) atomically, and close it."""
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)


def plain_text(draw):
    """Run a figure function with math text off for every text it creates (tick labels at save time included)."""

    @functools.wraps(draw)
    def drawn_as_written(*args, **kwargs):
        with plt.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return drawn_as_written


__all__ = ["DPI", "plain_text", "plt", "save_figure"]
