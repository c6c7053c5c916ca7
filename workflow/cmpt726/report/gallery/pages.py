"""The gallery's two pages (gallery.html stands alone, its script inlined; gallery.pdf a print grid of the focus
run) and the rules' entry points.
"""

import math
import tempfile
import time
from pathlib import Path

import numpy as np

from ..render import html_to_pdf, render as _render
from .load import NO_ANALYSES, Run, focus_run, load_analyses, load_runs, load_test_images
from .pack import encode, page_data, script_json, sprite_columns, sprite_uri, summary, top_k


def inline_script(path) -> str:
    """The page script's text, to be inlined in a <script> element (so it must not close one)."""
    text = Path(path).read_text(encoding="utf-8")
    if "</script" in text.lower():
        raise ValueError(f"{path}: contains '</script', which would end the inlined script early")
    return text


def write_gallery_html(out_html, template, script, data: dict, runs: list[Run], *, title: str, focus: int = 0,
                       analyses: dict | None = None, verdict: dict | None = None) -> dict:
    """The interactive gallery of every run; `focus` (an index into runs) is the run shown first."""
    analyses = analyses or NO_ANALYSES
    labels = data["labels"]
    columns = sprite_columns(len(labels))
    dups = analyses.get("near_duplicates")
    twins = dups["images"] if dups is not None else []
    shown = runs[focus]
    context = {
        "title": title, "variant": shown.variant, "seed": shown.seed,
        **summary(labels, shown.probs, data["classes"]),
        "sprite": sprite_uri(data["images"], columns),
        "sprite_columns": columns, "sprite_rows": math.ceil(len(labels) / columns),
        "twin_sprite": sprite_uri(twins, sprite_columns(len(twins))) if len(twins) else None,
        "twin_columns": sprite_columns(len(twins)), "twin_rows": math.ceil(len(twins) / sprite_columns(len(twins))),
        "data_json": script_json(page_data(data, runs, focus, analyses, title=title, verdict=verdict)),
        "script": inline_script(script),
        "n_runs": len(runs), "n_variants": len({r.variant for r in runs}),
        "multi_seed": len({r.variant for r in runs}) < len(runs),
        "has": {k: analyses.get(k) is not None for k in NO_ANALYSES},
    }
    _render(template, out_html, context)
    return context


def badges(analyses: dict, classes: list[str]) -> dict[int, list[tuple[str, str]]]:
    """Per flagged test image, the short lines of the print layout: (kind, text), each one 10-px line."""
    out: dict[int, list[tuple[str, str]]] = {}
    li = analyses.get("label_issues")
    if li is not None:
        for i, s in zip(li["index"], li["suggested"]):
            out.setdefault(int(i), []).append(("label", f"label? → {classes[s]}"))
    h = analyses.get("human_labels")
    if h is not None:
        for i in np.flatnonzero(h["disagree"]):
            m = int(h["majority"][i])
            # two lines: "humans: automobile 45/51" is wider than a cell
            out.setdefault(int(i), []).extend([("humans", f"humans: {classes[m]}"),
                                               ("humans", f"{int(h['votes'][i, m])}/{int(h['votes'][i].sum())} "
                                                          "people")])
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


def gallery_html(test_images, runs, scores, q6_numbers, out_html, template, script, *, title: str,
                 **analysis_files) -> None:
    """report/gallery.html: every run, the focus run of `q6_numbers` first; an analysis None when it is off."""
    tic = time.perf_counter()
    data, loaded, focus, numbers, analyses = _load(test_images, runs, scores, q6_numbers, focus_only=False,
                                                   **analysis_files)
    write_gallery_html(out_html, template, script, data, loaded, title=title, focus=focus, analyses=analyses,
                       verdict=numbers.get("verdict"))
    _log(out_html, data, f"{len(loaded)} runs, first {loaded[focus].variant} (seed {loaded[focus].seed})", tic)


def gallery_pdf(test_images, runs, scores, q6_numbers, out_pdf, template, *, title: str, **analysis_files) -> None:
    """report/gallery.pdf: the focus run of `q6_numbers` only, with the analyses' marks."""
    tic = time.perf_counter()
    data, loaded, _, _, analyses = _load(test_images, runs, scores, q6_numbers, focus_only=True, **analysis_files)
    write_gallery_pdf(out_pdf, template, data, loaded[0], title=title, analyses=analyses)
    _log(out_pdf, data, f"{loaded[0].variant} (seed {loaded[0].seed})", tic)
