"""The per-image gallery: every test image with its true class, prediction, score and top-3, for every run."""

from .pages import gallery_html, gallery_pdf

__all__ = ["gallery_html", "gallery_pdf"]
