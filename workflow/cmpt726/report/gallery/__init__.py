"""The per-image gallery: every test image with its true class, prediction, score and top-3, for every run.

report/gallery.html is one self-contained, sortable and filterable page; report/gallery.pdf a print grid of
the report's focus run. In three parts, read in this order:

- `load`: the test images, every run's score file and the optional per-image analyses (likely label errors,
  people's votes, near-duplicates), each checked against the test set;
- `pack`: what travels to the browser: the thumbnail sprites and one plain JSON object (its layout is in
  `pack`'s docstring);
- `pages`: gallery.html (the template, the JSON, and workflow/templates/gallery.js inlined: the script that
  turns the JSON into cards) and gallery.pdf (a print template, wkhtmltopdf), and the rules' entry points.
"""

from .pages import gallery_html, gallery_pdf

__all__ = ["gallery_html", "gallery_pdf"]
