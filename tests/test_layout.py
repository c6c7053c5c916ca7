"""The report's layout as a reader sees it: report.html at phone, tablet and desktop widths in a real Chromium, and
report.pdf's pages as pictures. The checks are functions of a built report folder, so they also run by hand on any
build: `python -c "import test_layout as t; print(t.table_problems(PATH, 390), t.half_blank_pages(PDF))"`."""

from __future__ import annotations

import html as markup
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from chromium import Chromium, find_chromium
from conftest import shipped
from PIL import Image

WIDTHS = [390, 800, 1400]
# Every table cell, in the page: its content spilling out of it, a word of it broken across lines although the box
# the table sits in is wide enough for that word (a word may break after a hyphen that a letter follows, as prose
# does), and text wrapped in a column narrower than MIN_WRAPPED_EM.
CELL_PROBLEMS = r"""(() => {
  const MIN_WRAPPED_EM = %(min_em)s, problems = [], window_width = document.documentElement.clientWidth;
  const HYPHENATED = /\w-[A-Za-z]/;  // prose breaks "head_l2-tuned" after its hyphen; "6.758e-17" must not break
  if (document.documentElement.scrollWidth > window_width)
    problems.push(`the page is ${document.documentElement.scrollWidth} px wide in a ${window_width} px window`);
  const lineRects = range => [...range.getClientRects()].filter(r => r.width > 0);
  for (const [t, table] of [...document.querySelectorAll('table')].entries()) {
    const name = `table ${t} (${table.className || 'plain'})`, box = table.closest('.scroll');
    if (!box && table.getBoundingClientRect().right > window_width + 1)
      problems.push(`${name} runs past the window and is in no scroll box`);
    const room = (box || table.parentElement).clientWidth;
    for (const cell of table.querySelectorAll('td, th')) {
      const text = cell.textContent.trim().replace(/\s+/g, ' ').slice(0, 40);
      if (cell.scrollWidth > cell.clientWidth + 1)
        problems.push(`${name}: "${text}" spills out of its cell (${cell.scrollWidth} > ${cell.clientWidth} px)`);
      const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
      for (let node; (node = walker.nextNode());) {
        for (const word of node.data.matchAll(/\S+/g)) {
          const range = document.createRange();
          range.setStart(node, word.index);
          range.setEnd(node, word.index + word[0].length);
          const pieces = lineRects(range), tops = new Set(pieces.map(r => Math.round(r.top)));
          const width = pieces.reduce((sum, r) => sum + r.width, 0);
          if (tops.size > 1 && width <= room && !HYPHENATED.test(word[0]))
            problems.push(`${name}: "${word[0]}" broken across ${tops.size} lines in a ${cell.clientWidth} px cell`);
        }
      }
      if (cell.tagName !== 'TD') continue;
      const style = getComputedStyle(cell), em = parseFloat(style.fontSize);
      const content = document.createRange();
      content.selectNodeContents(cell);
      const lines = Math.round(content.getBoundingClientRect().height / parseFloat(style.lineHeight));
      if (lines > 1 && cell.clientWidth < MIN_WRAPPED_EM * em)
        problems.push(`${name}: "${text}" wraps onto ${lines} lines of a ${cell.clientWidth} px column`);
    }
  }
  return problems;
})()"""
MIN_WRAPPED_EM = 7  # about ten characters: a narrower column that wraps reads as a column of word fragments
MARGIN_MM, PAGE_MM = 15, 297  # report_pdf's A4 margins (cmpt726.report.render.html_to_pdf)
INK = 235  # a pixel darker than this (of 255) is printed; lighter is paper or the faintest table shading


def table_problems(html: Path, width: int) -> list[str]:
    """What is wrong with the tables of `html` in a window `width` px wide (CELL_PROBLEMS)."""
    with Chromium() as browser:
        browser.open(html, width=width, height=1000)
        return browser.evaluate(CELL_PROBLEMS % {"min_em": MIN_WRAPPED_EM})


