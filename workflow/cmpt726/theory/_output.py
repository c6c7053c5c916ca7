"""The theory questions' figure sizes and writers (the package's, at the theory figures' resolution)."""

from __future__ import annotations

import functools

from ..files import write_json
from ..plotting import plt, save_figure as _save_figure

FIGSIZE = (6.0, 4.5)
WIDE_FIGSIZE = (10.0, 3.8)  # three panels side by side
DPI = 120

save_figure = functools.partial(_save_figure, dpi=DPI)

__all__ = ["DPI", "FIGSIZE", "WIDE_FIGSIZE", "plt", "save_figure", "write_json"]
