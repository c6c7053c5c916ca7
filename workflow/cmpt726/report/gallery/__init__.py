"""The per-image gallery: every test image with its true class, prediction, score and top-3, for every run.

report/gallery.html is one self-contained, sortable and filterable page; report/gallery.pdf a print grid of the
focus run. `load` reads and checks the inputs, `pack` makes what travels to the browser (sprites and one JSON
object), `pages` writes both pages and holds the rules' entry points.
"""

from .pages import gallery_html, gallery_pdf

__all__ = ["gallery_html", "gallery_pdf"]
