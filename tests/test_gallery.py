"""The per-image gallery: report/gallery.html (one file, sortable and filterable) and report/gallery.pdf."""

import json
import math
import re
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image
from chromium import Chromium, needs_chromium
from conftest import CLASSES, REPO
from test_report import Page, decode_image, pdf_pages, run_tool

from cmpt726.analysis.human_labels import read_human_table, write_human_table
from cmpt726.analysis.label_issues import TSV_COLUMNS as ISSUE_COLUMNS
from cmpt726.analysis.near_duplicates import COLUMNS as DUPLICATE_COLUMNS
from cmpt726.data import save_arrays
from cmpt726.evaluation import read_scores, write_scores
from cmpt726.files import write_json, write_tsv
from cmpt726.report.gallery import load, pack, pages

TEMPLATES = REPO / "workflow" / "templates"
SCRIPT = TEMPLATES / "gallery.js"


@pytest.fixture(scope="module")
def built(smoke_run):
    workdir = smoke_run["dir"]
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    variant = config["report"]["gallery_variant"] or next(iter(config["variants"]))
    runs = {(v, seed): read_scores(workdir / f"results/scores/{v}/seed{seed}.tsv")
            for v in config["variants"] for seed in config["seeds"]}
    return {"dir": workdir, "html": (workdir / "report/gallery.html").read_text(encoding="utf-8"),
            "pdf": workdir / "report/gallery.pdf", "variant": variant, "runs": runs,
            "scores": runs[variant, config["seeds"][0]]}


def embedded_json(html: str):
    return json.loads(re.search(r'<script id="gallery-data" type="application/json">(.*?)</script>', html, re.S)[1])


def self_contained_data(html: str) -> dict:
    """The gallery's data, after checking the page is balanced and needs nothing beside the file."""
    assert Page(html).errors == []
    assert not re.search(r'(src|href)="(?!data:|#)[^"]+"', html)
    return embedded_json(html)


