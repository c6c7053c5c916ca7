"""The per-image gallery: report/gallery.html (one file, sortable and filterable) and report/gallery.pdf."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from chromium import Chromium, find_chromium
from conftest import CLASSES, REPO
from test_report import Page, decode_image

from cmpt726.data import save_arrays
from cmpt726.evaluation import read_scores, write_scores
from cmpt726.report import gallery

TEMPLATES = REPO / "workflow" / "templates"


@pytest.fixture(scope="module")
def built(smoke_run):
    workdir = smoke_run["dir"]
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    variant = config["report"]["gallery_variant"] or next(iter(config["variants"]))
    scores = read_scores(workdir / f"results/scores/{variant}/seed{config['seeds'][0]}.tsv")
    return {"dir": workdir, "html": (workdir / "report/gallery.html").read_text(encoding="utf-8"),
            "pdf": workdir / "report/gallery.pdf", "variant": variant, "scores": scores}


def embedded_json(html: str, element_id: str):
    return json.loads(re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html,
                                re.S).group(1))


# --------------------------------------------------------------------------- gallery.html of the smoke run
def test_gallery_html_is_one_file_with_every_image_and_its_facts(built):
    html, scores = built["html"], built["scores"]
    page = Page(html)
    assert page.errors == []
    assert not re.search(r'(src|href)="(?!data:|#)[^"]+"', html)  # nothing beside the file is needed
    rows = embedded_json(html, "records")
    assert embedded_json(html, "classes") == CLASSES
    n = len(scores["label"])
    assert len(rows) == n
    order = np.argsort(-scores["probs"], axis=1, kind="stable")[:, :3]
    for i, row in enumerate(rows):
        assert row[0] == scores["label"][i]
        assert row[1:4] == order[i].tolist() and row[1] == scores["pred"][i]
        assert row[4] == pytest.approx(scores["probs"][i].max(), abs=1e-4)
    # One sprite holds every thumbnail, image i at (i // columns, i % columns).
    sprite = decode_image(re.search(r"url\((data:image/jpeg;base64,[^)]+)\)", html).group(1))
    columns = int(re.search(r"var COLS = (\d+)", html).group(1))
    assert sprite.shape == (math.ceil(n / columns) * 32, columns * 32, 3)
    images = np.load(built["dir"] / "results/data/cifar10/test.npz")["images"].transpose(0, 2, 3, 1)
    for i in [0, n - 1]:
        r, c = divmod(i, columns)
        tile = sprite[r * 32:(r + 1) * 32, c * 32:(c + 1) * 32].astype(int)
        error = np.abs(tile[None] - images.astype(int)).mean(axis=(1, 2, 3))
        assert error.argmin() == i  # JPEG, so not exact, but closest to the right image
    assert f"variant <code>{built['variant']}</code>" in html


@pytest.mark.skipif(shutil.which("pdfinfo") is None, reason="poppler-utils (pdfinfo, pdftotext) not installed")
def test_gallery_pdf_has_a_grid_of_every_image(built):
    n = len(built["scores"]["label"])
    info = subprocess.run(["pdfinfo", str(built["pdf"])], capture_output=True, text=True, check=True).stdout
    assert int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1)) == math.ceil(n / 80)  # 8 × 10 per page
    assert built["pdf"].stat().st_size < 50e6
    text = subprocess.run(["pdftotext", str(built["pdf"]), "-"], capture_output=True, text=True,
                          check=True).stdout
    for i in [0, n // 2, n - 1]:
        assert f"#{i}" in text, i
    label, pred = built["scores"]["label"][0], built["scores"]["pred"][0]
    assert f"true: {CLASSES[label]}" in text and f"1: {CLASSES[pred]} {built['scores']['probs'][0].max():.3f}" in text
    images = subprocess.run(["pdfimages", "-list", str(built["pdf"])], capture_output=True, text=True,
                            check=True).stdout
    assert len(images.strip().splitlines()) - 2 == n


# --------------------------------------------------------------------------- a real browser
needs_chromium = pytest.mark.skipif(find_chromium() is None,
                                    reason="chromium is not installed (Debian: apt-get install chromium); "
                                           "CI installs it")


@needs_chromium
def test_gallery_controls_sort_and_filter_in_chromium(built, tmp_path):
    scores = built["scores"]
    n = len(scores["label"])
    wrong = int((scores["pred"] != scores["label"]).sum())
    cards = "Array.from(document.querySelectorAll('#grid .card'))"

    def choose(browser, control, value):
        browser.evaluate(f"(() => {{ const s = document.getElementById('{control}'); s.value = '{value}';"
                         " s.dispatchEvent(new Event('change', {bubbles: true})); })()")

    def shown(browser, attribute):
        return browser.evaluate(f"{cards}.map(c => Number(c.dataset.{attribute}))")

    with Chromium() as browser:
        browser.open(built["dir"] / "report/gallery.html")
        assert shown(browser, "index") == list(range(n))
        assert browser.evaluate("document.getElementById('count').textContent") == f"showing {n} of {n} images"
        first = browser.screenshot(tmp_path / "gallery.png")

        choose(browser, "sort", "score-desc")
        got = shown(browser, "score")
        assert got == sorted(got, reverse=True) and len(got) == n
        assert shown(browser, "index")[0] == int(np.argmax(scores["probs"].max(1)))
        choose(browser, "sort", "score-asc")
        got = shown(browser, "score")
        assert got == sorted(got)

        choose(browser, "outcome", "wrong")
        assert len(shown(browser, "index")) == wrong
        assert browser.evaluate(f"{cards}.every(c => c.classList.contains('bad'))")
        choose(browser, "outcome", "correct")
        assert len(shown(browser, "index")) == n - wrong
        assert browser.evaluate(f"{cards}.every(c => c.classList.contains('ok'))")
        choose(browser, "outcome", "")

        label = int(np.bincount(scores["label"]).argmax())
        choose(browser, "true-class", str(label))
        assert shown(browser, "true") == [label] * int((scores["label"] == label).sum())
        pred = int(scores["pred"][0])
        choose(browser, "true-class", "")
        choose(browser, "pred-class", str(pred))
        assert set(shown(browser, "pred")) == {pred}
        # The view lives in the URL fragment, so a reload keeps it.
        assert f"pred-class={pred}" in browser.evaluate("location.hash")
        filtered = browser.screenshot(tmp_path / "filtered.png")

    from PIL import Image

    a, b = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in (first, filtered))
    assert a.std() > 10 and b.std() > 10  # something is drawn (thumbnails included)
    assert np.abs(a - b).mean() > 1  # and the controls changed what is shown


# --------------------------------------------------------------------------- units
def test_sprite_places_image_i_at_its_row_and_column():
    images = np.arange(7, dtype=np.uint8)[:, None, None, None] * np.ones((1, 32, 32, 3), np.uint8)
    sheet = gallery.sprite(images, columns=3)
    assert sheet.shape == (3 * 32, 3 * 32, 3)
    for i in range(7):
        r, c = divmod(i, 3)
        assert (sheet[r * 32:(r + 1) * 32, c * 32:(c + 1) * 32] == i).all()
    assert (sheet[64:, 32:] == 255).all()  # padding after the last image


def test_top_k_breaks_ties_to_the_lower_class():
    probs = np.array([[0.2, 0.4, 0.4, 0.0], [0.1, 0.2, 0.3, 0.4]])
    order, p = gallery.top_k(probs, 3)
    assert order.tolist() == [[1, 2, 0], [3, 2, 1]]
    assert p[1].tolist() == [0.4, 0.3, 0.2]


def test_gallery_refuses_scores_of_other_images(tmp_path):
    labels = np.array([0, 1, 2])
    save_arrays(tmp_path / "test.npz", np.zeros((3, 3, 32, 32), np.uint8), labels, CLASSES)
    probs = np.full((2, 10), 0.1)
    write_scores(tmp_path / "short.tsv", labels[:2], probs, np.ones(2))
    with pytest.raises(ValueError, match="short.tsv: 2 rows, expected 3"):
        gallery.load_gallery(tmp_path / "test.npz", tmp_path / "short.tsv")
    write_scores(tmp_path / "other.tsv", np.array([2, 1, 0]), np.full((3, 10), 0.1), np.ones(3))
    with pytest.raises(ValueError, match="other.tsv: its labels differ"):
        gallery.load_gallery(tmp_path / "test.npz", tmp_path / "other.tsv")


def test_class_names_are_escaped(tmp_path):
    classes = ["<b>cat</b>", 'say "hi"', "a&b", "</script><script>alert(1)</script>"] + CLASSES[4:]
    data = {"images": np.zeros((2, 32, 32, 3), np.uint8), "labels": np.array([0, 3]),
            "probs": np.eye(10)[[0, 3]] * 0.9 + 0.01, "classes": classes}
    out = tmp_path / "g.html"
    gallery.write_gallery_html(out, TEMPLATES / "gallery.html.j2", data, variant="<v>", seed=0, title="t")
    html = out.read_text()
    assert "<b>cat</b>" not in html.replace('"<b>cat<\\/b>"', "") and "&lt;b&gt;cat&lt;/b&gt;" in html
    assert "</script><script>alert" not in html
    assert embedded_json(html, "classes") == classes
    assert Page(html).errors == []


def test_benchmark_script_runs(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks/gallery_bench.py"), "--n", "150", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"gallery\.html\s+[\d.]+ s", proc.stdout) and re.search(r"both\s+[\d.]+ s", proc.stdout)
    assert (tmp_path / "gallery.html").exists() and (tmp_path / "gallery.pdf").exists()