def blank_share(png: Path) -> float:
    """The longest run of blank pixel rows inside the page's margins, as a share of their height: 0 for a full
    page, about 0.5 when the lower half is empty. A run, not a count of blank rows, so that the gaps between lines of
    text do not count as emptiness."""
    pixels = np.asarray(Image.open(png).convert("L"))
    margin = round(pixels.shape[0] * MARGIN_MM / PAGE_MM)
    printed = (pixels[margin:-margin] < INK).any(axis=1)
    longest = run = 0
    for row_printed in printed:
        run = 0 if row_printed else run + 1
        longest = max(longest, run)
    return longest / len(printed)


def half_blank_pages(pdf: Path, titles: list[str] | None = None, dpi: int = 40) -> list[str]:
    """The pages of `pdf` more than half blank that are neither the last page nor followed by a page starting with
    one of `titles` (a section's <h2>: every section after the first starts a new page, and what ends the one before
    may fill any part of its last page). Default titles: the <h2> of the report.html beside `pdf`."""
    if titles is None:
        html = pdf.with_suffix(".html").read_text(encoding="utf-8")
        titles = [re.sub(r"<[^>]+>|\s+", " ", t).strip() for t in re.findall(r"<h2>(.*?)</h2>", html, re.S)]
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    starts = [re.sub(r"\s+", " ", page).strip() for page in text.split("\f")]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["pdftoppm", "-png", "-r", str(dpi), str(pdf), f"{tmp}/page"], check=True)
        pngs = sorted(Path(tmp).glob("page-*.png"), key=lambda p: int(p.stem.split("-")[1]))
        shares = [blank_share(png) for png in pngs]
    found = []
    for number, share in enumerate(shares[:-1], start=1):
        next_starts_section = any(starts[number].startswith(title) for title in titles)
        if share > 0.5 and not next_starts_section:
            found.append(f"page {number} is {share:.0%} blank and page {number + 1} starts with "
                         f"{starts[number][:60]!r}")
    return found


def config_keys(config: dict, prefix: str = ""):
    for key, value in config.items():
        yield prefix + key
        if isinstance(value, dict):
            yield from config_keys(value, f"{prefix}{key}.")


# A formula left as code: x1^2, x_1, <=, "8 * 1.4826".
RAW_FORMULA = re.compile(r"\w\^\w|\b[a-z]_\d|<=|>=|\w\)? \* \d")


def raw_prose(html: str) -> list[str]:
    """The paragraphs, captions and list items of `html` that show a raw configuration key (a dotted key of the shipped
    config.yaml, or a key with "_" followed by ":" or "=") or a formula written as code (RAW_FORMULA)."""
    paths = list(config_keys(shipped()))
    names = [k for k in paths if not k.startswith(("variants.", "reference_accuracy."))]  # not the variants' names
    keys = {k for k in names if "." in k} | {k.rsplit(".", 1)[-1] for k in names if "_" in k.rsplit(".", 1)[-1]}
    found = []
    for element in re.finditer(r"<(p|figcaption|li)\b[^>]*>(.*?)</\1>", html, re.S):
        text = re.sub(r"\s+", " ", markup.unescape(re.sub(r"<[^>]+>", "", element.group(2))))
        for key in keys:
            if re.search(rf"(?<![\w.]){re.escape(key)}(?!\w)" + ("" if "." in key else r"\s*[:=]"), text):
                found.append(f"key {key} in: {text[:100]}")
        found += [f"formula {raw!r} in: {text[:100]}" for raw in RAW_FORMULA.findall(text)]
    return found


# --------------------------------------------------------------------------- the smoke run's report
@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (Debian: apt-get install chromium)")
@pytest.mark.parametrize("width", WIDTHS)
def test_tables_fit_their_values_at_phone_tablet_and_desktop_widths(smoke_run, width):
    problems = table_problems(smoke_run["dir"] / "report/report.html", width)
    assert problems == [], "\n".join(problems)


@pytest.mark.skipif(shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
                    reason="poppler-utils (pdftoppm, pdftotext) not installed")
def test_no_pdf_page_is_half_blank_except_before_a_section(smoke_run):
    problems = half_blank_pages(smoke_run["dir"] / "report/report.pdf")
    assert problems == [], "\n".join(problems)