def decode_run(entry: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A run's scores by the documented layout: top and p, 3 per image, p in ten-thousandths."""
    return np.array(entry["top"]).reshape(n, 3), np.array(entry["p"]).reshape(n, 3) / 10_000


def test_gallery_html_is_one_file_with_every_image_and_its_facts(built):
    html, scores = built["html"], built["scores"]
    data, n = self_contained_data(html), len(scores["label"])
    assert data["classes"] == CLASSES and data["n"] == n and data["labels"] == scores["label"].tolist()
    # Every run of the workflow is in the file, the focus run first on screen.
    assert {(r["variant"], r["seed"]) for r in data["runs"]} == set(built["runs"])
    assert data["runs"][data["focus"]]["variant"] == built["variant"]
    for entry in data["runs"]:
        run = built["runs"][entry["variant"], entry["seed"]]
        top, p = decode_run(entry, n)
        order = np.argsort(-run["probs"], axis=1, kind="stable")[:, :3]
        assert np.array_equal(top, order) and np.array_equal(top[:, 0], run["pred"])
        assert np.abs(p - np.take_along_axis(run["probs"], order, 1)).max() <= 1e-4
    # One sprite holds every thumbnail, image i at (i // columns, i % columns).
    sprite = decode_image(re.search(r"url\((data:image/jpeg;base64,[^)]+)\)", html).group(1))
    columns = data["sprite_columns"]
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
    n, pdf = len(built["scores"]["label"]), built["pdf"]
    assert pdf_pages(pdf) == math.ceil(n / 80) and pdf.stat().st_size < 50e6  # 8 × 10 per page
    text = run_tool("pdftotext", pdf, "-")
    for i in [0, n // 2, n - 1]:
        assert f"#{i}" in text, i
    label, pred = built["scores"]["label"][0], built["scores"]["pred"][0]
    assert f"true: {CLASSES[label]}" in text and f"1: {CLASSES[pred]} {built['scores']['probs'][0].max():.3f}" in text
    assert len(run_tool("pdfimages", "-list", pdf).strip().splitlines()) - 2 == n


CARDS = "Array.from(document.querySelectorAll('#grid .card'))"


def choose(browser, control, value):
    browser.evaluate(f"(() => {{ const s = document.getElementById('{control}'); s.value = '{value}';"
                     " s.dispatchEvent(new Event('change', {bubbles: true})); })()")


def shown(browser, attribute="index"):
    return browser.evaluate(f"{CARDS}.map(c => Number(c.dataset.{attribute}))")


def card_texts(browser, selector):
    return browser.evaluate(f"{CARDS}.map(c => c.querySelector('{selector}').textContent)")


@needs_chromium
def test_gallery_controls_sort_and_filter_in_chromium(built, tmp_path):
    scores = built["scores"]
    n = len(scores["label"])
    wrong = int((scores["pred"] != scores["label"]).sum())
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
        assert shown(browser, "score") == sorted(got)

        choose(browser, "outcome", "wrong")
        assert len(shown(browser, "index")) == wrong
        assert browser.evaluate(f"{CARDS}.every(c => c.classList.contains('bad'))")
        choose(browser, "outcome", "correct")
        assert len(shown(browser, "index")) == n - wrong
        assert browser.evaluate(f"{CARDS}.every(c => c.classList.contains('ok'))")
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

    a, b = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in (first, filtered))
    assert a.std() > 10 and b.std() > 10  # something is drawn (thumbnails included)
    assert np.abs(a - b).mean() > 1  # and the controls changed what is shown


def test_sprite_places_image_i_at_its_row_and_column():
    images = np.arange(7, dtype=np.uint8)[:, None, None, None] * np.ones((1, 32, 32, 3), np.uint8)
    sheet = pack.sprite(images, columns=3)
    assert sheet.shape == (3 * 32, 3 * 32, 3)
    for i in range(7):
        r, c = divmod(i, 3)
        assert (sheet[r * 32:(r + 1) * 32, c * 32:(c + 1) * 32] == i).all()
    assert (sheet[64:, 32:] == 255).all()  # padding after the last image


def test_gallery_refuses_scores_of_other_images(tmp_path):
    labels = np.array([0, 1, 2])
    save_arrays(tmp_path / "test.npz", np.zeros((3, 3, 32, 32), np.uint8), labels, CLASSES)
    probs = np.full((2, 10), 0.1)
    write_scores(tmp_path / "short.tsv", labels[:2], probs, np.ones(2))
    data = load.load_test_images(tmp_path / "test.npz")
    with pytest.raises(ValueError, match="short.tsv: 2 rows, expected 3"):
        load.load_runs(data, [("v", 0)], [tmp_path / "short.tsv"])
    write_scores(tmp_path / "other.tsv", np.array([2, 1, 0]), np.full((3, 10), 0.1), np.ones(3))
    with pytest.raises(ValueError, match="other.tsv: labels disagree with .*test.npz on 2 images"):
        load.load_runs(data, [("v", 0)], [tmp_path / "other.tsv"])


def test_class_names_are_escaped(tmp_path):
    classes = ["<b>cat</b>", 'say "hi"', "a&b", "</script><script>alert(1)</script>"] + CLASSES[4:]
    data = {"images": np.zeros((2, 32, 32, 3), np.uint8), "labels": np.array([0, 3]), "classes": classes}
    probs = np.eye(10)[[0, 3]] * 0.9 + 0.01
    out = tmp_path / "g.html"
    pages.write_gallery_html(out, TEMPLATES / "gallery.html.j2", SCRIPT, data,
                             [load.Run("<v>", 0, probs), load.Run("</script>", 1, probs[::-1])], title="<i>t</i>")
    html = out.read_text()
    assert "<b>cat</b>" not in html.replace('"<b>cat<\\/b>"', "") and "&lt;b&gt;cat&lt;/b&gt;" in html
    assert "</script><script>alert" not in html
    assert "<v>" not in html and "<i>t</i>" not in html
    data = embedded_json(html)
    assert data["classes"] == classes and [r["variant"] for r in data["runs"]] == ["<v>", "</script>"]
    assert Page(html).errors == []


def test_page_script_is_inlined_and_may_not_close_its_element(tmp_path):
    data = {"images": np.zeros((2, 32, 32, 3), np.uint8), "labels": np.array([0, 3]), "classes": CLASSES}
    runs = [load.Run("v", 0, np.eye(10)[[0, 3]])]
    out = tmp_path / "g.html"
    pages.write_gallery_html(out, TEMPLATES / "gallery.html.j2", SCRIPT, data, runs, title="t")
    assert f"<script>\n{SCRIPT.read_text(encoding='utf-8')}</script>" in out.read_text(encoding="utf-8")
    bad = tmp_path / "bad.js"
    bad.write_text('console.log("</SCRIPT>");\n')
    with pytest.raises(ValueError, match="bad.js: contains '</script'"):
        pages.write_gallery_html(tmp_path / "g2.html", TEMPLATES / "gallery.html.j2", bad, data, runs, title="t")
    assert not (tmp_path / "g2.html").exists()


VARIANTS, SEEDS = ["base", "wide", "aug"], [0, 1]
N_TINY, N_TRAIN = 100, 40
ISSUES = {7: ("frog", 2), 23: ("ship", 1), 51: ("truck", 3), 77: ("horse", 4)}  # index: (suggested, rank)
HUMANS_DISAGREE = {7: ("dog", 37, 51), 12: ("cat", 24, 50), 33: ("automobile", 40, 52), 77: ("bird", 36, 49)}
HUMANS_UNSURE = {12, 40, 44}  # 12 both: the majority takes 24 of 50 votes
TWINS = {5: 3, 17: 30, 42: 11, 77: 25}  # test index: training index (77 carries all three marks)


def smooth_images(rng, n):
    """(n, 3, 32, 32) uint8 photo-like enough for JPEG: 8 × 8 noise upsampled × 4."""
    coarse = rng.integers(0, 256, (n, 3, 8, 8)).astype(np.uint8)
    return coarse.repeat(4, 2).repeat(4, 3)


def write_tiny_inputs(folder):
    """Test and train npz, 3 variants × 2 seeds of score files whose predictions agree on about half of the
    images, numbers.json, and one planted file per analysis (the dicts above say what is planted)."""
    rng = np.random.default_rng(726)
    labels = rng.integers(0, 10, N_TINY)
    for i, (suggested, _) in ISSUES.items():
        labels[i] = (CLASSES.index(suggested) + 1) % 10  # a given label that is not the suggestion
    for i, (majority, _, _) in HUMANS_DISAGREE.items():
        if CLASSES[labels[i]] == majority:
            labels[i] = (labels[i] + 2) % 10
    test_images, train_images = smooth_images(rng, N_TINY), smooth_images(rng, N_TRAIN)
    train_labels = rng.integers(0, 10, N_TRAIN)
    save_arrays(folder / "test.npz", test_images, labels, CLASSES)
    save_arrays(folder / "train.npz", train_images, train_labels, CLASSES)

    shared = rng.normal(0, 1, (N_TINY, 10))
    shared[np.arange(N_TINY), labels] += 1.0
    runs, scores, probs = [], [], {}
    for v, variant in enumerate(VARIANTS):
        own = rng.normal(0, 0.8, (N_TINY, 10))
        for seed in SEEDS:
            logits = 3 * (shared + own + rng.normal(0, 0.5, (N_TINY, 10)))
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            path = folder / f"scores/{variant}/seed{seed}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_scores(path, labels, p, -np.log(p[np.arange(N_TINY), labels]))
            runs.append((variant, seed))
            scores.append(path)
            probs[variant, seed] = read_scores(path)["probs"]  # as the gallery reads them (6 digits)
    write_json(folder / "numbers.json", {"focus": "wide", "seed": 0,
                                         "verdict": {"top": "wide", "best": None, "tied_with_top": ["wide", "aug"]}})

    write_tsv(folder / "label_issues.tsv", ISSUE_COLUMNS,
              [[i, CLASSES[labels[i]], s, 0.05 * r, r, 4, 6]
               for i, (s, r) in sorted(ISSUES.items(), key=lambda x: x[1][1])])
    votes = np.zeros((N_TINY, 10), np.int64)
    votes[np.arange(N_TINY), labels] = 50
    votes[np.arange(N_TINY), (labels + 5) % 10] = 1
    for i, (majority, top, total) in HUMANS_DISAGREE.items():
        m = CLASSES.index(majority)
        third = next(c for c in range(10) if c not in (m, labels[i]))
        votes[i] = 0
        votes[i, m], votes[i, labels[i]] = top, min(total - top, top // 2)
        votes[i, third] = total - votes[i, m] - votes[i, labels[i]]
    for i in HUMANS_UNSURE - set(HUMANS_DISAGREE):
        votes[i] = 0
        votes[i, [labels[i], (labels[i] + 1) % 10, (labels[i] + 2) % 10]] = 30, 12, 8
    np.save(folder / "counts.npy", votes)
    write_human_table(folder / "counts.npy", labels, folder / "human_labels.tsv", CLASSES, unsure_below=0.7)
    humans = read_human_table(folder / "human_labels.tsv")
    assert set(np.flatnonzero(humans["disagree"])) == set(HUMANS_DISAGREE)
    assert set(np.flatnonzero(humans["unsure"])) == HUMANS_UNSURE
    write_tsv(folder / "near_duplicates.tsv", DUPLICATE_COLUMNS,
              [[i, TWINS.get(i, int(rng.integers(N_TRAIN))), 0.01 if i in TWINS else 1.1, int(rng.integers(N_TRAIN)),
                0.5, int(i in TWINS)] for i in range(N_TINY)])
    analyses = {name: folder / f"{name}.tsv" for name in ("label_issues", "human_labels", "near_duplicates")}
    return {"dir": folder, "labels": labels, "runs": runs, "scores": scores, "probs": probs,
            "test_images": test_images, "train_images": train_images, "train_labels": train_labels,
            "analyses": analyses, "args": (folder / "test.npz", runs, scores, folder / "numbers.json")}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """gallery.html and gallery.pdf built from the tiny files, as the rules would, every analysis on."""
    folder = tmp_path_factory.mktemp("gallery")
    inputs = write_tiny_inputs(folder)
    files = dict(inputs["analyses"], train_images=folder / "train.npz")
    pages.gallery_html(*inputs["args"], folder / "gallery.html", TEMPLATES / "gallery.html.j2", SCRIPT,
                       title="tiny", **files)
    inputs["html"] = (folder / "gallery.html").read_text(encoding="utf-8")
    if shutil.which("wkhtmltopdf"):
        pages.gallery_pdf(*inputs["args"], folder / "gallery.pdf", TEMPLATES / "gallery_print.html.j2",
                          title="tiny", **files)
    return inputs


def predictions(tiny, runs) -> np.ndarray:
    return np.stack([tiny["probs"][r].argmax(1) for r in runs])


def test_run_scores_are_the_top_3_in_ten_thousandths_ties_to_the_lower_class():
    order, p = pack.top_k(np.array([[0.2, 0.4, 0.4, 0.0], [0.1, 0.2, 0.3, 0.4]]), 3)
    assert order.tolist() == [[1, 2, 0], [3, 2, 1]] and p[1].tolist() == [0.4, 0.3, 0.2]
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.full(10, 0.3), 500)
    probs[0] = [0.2, 0.4, 0.4, 0, 0, 0, 0, 0, 0, 0]  # a tie: the lower class first
    entry = json.loads(pack.script_json(pack.run_scores(probs)))
    assert all(isinstance(x, int) for x in entry["top"] + entry["p"])  # plain integers, nothing to decode
    top, p = decode_run(entry, 500)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :3]
    assert np.array_equal(top, order) and top[0].tolist() == [1, 2, 0]
    assert np.abs(p - np.take_along_axis(probs, order, 1)).max() <= 0.5e-4


def test_gallery_file_holds_every_run_and_analysis(tiny):
    data, n = self_contained_data(tiny["html"]), N_TINY
    assert [(r["variant"], r["seed"]) for r in data["runs"]] == tiny["runs"]
    assert data["runs"][data["focus"]]["variant"] == "wide" and data["runs"][data["focus"]]["seed"] == 0
    for entry in data["runs"]:
        probs = tiny["probs"][entry["variant"], entry["seed"]]
        top, p = decode_run(entry, n)
        assert np.array_equal(top[:, 0], probs.argmax(1))
        assert np.abs(p[:, 0] - probs.max(1)).max() <= 0.5e-4
        assert entry["correct"] == int((probs.argmax(1) == tiny["labels"]).sum())
    assert {v["name"]: v["note"] for v in data["variants"]} == {"base": "", "wide": "top, tied", "aug": "tied with top"}
    assert {r[0]: (CLASSES[r[1]], r[2]) for r in data["label_issues"]} == ISSUES
    assert np.array(data["humans"]["votes"]).reshape(n, 10).sum(1).min() >= 49
    assert {r[0]: r[2] for r in data["duplicates"]["twins"]} == TWINS


def test_analysis_files_are_checked_against_the_test_images(tiny, tmp_path):
    data = load.load_test_images(tiny["dir"] / "test.npz")
    text = (tiny["dir"] / "label_issues.tsv").read_text().splitlines()
    index, given = text[1].split("\t")[:2]
    other = CLASSES[(CLASSES.index(given) + 1) % 10]
    changed = text[1].replace(f"\t{given}\t", f"\t{other}\t", 1)
    (tmp_path / "issues.tsv").write_text(f"{text[0]}\n{changed}\n")
    with pytest.raises(ValueError, match=rf"issues.tsv: image {index} is given '{other}' here"):
        load.load_label_issues(tmp_path / "issues.tsv", data)
    lines = (tiny["dir"] / "human_labels.tsv").read_text().splitlines()
    (tmp_path / "humans.tsv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match=f"humans.tsv: {N_TINY - 1} rows, expected one per test image"):
        load.load_human_labels(tmp_path / "humans.tsv", data)
    with pytest.raises(ValueError, match="near_duplicates.tsv: near-duplicates need the training images"):
        load.load_near_duplicates(tiny["analyses"]["near_duplicates"], None, data)
    save_arrays(tmp_path / "small_train.npz", tiny["train_images"][:10], tiny["train_labels"][:10], CLASSES)
    with pytest.raises(ValueError, match=r"near_duplicates.tsv: train_index 30 is not an image of .*small_train.npz"):
        load.load_near_duplicates(tiny["analyses"]["near_duplicates"], tmp_path / "small_train.npz", data)


@needs_chromium
def test_run_selector_switches_the_cards_to_that_runs_scores(tiny):
    with Chromium() as browser:
        browser.open(tiny["dir"] / "gallery.html")
        count = browser.evaluate("document.getElementById('count').textContent")
        assert count == f"showing {N_TINY} of {N_TINY} images"
        run = browser.evaluate("['variant', 'seed'].map(id => document.getElementById(id).value)")
        assert run == ["wide", "0"]  # the report's focus run first
        for variant, seed in [("wide", 0), ("base", 1), ("aug", 0), ("aug", 1)]:
            if (variant, seed) != ("wide", 0):
                choose(browser, "variant", variant)
                choose(browser, "seed", str(seed))
            probs = tiny["probs"][variant, seed]
            assert shown(browser, "pred") == probs.argmax(1).tolist()
            got = [t.rsplit(" ", 1) for t in card_texts(browser, ".k.p1")]
            assert [name for name, _ in got] == [f"pred: {CLASSES[p.argmax()]}" for p in probs]
            # shown to 3 places from the 4 the file keeps: within half a thousandth and half a ten-thousandth
            assert np.abs(np.array([float(x) for _, x in got]) - probs.max(1)).max() <= 0.55e-3
            assert browser.evaluate("document.querySelector('h1 code').textContent") == variant
            assert f"variant={variant}&seed={seed}" in browser.evaluate("location.hash")
            marks = browser.evaluate(f"{CARDS}.map(c => c.classList.contains('ok'))")
            assert marks == (probs.argmax(1) == tiny["labels"]).tolist()
        # Sorting and the outcome filter follow the selected run (aug, seed 1).
        probs = tiny["probs"]["aug", 1]
        choose(browser, "sort", "score-desc")
        assert shown(browser) == sorted(range(N_TINY), key=lambda i: (-round(probs[i].max(), 4), i))
        choose(browser, "outcome", "wrong")
        assert shown(browser) == sorted(np.flatnonzero(probs.argmax(1) != tiny["labels"]).tolist(),
                                        key=lambda i: (-round(probs[i].max(), 4), i))
        # A bookmarked view (the #fragment) opens on its run and filters.
        browser.open(tiny["dir"] / "gallery.html")  # a fresh load first, then the same file with a fragment
        browser.call("Page.navigate", {"url": (tiny["dir"] / "gallery.html").resolve().as_uri() +
                                       "#variant=base&seed=1&sort=index&outcome=correct"})
        browser.evaluate("new Promise(r => setTimeout(r, 300))")
        browser.call("Page.reload")
        browser.wait_event("Page.loadEventFired")
        probs = tiny["probs"]["base", 1]
        assert browser.evaluate("document.getElementById('seed').value") == "1"
        assert shown(browser) == np.flatnonzero(probs.argmax(1) == tiny["labels"]).tolist()


@needs_chromium
def test_variants_disagree_shows_exactly_the_images_whose_predictions_differ(tiny):
    with Chromium() as browser:
        browser.open(tiny["dir"] / "gallery.html")
        for seed in SEEDS:
            choose(browser, "seed", str(seed))
            choose(browser, "subset", "variants-disagree")
            pred = predictions(tiny, [(v, seed) for v in VARIANTS])
            expected = np.flatnonzero((pred != pred[0]).any(0)).tolist()
            assert 10 < len(expected) < N_TINY - 10  # the planted scores make both kinds of image
            assert shown(browser) == expected, seed
            legend = browser.evaluate("document.getElementById('compared').textContent")
            assert legend == ", ".join(f"{v} seed {seed}" for v in VARIANTS)
        choose(browser, "subset", "runs-disagree")
        pred = predictions(tiny, tiny["runs"])
        assert shown(browser) == np.flatnonzero((pred != pred[0]).any(0)).tolist()
        assert len(shown(browser)) > len(expected)


@needs_chromium
def test_analysis_filters_badges_and_the_training_twin(tiny, tmp_path):
    data = embedded_json(tiny["html"])
    labels = tiny["labels"]
    with Chromium() as browser:
        browser.open(tiny["dir"] / "gallery.html")
        for subset, planted in [("label-issues", ISSUES), ("humans-disagree", HUMANS_DISAGREE),
                                ("humans-unsure", HUMANS_UNSURE), ("near-duplicates", TWINS)]:
            choose(browser, "subset", subset)
            assert shown(browser) == sorted(planted), subset
        choose(browser, "subset", "label-issues")
        choose(browser, "sort", "label-rank")
        assert shown(browser) == sorted(ISSUES, key=lambda i: ISSUES[i][1])
        assert card_texts(browser, ".badge") == [f"label? {CLASSES[labels[i]]} → {ISSUES[i][0]} · rank {ISSUES[i][1]}"
                                                 for i in sorted(ISSUES, key=lambda i: ISSUES[i][1])]
        choose(browser, "sort", "index")
        choose(browser, "subset", "humans-disagree")
        unsure = {i: " · unsure" * (i in HUMANS_UNSURE) for i in HUMANS_DISAGREE}
        assert card_texts(browser, ".ht") == [f"people: {m} {k}/{n} (not the label){unsure[i]}"
                                              for i, (m, k, n) in sorted(HUMANS_DISAGREE.items())]
        marked = browser.evaluate(f"{CARDS}.map(c => ['lab', 'maj'].map(k => Array.from("
                                  "c.querySelectorAll('.hv span')).findIndex(s => s.classList.contains(k))))")
        assert marked == [[int(labels[i]), CLASSES.index(HUMANS_DISAGREE[i][0])] for i in sorted(HUMANS_DISAGREE)]
        assert browser.evaluate(f"{CARDS}.every(c => !c.querySelector('.twin'))") is False  # 77 is a twin too
        choose(browser, "subset", "")
        assert browser.evaluate("document.querySelectorAll('#grid .badge').length") == len(ISSUES)
        assert browser.evaluate("document.querySelectorAll('#grid .twin').length") == len(TWINS)

        choose(browser, "subset", "near-duplicates")
        twins = browser.evaluate(f"{CARDS}.map(c => {{ const t = c.querySelector('.twin'), s = getComputedStyle(t);"
                                 " return [Number(c.dataset.index), s.backgroundPosition, s.width,"
                                 " c.querySelector('.tcap').textContent]; })")
        browser.screenshot(tmp_path / "twins.png")
    sheet = decode_image(re.search(r"\.twin \{[^}]*url\((data:image/jpeg;base64,[^)]+)\)", tiny["html"]).group(1))
    train = tiny["train_images"].transpose(0, 2, 3, 1).astype(int)
    size = 64
    for index, position, width, caption in twins:
        assert width == f"{size}px"
        x, y = (-int(float(v.rstrip("px"))) // size for v in position.split())
        tile = sheet[y * 32:(y + 1) * 32, x * 32:(x + 1) * 32].astype(int)
        error = np.abs(tile[None] - train).mean(axis=(1, 2, 3))
        assert error.argmin() == TWINS[index]  # JPEG, so not exact, but closest to the planted twin
        assert caption == f"train #{TWINS[index]}{CLASSES[tiny['train_labels'][TWINS[index]]]}"
    # only the flagged twins travel: the second sprite holds 4 tiles, not the 40 training images
    assert sheet.shape[0] * sheet.shape[1] == len(set(TWINS.values())) * 32 * 32
    assert data["duplicates"]["columns"] == len(set(TWINS.values()))


@pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("wkhtmltopdf") is None,
                    reason="wkhtmltopdf and poppler-utils (pdftotext) are needed")
def test_gallery_pdf_marks_the_planted_images(tiny):
    pdf = tiny["dir"] / "gallery.pdf"
    assert pdf_pages(pdf) == math.ceil(N_TINY / 80)
    text = run_tool("pdftotext", pdf, "-")
    names = "|".join(CLASSES)
    assert sorted(re.findall(rf"label\? → ({names})\b", text)) == sorted(s for s, _ in ISSUES.values())
    assert sorted(re.findall(rf"humans: ({names})\s+(\d+)/(\d+) people", text)) == \
        sorted((m, str(k), str(n)) for m, k, n in HUMANS_DISAGREE.values())
    assert sorted(map(int, re.findall(r"dup of train #(\d+)", text))) == sorted(TWINS.values())
    assert "…" not in text  # no line is cut ("humans: automobile 40/52" is wider than a cell: two lines)
    # The focus run only, and every image's cell is there, the marked ones included.
    probs = tiny["probs"]["wide", 0]
    assert "Test-set gallery: wide, seed 0" in text
    assert f"1: {CLASSES[probs[77].argmax()]} {probs[77].max():.3f}" in text
    assert set(range(N_TINY)) <= {int(i) for i in re.findall(r"(?<!train )#(\d+)\b", text)}
    # The marks take their height from the thumbnail, so the cells keep their size and the grid its place:
    # in the first page's last row, #77 (three marks in four lines, a thumbnail 40 px smaller) ends where the
    # unmarked cells end, and that row lies as far below the first row as 9 unmarked rows do.
    boxes = run_tool("pdftotext", "-bbox", "-f", "1", "-l", "1", pdf, "-")
    words = [(w, float(y0), float(y1)) for y0, y1, w in
             re.findall(r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">([^<]+)</word>', boxes)]
    top = {w: y0 for w, y0, _ in words if w.startswith("#")}
    row = top["#8"] - top["#0"]
    assert top["#72"] - top["#0"] == pytest.approx(9 * row, abs=1)
    px = row / 136  # a row: 120 px of content, 6 of padding, 6 of border, 4 of spacing
    assert top["#72"] - top["#77"] == pytest.approx(40 * px, abs=1)
    last_line = max(y1 for w, _, y1 in words if w == "3:")
    dup_line = next(y1 for (before, _, _), (w, _, y1) in zip(words, words[1:])
                    if (before, w) == ("train", f"#{TWINS[77]}"))
    assert dup_line == pytest.approx(last_line, abs=2)
    height = float(re.search(r'<page width="[\d.]+" height="([\d.]+)"', boxes).group(1))
    assert last_line < height


# Every element of a card (and of the header) that is cut: clipped (scrolls inside itself) or sticking out
# of its card (of the page, for the header), and a page wider than the window.
CUT = """(() => {
  const out = [], root = document.documentElement, width = root.clientWidth;
  if (root.scrollWidth > width) out.push(`page: ${root.scrollWidth} px wide in ${width}`);
  const clipped = e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== "visible";
  for (const card of document.querySelectorAll("#grid .card")) {
    const box = card.getBoundingClientRect();
    for (const e of card.querySelectorAll("*")) {
      const r = e.getBoundingClientRect();
      if (clipped(e) || r.right > box.right + 0.5 || r.left < box.left - 0.5)
        out.push(`#${card.dataset.index} ${e.className}: ${e.textContent.slice(0, 50)}`);
    }
  }
  for (const e of document.querySelectorAll("header *")) {
    const r = e.getBoundingClientRect();
    if (r.width && (clipped(e) || r.right > width + 0.5)) out.push(`header ${e.tagName} ${e.id}`);
  }
  return out;
})()"""


@needs_chromium
@pytest.mark.parametrize("width", [1400, 800, 390])
def test_nothing_on_a_card_is_cut(tiny, tmp_path, width):
    """The cards' lines (the main score, the label-error note, people's votes, the training twin) wrap
    rather than being cut, at a desktop, a small laptop and a phone's width."""
    with Chromium() as browser:
        browser.open(tiny["dir"] / "gallery.html", width=width, height=900)
        for subset in ["", "label-issues", "near-duplicates"]:
            choose(browser, "subset", subset)
            assert browser.evaluate(CUT) == [], (width, subset)
        # the longest lines of the tiny files are there to be cut: a class name that fills a card
        assert browser.evaluate(f"{CARDS}.some(c => c.querySelector('.badge'))")
        browser.screenshot(tmp_path / f"cards-{width}.png")