def test_prose_says_configuration_keys_and_formulas_in_words(smoke_run):
    problems = raw_prose((smoke_run["dir"] / "report/report.html").read_text(encoding="utf-8"))
    assert problems == [], "\n".join(problems)


# --------------------------------------------------------------------------- the checks can fail
def test_the_prose_check_sees_a_raw_key_and_a_raw_formula_but_not_words():
    raw = ("<p>within ±0.5 points (<code>report.smallest_effect</code>)</p>"
           "<figcaption>the circle <code>x1^2 + x2^2 = 1</code></figcaption><li>weight_decay: 0.1</li>")
    assert len(raw_prose(raw)) == 4, raw_prose(raw)  # the key, x1^2 and x2^2, weight_decay
    from cmpt726.report.render import formula

    words = f"<p>the circle {formula('x1^2 + x2^2 = 1')}, target {formula('sin(2 x.u) + x_1^2 / 2')}</p>"
    assert raw_prose(words) == [] and "<var>x</var><sub>1</sub><sup>2</sup>" in words and "·" in words



def page(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "page.html"
    path.write_text(f"<!DOCTYPE html><html><head><meta name='viewport' content='width=device-width'></head>"
                    f"<body style='margin:0'>{body}</body></html>")
    return path


@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_the_cell_check_sees_a_squeezed_a_spilling_and_a_too_wide_table(tmp_path):
    squeezed = ("<table style='width:120px'><tr><td>key.name</td><td style='overflow-wrap:anywhere'>"
                "{a: 84.44, all_dropout: 84.55}</td></tr></table>")
    spilling = ("<table><tr><td style='width:40px;max-width:40px;white-space:nowrap;overflow:hidden'>2026-12-07 10:14"
                "</td></tr></table>")
    wide = "<table><tr><td style='white-space:nowrap'>" + "0.5000, " * 80 + "</td></tr></table>"
    problems = table_problems(page(tmp_path, squeezed + spilling + wide), 390)
    assert any('"all_dropout:" broken' in p or "wraps onto" in p for p in problems), problems
    assert any("spills out of its cell" in p for p in problems), problems
    assert any("in no scroll box" in p for p in problems) and any("the page is" in p for p in problems), problems
    fitted = "<div class='scroll' style='overflow-x:auto'>" + wide + "</div><table><tr><td>a b c</td></tr></table>"
    assert table_problems(page(tmp_path, fitted), 390) == []


def test_the_page_check_sees_a_half_blank_page_but_not_one_before_a_section(tmp_path):
    height, margin = 600, round(600 * MARGIN_MM / PAGE_MM)
    full, top_only = np.full((height, 400), 255, np.uint8), np.full((height, 400), 255, np.uint8)
    full[margin:-margin:3] = 0  # lines of text down the whole page
    top_only[margin:margin + 150:3] = 0  # a third of the page, then nothing
    Image.fromarray(full).save(tmp_path / "full.png")
    Image.fromarray(top_only).save(tmp_path / "top.png")
    assert blank_share(tmp_path / "full.png") < 0.05
    assert 0.6 < blank_share(tmp_path / "top.png") < 0.75


@pytest.mark.skipif(shutil.which("wkhtmltopdf") is None or shutil.which("pdftoppm") is None,
                    reason="wkhtmltopdf or poppler-utils not installed")
def test_the_page_check_names_the_page_a_block_left_half_blank(tmp_path):
    from cmpt726.report.render import html_to_pdf

    block = "<div style='height:{}px;background:#888;page-break-inside:avoid'></div>"
    html = page(tmp_path, "<section><h2>One</h2><p>A short section.</p></section>"
                          "<section style='page-break-before:always'><h2>Two</h2><p>A block too tall for what is left"
                          f" of the page moves on.</p>{block.format(400)}{block.format(1000)}</section>")
    html_to_pdf(html, tmp_path / "page.pdf")
    problems = half_blank_pages(tmp_path / "page.pdf", titles=["One", "Two"])
    assert len(problems) == 1 and problems[0].startswith("page 2 is"), problems
