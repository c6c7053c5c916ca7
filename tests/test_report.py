"""The assembled report: report.html (self-contained, numbers from the results), report.pdf, Snakemake's report."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import CLASSES, REPO, make_project, smoke_config, snakemake
from chromium import Chromium, needs_chromium
from workflow_helpers import parse_jobs

from cmpt726.data import save_arrays
from cmpt726.evaluation import summarize, write_scores
from cmpt726.files import write_json, write_text
from cmpt726.report import assemble, render
from cmpt726.report import compare_variants as q6

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
TEMPLATE = REPO / "workflow" / "templates" / "report.html.j2"


class Page(HTMLParser):
    """Collects elements and refuses unbalanced markup (every non-void element is closed, in order)."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.stack, self.elements, self.errors, self._text = [], [], [], []
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {self.stack}")

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'} "
                               f"at line {self.getpos()[0]}")
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
        else:
            self.stack.pop()

    def handle_data(self, data):
        self._text.append(data)

    def find(self, tag, **attrs):
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", "".join(self._text))


def decode_image(uri: str):
    from PIL import Image

    head, data = uri.split(",", 1)
    assert head.startswith("data:image/") and head.endswith(";base64"), head[:40]
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    image.load()
    return np.asarray(image.convert("RGB"))


def table_of(html: str, cls: str = "variants") -> str:
    return re.search(rf'<table class="{cls}">(.*?)</table>', html, re.S).group(1)


def row_of(html: str, name: str) -> str:
    """The cells after the name cell of the first row named `name`."""
    return re.search(rf'<td class="name">{name}</td>(.*?)</tr>', html, re.S).group(1)


def variant_rows(html: str) -> list[str]:
    """Variant names from the rows of the variant table's body."""
    body = re.search(r"<tbody>(.*?)</tbody>", table_of(html), re.S).group(1)
    return re.findall(r'<td class="name">([^<]*)</td>', body)


def q6_text(html: str) -> str:
    return Page(html.split('<section id="q6">', 1)[1].split("</section>", 1)[0]).text


def run_tool(*args) -> str:
    return subprocess.run(list(map(str, args)), capture_output=True, text=True, check=True).stdout


def pdf_pages(pdf) -> int:
    return int(re.search(r"^Pages:\s+(\d+)", run_tool("pdfinfo", pdf), re.M).group(1))


@pytest.fixture(scope="module")
def report(smoke_run):
    html = (smoke_run["dir"] / "report/report.html").read_text(encoding="utf-8")
    config = yaml.safe_load((smoke_run["dir"] / "config.yaml").read_text())
    return {"dir": smoke_run["dir"], "html": html, "page": Page(html), "config": config}


def test_html_parses_and_is_balanced(report):
    assert report["page"].errors == [] and report["html"].lstrip().startswith("<!DOCTYPE html>")
    for section in ["q6", "provenance"]:
        assert report["page"].find("section", id=section), section


def test_every_image_is_embedded_and_not_blank(report):
    images = report["page"].find("img")
    assert len(images) >= 5  # curves, confusion, per-class, reliability, mistakes
    for img in images:
        assert img["src"].startswith("data:image/") and img.get("alt"), img["src"][:60]  # no file beside the HTML
        pixels = decode_image(img["src"])
        assert pixels.shape[0] > 50 and pixels.shape[1] > 50 and pixels.std() > 5, "a blank figure"
    assert not re.search(r'<(link|script)[^>]+(href|src)="(?!data:)', report["html"])  # nothing fetched


def test_prose_and_table_numbers_equal_the_results_files(report):
    results, text = report["dir"] / "results", report["page"].text
    assert variant_rows(report["html"]) == list(report["config"]["variants"])
    accuracy = {v: json.loads((results / f"metrics/{v}/seed0.json").read_text())["accuracy"]
                for v in report["config"]["variants"]}
    top = max(accuracy, key=accuracy.get)
    numbers = json.loads((results / "figures/q6/numbers.json").read_text())
    # "best" only when the paired test says so; otherwise the top variant and who it cannot be told from.
    if numbers["verdict"]["best"]:
        match = re.search(r"The best variant is (\S+) with ([\d.]+)% test accuracy", text)
    else:
        assert "The best variant is" not in text
        match = re.search(r"No variant is best beyond doubt\. (\S+) has the highest mean test accuracy, "
                          r"([\d.]+)%", text)
    assert match, "the sentence naming the top variant is missing"
    assert match.group(1) == top == numbers["verdict"]["top"]
    assert float(match.group(2)) == pytest.approx(accuracy[top], abs=0.005)
    # The ECE in the prose is the one compare_variants computed from the focus variant's score file.
    focus = numbers["focus"]  # report.gallery_variant, else chosen on validation accuracy
    ece = re.search(rf"For {focus} the ECE is ([\d.]+)%", text).group(1)
    assert float(ece) == pytest.approx(100 * numbers["calibration"]["ece"], abs=0.005)
    wrong = re.search(r"([\d,]+) of ([\d,]+) test images wrong", text)
    scores = np.loadtxt(results / f"scores/{focus}/seed0.tsv", skiprows=1)
    assert int(wrong.group(1).replace(",", "")) == int((scores[:, 1] != scores[:, 2]).sum())
    assert int(wrong.group(2).replace(",", "")) == len(scores)
    for variant in report["config"]["variants"]:  # the variant table
        cells = re.findall(r'<td class="num">([^<]*)</td>', row_of(table_of(report["html"]), variant))
        cost = json.loads((results / f"metrics/{variant}/seed0.train.json").read_text())
        assert f"{accuracy[variant]:.2f}" in cells
        assert f"{report['config']['reference_accuracy'][variant]:.2f}" in cells
        assert f"{cost['train_seconds']:,.1f}" in cells and f"{cost['peak_rss_mb']:,.0f}" in cells


def test_provenance_names_versions_device_and_config(report):
    section = report["html"].split('<section id="provenance">', 1)[1]
    for needle in ["Python", "torch", "torchvision", "snakemake", "workflow commit", "built"]:
        assert needle in section, needle
    assert json.loads((report["dir"] / "results/metrics/all/seed0.json").read_text())["device"] in section
    # The configuration: one row per key that differs from the shipped config.yaml, not pages of YAML.
    rows = {key: (value, shipped) for key, value, shipped in
            re.findall(r'<td class="key">([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>', table_of(section, "config"))}
    assert rows["training.epochs"] == ("1", "10") and rows["seeds"] == ("[0]", "[0, 1, 2]")
    assert "variants.head" not in rows  # the same as shipped
    assert rows["variants.head_1ep"] == ("–", "{epochs: 1, train: head}")  # left out of this run
    assert "training.momentum" not in rows and "device" in rows  # same as shipped / differs


REPORT_RULES = {"compare_variants", "summarize_analyses", "report_html", "report_pdf", "gallery_html", "gallery_pdf"}


@pytest.mark.parametrize("setting", ["device=cpu", "seeds=[0]", "threads_per_job=2"])
def test_a_config_that_changes_nothing_reruns_no_report(report, setting):
    """The smoke run's values said again on the command line: the report and plot rules (params: canonical
    config slices) plan nothing."""
    assert report["config"]["device"] == "cpu" and report["config"]["seeds"] == [0]
    assert report["config"].get("threads_per_job", 2) == 2  # the schema's default when config.yaml omits it
    proc = snakemake(report["dir"], "-n", "--config", setting)
    jobs = {job.split("[")[0] for job in parse_jobs(proc.stdout + "\n" + proc.stderr)}
    assert not jobs & REPORT_RULES, proc.stdout[-3000:]


@needs_chromium
@pytest.mark.parametrize("width", [1400, 800, 390])
def test_no_table_pushes_the_page_wider_than_the_window(report, width):
    """At desktop, tablet and phone widths the page never scrolls sideways: wide tables scroll in their own box."""
    with Chromium() as browser:
        browser.open(report["dir"] / "report/report.html", width=width, height=1000)
        page_width = browser.evaluate("document.documentElement.scrollWidth")
        wide = browser.evaluate("[...document.querySelectorAll('table')].filter(t => t.closest('.scroll') === null"
                                " && t.getBoundingClientRect().right > window.innerWidth + 1).map(t => t.className)")
    assert page_width <= width and wide == [], (page_width, wide)


@pytest.mark.skipif(shutil.which("pdfinfo") is None, reason="poppler-utils (pdfinfo, pdftotext) not installed")
def test_pdf_has_sane_pages_titles_and_figures_and_each_question_on_a_new_page(report):
    pdf = report["dir"] / "report/report.pdf"
    assert 3 <= pdf_pages(pdf) <= 40
    assert re.search(r"595 x 842|595\.276 x 841\.89", run_tool("pdfinfo", pdf))  # A4
    layout = run_tool("pdftotext", "-layout", pdf, "-")
    text = re.sub(r"\s+", " ", layout)
    titles = [t.strip() for t in re.findall(r"<h2>([^<]+)</h2>", report["html"])]
    for title in titles:
        assert title in text, title  # every section title, so every question, is in the PDF
    for variant in report["config"]["variants"]:
        assert re.search(rf"\b{variant}\b", text), variant
    # Each embedded figure of the HTML is an image in the PDF (none lost or blank-replaced).
    assert len(run_tool("pdfimages", "-list", pdf).strip().splitlines()) - 2 >= len(report["page"].find("img"))
    pages = [re.sub(r"\s+", " ", page).strip() for page in layout.split("\f")]
    assert titles[0].startswith("Question") and titles[-1] == "Provenance"
    # Page 1 holds the title, the contents and the start of the first question, not the title alone.
    assert pages[0].startswith(report["config"]["report"]["title"]) and titles[0] in pages[0]
    for title in titles[1:]:
        assert any(page.startswith(title) for page in pages), f"no page starts with {title!r}"


def test_pdf_without_wkhtmltopdf_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    (tmp_path / "r.html").write_text("<p>x</p>")
    with pytest.raises(RuntimeError, match=r"wkhtmltopdf is not installed.*apt-get install wkhtmltopdf"):
        render.html_to_pdf(tmp_path / "r.html", tmp_path / "r.pdf")
    assert not (tmp_path / "r.pdf").exists()


def test_snakemake_report_zip_builds(smoke_run, tmp_path):
    out = tmp_path / "report.zip"
    proc = snakemake(smoke_run["dir"], "--report", str(out))
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert any(n.endswith("report.html") for n in names), names[:20]
        for figure in ["curves.png", "variants.png", "pairs.png", "confusion.png", "per_class.png", "reliability.png",
                       "mistakes.png", "regions.png", "sgd.png", "q6_variants.tsv", "gallery.html"]:
            assert any(n.endswith(figure) for n in names), figure
        index = next(archive.read(n) for n in names if n.endswith("report.html")).decode()
    assert "Question 6" in index
    # The captions are valid reStructuredText (docutils warns about the faulty ones into the log).
    log = proc.stdout + proc.stderr
    assert "Inline literal start-string without end-string" not in log
    assert not re.search(r"\(WARNING/2\)|\(ERROR/3\)", log), log[-2000:]


def test_calibration_bins_and_ece_by_hand():
    calib = q6.calibration(np.array([0.95, 0.95, 0.95, 0.95, 0.55, 0.55]), np.array([1, 1, 1, 0, 1, 0], bool), bins=10)
    # bin (0.9, 1]: 4 images, accuracy 0.75, score 0.95; bin (0.5, 0.6]: 2 images, accuracy 0.5, score 0.55
    assert calib["count"][9] == 4 and calib["count"][5] == 2 and sum(calib["count"]) == 6
    assert calib["ece"] == pytest.approx(4 / 6 * 0.20 + 2 / 6 * 0.05)
    assert calib["accuracy"][0] is None  # empty bins are missing, not zero
    assert q6.calibration(np.array([1.0, 0.1]), np.array([True, False]), bins=10)["count"][9] == 1


def test_confident_mistakes_are_wrong_and_sorted():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.95, 0.05]])
    labels = np.array([0, 0, 1, 1, 1])
    assert q6.confident_mistakes(labels, probs, k=2).tolist() == [4, 1]
    assert q6.confident_mistakes(labels, probs).tolist() == [4, 1, 2]


EPOCHS = "epoch\ttrain_loss\ttrain_acc\tval_loss\tval_acc\tseconds\n1\t1.5\t40\t1.4\t45\t2\n2\t1.2\t55\t1.3\t{}\t2\n"


def fake_results(root: Path, variants: dict, seeds: list[int], n: int = 60, copies: dict | None = None) -> dict:
    """Result files in the workflow's formats for given accuracies, without training anything.
    copies: name → another variant whose score files it repeats exactly (the same predictions)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n)
    save_arrays(root / "test.npz", rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), labels, CLASSES)
    paths = {"runs": [], "metrics": [], "epochs": [], "train_summaries": [], "scores": []}
    probs_of = {}
    for name, accuracy in {**variants, **(copies or {})}.items():
        for seed in seeds:
            if isinstance(accuracy, str):  # a copy
                probs = probs_of[accuracy, seed]
            else:
                logits = rng.normal(0, 1, (n, 10))
                hit = rng.random(n) < accuracy + 0.05 * seed
                logits[np.arange(n), np.where(hit, labels, (labels + 1) % 10)] += 4
                probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            probs_of[name, seed] = probs
            base = root / name / f"seed{seed}"
            base.mkdir(parents=True, exist_ok=True)
            write_scores(base / "scores.tsv", labels, probs, np.ones(n))
            write_json(base / "metrics.json", {**summarize(labels, probs, CLASSES), "device": "cpu: test"})
            write_text(base / "epochs.tsv", EPOCHS.format(50))
            write_json(base / "train.json", {"train_seconds": 12.5, "peak_rss_mb": 300.5, "peak_cuda_mb": None,
                                             "keep": "best", "kept_epoch": 2, "validation_images": 50,
                                             "device": "cpu: test"})
            paths["runs"].append((name, seed))
            for key, file in [("metrics", "metrics.json"), ("epochs", "epochs.tsv"), ("train_summaries", "train.json"),
                              ("scores", "scores.tsv")]:
                paths[key].append(base / file)
    return paths


def fake_settings(**trains) -> dict:
    return {name: {"head": {"hidden": [], "batchnorm": False, "dropout": 0.0}, "train": train, "epochs": 2,
                   "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "batch_size": 32, "validation": 50,
                   "normalize": {"mean": [0.5] * 3, "std": [0.2] * 3}, "cache_features": True,
                   "replicate_2019_bugs": False, "augment": {"crop": 0, "flip": False, "cutout": 0}}
            for name, train in trains.items()}


def q6_files(root: Path) -> dict:
    out = {name: root / "fig" / f"{name}.png"
           for name in ["curves", "variants", "pairs", "confusion", "per_class", "reliability", "mistakes"]}
    return {**out, "table": root / "fig/q6_variants.tsv", "numbers": root / "fig/numbers.json"}


def compare(root: Path, paths: dict, settings: dict | None = None, reference: dict | None = None, comparisons=(),
            replicates=10_000, smallest_effect=0.5, twins=None, recipes=None) -> dict:
    """rule compare_variants on fake_results' files under `root` (outputs: q6_files(root)). Each variant's settings
    (default: fake_settings, training everything) go into its runs' training summaries, as the trainer records them."""
    settings = settings or fake_settings(**{name: "all" for name, _ in paths["runs"]})
    for (name, _), path in zip(paths["runs"], paths["train_summaries"]):
        write_json(path, {**json.loads(Path(path).read_text()), "settings": settings[name]})
    statistics = {"alpha": 0.05, "bootstrap_replicates": replicates, "comparisons": list(comparisons),
                  "smallest_effect": smallest_effect}
    spec = {"runs": paths["runs"], "statistics": statistics, "reference": reference or {}, "focus": None,
            "replica_2019": False, "twins": twins or {}, "recipes": recipes or {}}
    files = {"test": root / "test.npz", "backbone": None, **{k: v for k, v in paths.items() if k != "runs"}}
    return q6.q6_outputs(files, q6_files(root), spec)


DATA = {"train": {"images": 500, "per_class": [50] * 10}, "test": {"images": 60, "per_class": [6] * 10},
        "classes": CLASSES}


def html_report(root: Path, tuning=None, **spec) -> str:
    """report.html from the Q6 outputs under `root` (theory left out); `spec` overrides write_report's."""
    spec = {"theory": [], "backbone": {"source": "path", "path": "/x/backbone.pth"}, "title": "T", **spec}
    write_json(root / "data.json", DATA)
    assemble.write_report(spec, {"html": root / "report.html", "template": TEMPLATE, "data": root / "data.json",
                                 "q6": list(q6_files(root).values()), "tuning": tuning}, repo_dir=root)
    text = (root / "report.html").read_text()
    assert Page(text).errors == []
    return text


def test_planted_difference_is_significant_and_a_copy_is_not(tmp_path):
    """One seed each: the trained models differ (McNemar), but no variant is called best and the question about the
    variants stays inconclusive; an exact copy of another's scores is tied with it."""
    paths = fake_results(tmp_path, {"good": 0.95, "bad": 0.35}, seeds=[0], n=400, copies={"copy": "bad"})
    comparisons = [{"a": "good", "b": "bad", "asks": "Is good better?"}, {"a": "copy", "b": "bad", "asks": "Same?"},
                   {"a": "good", "b": "missing", "asks": "Skipped?"}]
    numbers = compare(tmp_path, paths, comparisons=comparisons, replicates=2000)
    asked = {c["asks"]: c for c in numbers["comparisons"]["asked"]}
    good, same = asked["Is good better?"], asked["Same?"]
    assert good["significant"] and good["diff"] > 40
    assert good["test"] == "mcnemar exact" and good["scope"] == "two trained models"
    assert good["answer"].startswith("inconclusive") and "two trained models" in good["answer"]
    assert not same["significant"] and same["diff"] == 0 and same["p_adjusted"] == 1.0
    assert same["ci_low"] == same["ci_high"] == 0  # identical predictions on every image
    assert [c["asks"] for c in numbers["comparisons"]["skipped"]] == ["Skipped?"]
    assert numbers["verdict"]["best"] is None and numbers["verdict"]["tied_with_top"] == ["good"]
    matrix = numbers["matrix"]  # the matrix says the same, row − column
    i, j = matrix["names"].index("good"), matrix["names"].index("bad")
    assert matrix["diff"][i][j] == pytest.approx(-matrix["diff"][j][i]) and matrix["p_adjusted"][i][j] < 0.05


def test_several_seeds_answer_the_questions_and_name_the_best(tmp_path):
    paths = fake_results(tmp_path, {"good": 0.9, "bad": 0.35}, seeds=[0, 1, 2], n=400, copies={"copy": "bad"})
    comparisons = [{"a": "good", "b": "bad", "asks": "Is good better?"}, {"a": "bad", "b": "good", "asks": "Reverse?"},
                   {"a": "copy", "b": "bad", "asks": "Same?"}]
    numbers = compare(tmp_path, paths, comparisons=comparisons, replicates=1000, smallest_effect=1.0)
    asked = {c["asks"]: c for c in numbers["comparisons"]["asked"]}
    good, same = asked["Is good better?"], asked["Same?"]
    assert (good["answer"], good["scope"], good["test"]) == ("yes", "variants", "run-level t (runs + images)")
    assert asked["Reverse?"]["answer"] == "no, the opposite"
    # A copy of every run: the difference is 0, but fake_results' seeds lie 5 points apart, so a new run of either
    # procedure could differ by more than 1 point - the run-level answer is "inconclusive", not "equal".
    assert same["diff"] == 0 and same["outcome"] == "inconclusive" and same["ci_low"] < -1 and same["ci_high"] > 1
    assert same["answer"] == f"inconclusive: [{same['ci_low']:+.2f}, {same['ci_high']:+.2f}]"
    assert numbers["smallest_effect"] == 1.0 and numbers["verdict"]["best"] == "good"


def test_focus_is_chosen_by_validation_not_test_accuracy(tmp_path):
    paths = fake_results(tmp_path, {"high_test": 0.9, "high_val": 0.5}, seeds=[0], n=100)
    (tmp_path / "high_val/seed0/epochs.tsv").write_text(EPOCHS.format(60))
    numbers = compare(tmp_path, paths, replicates=1000)
    assert numbers["verdict"]["top"] == "high_test"
    assert numbers["focus"] == "high_val" and numbers["focus_chosen_by"] == "validation accuracy"
    assert {r["name"]: r["val_accuracy"] for r in numbers["rows"]} == {"high_test": 50, "high_val": 60}


def test_two_indistinguishable_variants_are_not_called_best(tmp_path):
    numbers = compare(tmp_path, fake_results(tmp_path, {"a": 0.6}, seeds=[0], copies={"b": "a"}), replicates=2000)
    assert numbers["verdict"]["best"] is None and numbers["verdict"]["tied_with_top"] == ["a", "b"]


def test_several_seeds_give_mean_and_std_and_render(tmp_path):
    paths = fake_results(tmp_path, {"head": 0.5, "all": 0.8}, seeds=[0, 1])
    numbers = compare(tmp_path, paths, fake_settings(head="head", all="all"), reference={"head": 68.55},
                      replicates=2000)
    rows = {r["name"]: r for r in numbers["rows"]}
    accs = [json.loads(p.read_text())["accuracy"] for p in paths["metrics"][2:]]
    assert rows["all"]["accuracy"] == pytest.approx(np.mean(accs))
    assert rows["all"]["accuracy_std"] == pytest.approx(np.std(accs, ddof=1))
    assert rows["all"]["interval_method"].startswith("bootstrap") and rows["all"]["ci_low"] < rows["all"]["accuracy"]
    assert rows["all"]["delta"] == pytest.approx(rows["all"]["accuracy"] - rows["head"]["accuracy"])
    assert rows["all"]["kept_epochs"] == [2, 2]
    assert numbers["verdict"]["top"] == "all" and len(numbers["mistakes"]) <= q6.N_MISTAKES
    assert all(p.exists() for p in q6_files(tmp_path).values())
    text = html_report(tmp_path, title="T <&> test")
    assert f"{rows['all']['accuracy']:.2f} ± {rows['all']['accuracy_std']:.2f}" in text
    assert "T &lt;&amp;&gt; test" in text  # autoescape
    assert "not a git checkout" in text and variant_rows(text) == ["head", "all"]


def assert_states_per_variant_settings(html: str) -> str:
    """Q6 says lr 0.05 for every variant (never the defaults' 0.01 or batch size 32) and shows batch sizes 16 and 64
    in the variant table; returns Q6's text."""
    text = q6_text(html)
    assert "learning rate 0.05," in text and "Learning rate 0.05 for every variant" in text
    assert "learning rate 0.01" not in text.lower() and "batch size 32" not in text
    for name, batch in [("head", 16), ("all", 64)]:
        assert f'<td class="num">{batch}</td>' in row_of(table_of(html), name), name
    return text


def test_report_states_the_settings_the_variants_ran_with(tmp_path):
    """The text names the resolved per-variant settings (numbers.json), never the `training` defaults: with
    training.lr 0.01 but every variant at lr 0.05, and batch sizes that differ, the report says 0.05 and
    shows each batch size."""
    settings = fake_settings(head="head", all="all")
    for name, batch in [("head", 16), ("all", 64)]:
        settings[name].update(lr=0.05, batch_size=batch)
    settings["all"]["momentum"] = 0.5
    paths = fake_results(tmp_path, {"head": 0.5, "all": 0.8}, seeds=[0])
    gpu_run = tmp_path / "all/seed0/train.json"  # trained elsewhere, its test set scored here
    write_json(gpu_run, {**json.loads(gpu_run.read_text()), "device": "cuda: test GPU"})
    numbers = compare(tmp_path, paths, settings, replicates=500)
    assert numbers["settings"]["lr"] == 0.05 and numbers["settings"]["batch_size"] is None
    assert numbers["devices"] == ["cpu: test", "cuda: test GPU"] and numbers["scored_on"] == ["cpu: test"]
    changes = [{"key": "training.lr", "value": "0.01", "shipped": "0.001"}]  # the defaults, overridden everywhere
    html = html_report(tmp_path, config_changes=changes)
    text = assert_states_per_variant_settings(html)
    assert "0.01" not in text
    assert "batch size per variant (table below)" in text
    assert "momentum per variant (head 0.9, all 0.5)" in text
    assert "Trained on cpu: test; cuda: test GPU; the test set scored on cpu: test." in text
    assert re.search(r'<td class="key">training.lr</td><td>0.01</td>', html)  # the config, labelled


def test_comparisons_say_what_the_variants_differ_in_and_never_minus_zero(tmp_path):
    settings = fake_settings(all="all", all_augment="all")
    settings["all_augment"]["augment"] = {"crop": 4, "flip": True, "cutout": 8}
    paths = fake_results(tmp_path, {"all": 0.6}, seeds=[0], copies={"all_augment": "all"})
    asks = [{"a": "all_augment", "b": "all", "asks": "Does augmentation (random crop and flip) help?"}]
    (c,) = compare(tmp_path, paths, settings, comparisons=asks, replicates=500)["comparisons"]["asked"]
    assert c["differs"] == ["augment: crop (pad 4) + flip + cutout 8×8 vs none"]
    assert c["answer"].startswith("inconclusive: [0.00, 0.00]") and c["diff"] == 0
    text = html_report(tmp_path)
    assert "-0.00" not in text and "+0.00" not in text
    assert "augment: crop (pad 4) + flip + cutout 8×8 vs none" in text


@pytest.mark.parametrize("value, text", [(-0.001, "0.00"), (0.0, "0.00"), (-0.0, "0.00"), (0.004, "0.00"),
                                         (0.005001, "+0.01"), (-1.234, "-1.23"), (2, "+2.00"), (None, "–")])
def test_signed_never_shows_minus_zero(value, text):
    from cmpt726.text import fmt, signed

    assert signed(value) == text
    assert fmt(-0.0, 2) == "0.00" and fmt(-0.5, 2) == "-0.50"


def test_config_changes_lists_only_what_differs_from_the_shipped_config():
    from cmpt726.config import canonical, config_changes, shipped_config

    shipped = shipped_config(REPO / "config.yaml")
    assert config_changes(shipped, shipped) == []
    ours = json.loads(json.dumps(shipped))
    ours["training"]["lr"] = 0.05
    del ours["variants"]["head_1ep"]
    ours["variants"]["all"] = {"train": "all", "batch_size": 64}
    ours["reference_accuracy"] = {}
    ours["threads_per_job"] = 7  # scheduling only: no row, no report rebuilt
    assert config_changes(ours, shipped) == [
        {"key": "reference_accuracy", "value": "–", "shipped": (
            "{all: 84.44, all_dropout: 84.55, all_fc256: 84.46, backbone_only: 80.33, head: 68.55, head_1ep: 65.1, "
            "head_fc256_l2: 68.52, head_l2: 68.65}")},
        {"key": "training.lr", "value": "0.05", "shipped": "0.001"},
        {"key": "variants.all", "value": "{batch_size: 64, train: all}", "shipped": "{train: all}"},
        {"key": "variants.head_1ep", "value": "–", "shipped": "{epochs: 1, train: head}"}]
    # Key order is no change: the canonical form of a reordered mapping is the same, repr included.
    reordered = dict(reversed(list(shipped["training"].items())))
    assert repr(canonical(reordered)) == repr(canonical(shipped["training"]))
    assert repr(reordered) != repr(shipped["training"])


@pytest.mark.slow
def test_workflow_report_states_per_variant_settings_not_the_defaults(tiny_inputs, tmp_path):
    """The whole path, config to HTML: training.lr 0.01 but every variant at lr 0.05, batch sizes 16 and 64."""
    config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
    config["training"].update(lr=0.01, batch_size=32)
    config["variants"] = {"head": {"train": "head", "lr": 0.05, "batch_size": 16},
                          "all": {"train": "all", "lr": 0.05, "batch_size": 64}}
    project = make_project(tmp_path / "project", config)
    snakemake(project, "--cores", "2", "report/report.html")
    numbers = json.loads((project / "results/figures/q6/numbers.json").read_text())
    assert {r["name"]: (r["lr"], r["batch_size"]) for r in numbers["rows"]} == {"head": (0.05, 16), "all": (0.05, 64)}
    assert_states_per_variant_settings((project / "report/report.html").read_text())


def fake_tuning(root: Path, choices: dict) -> list[Path]:
    """rule plot_tuning's outputs for `choices` (variant → chosen lr), from search files in the workflow's formats."""
    from cmpt726.files import write_tsv
    from cmpt726.tuning.choice import TRIAL_COLUMNS
    from cmpt726.tuning.summary import tuning_outputs

    searches, trials, curves = {}, {}, {}
    for variant, lr in choices.items():
        folder = root / "tuning" / variant
        folder.mkdir(parents=True)
        write_json(folder / "search.json", {
            "twin": f"{variant}-tuned", "method": "halving", "config": {"lr": lr, "weight_decay": 0.0005},
            "val_acc": 80.0, "kept_epoch": 4, "epochs": 4, "configs": 4, "trials": 6, "trial_epochs": 10,
            "grid_epochs": 16, "device_hours": 0.25, "trial_seconds": 900.0,
            "converged": {"kept_is_last": True, "last_fifth_rise": 0.5},
            "rungs": [{"epochs": 1, "trials": 4}, {"epochs": 4, "trials": 2}], "devices": ["cpu: test"],
            "selected_by": "validation accuracy of the kept epoch; ties: the earlier configuration"})
        write_tsv(folder / "trials.tsv", TRIAL_COLUMNS,
                  [{"rung": 0, "slot": k, "config_index": k, "config": json.dumps({"lr": x, "weight_decay": 0.0005}),
                    "epochs": 1, "val_acc": 70.0 + k, "val_loss": 1.0, "kept_epoch": 1, "seconds": 1.0,
                    "promoted": 0, "chosen": int(x == lr)} for k, x in enumerate([0.01, 0.03, 0.1, 0.3])])
        searches[variant], trials[variant], curves[variant] = folder / "search.json", folder / "trials.tsv", []
    out = [root / "tuning" / "search.png", root / "tuning" / "tuning.tsv", root / "tuning" / "numbers.json"]
    tuning_outputs(searches, trials, curves, *out)
    return out


def test_tuned_twins_sit_beside_the_assignments_setting_and_answer_again(tmp_path):
    """tuning.enabled: each variant at the assignment's setting beside its tuned twin with the paired test
    tuned − fixed (a family of its own), the discussion's questions asked again of the twins, the best variant
    among the twins, the convergence of every variant, and the tuning's figure and cost in the report."""
    settings = fake_settings(head="head", all="all", **{"head-tuned": "head", "all-tuned": "all",
                                                        "head-recipe": "head", "all-recipe": "all"})
    for name, lr in [("all-tuned", 0.03), ("head-tuned", 0.1), ("all-recipe", 0.05), ("head-recipe", 0.05)]:
        settings[name].update(lr=lr, weight_decay=0.0005, epochs=4, schedule="onecycle")
    paths = fake_results(tmp_path, {"head": 0.3, "all": 0.5, "head-tuned": 0.55, "all-tuned": 0.85,
                                    "head-recipe": 0.55, "all-recipe": 0.6}, seeds=[0, 1, 2], n=400)
    asks = [{"a": "all", "b": "head", "asks": "Does fine-tuning everything beat the head?"}]
    numbers = compare(tmp_path, paths, settings, comparisons=asks, replicates=1000,
                      twins={"head-tuned": "head", "all-tuned": "all"},
                      recipes={"head-recipe": "head", "all-recipe": "all"})
    rows = {r["name"]: r for r in numbers["rows"]}
    assert rows["all"]["kept_last"] == "3 of 3" and rows["all"]["last_fifth_rise"] == pytest.approx(5.0)
    tuned = numbers["tuning"]
    side = {c["variant"]: c for c in tuned["side_by_side"]}
    assert set(side) == {"head", "all"} and tuned["n_better"] == 2
    for variant, c in side.items():
        assert (c["a"], c["b"], c["answer"]) == (f"{variant}-tuned", variant, "yes")
        assert c["diff"] == pytest.approx(rows[f"{variant}-tuned"]["accuracy"] - rows[variant]["accuracy"])
    (again,) = tuned["comparisons"]["asked"]
    assert (again["a"], again["b"], again["answer"]) == ("all-tuned", "head-tuned", "yes")
    assert "lr: 0.03 vs 0.1" in again["differs"] and tuned["not_asked"] == 0 and tuned["untuned"] == []
    assert tuned["verdict"]["top"] == "all-tuned" and tuned["verdict"]["best"] == "all-tuned"
    # every setting in which a twin differs from its variant; the gain split into the recipe's and the search's
    assert side["all"]["settings_differ"] == ["epochs: 4 vs 2", "lr: 0.03 vs 0.01", "schedule: onecycle vs None",
                                              "weight_decay: 0.0005 vs 0.0"]
    gains = {g["variant"]: g for g in tuned["gains"]}
    for variant in ("head", "all"):
        recipe, search = gains[variant]["recipe_gain"], gains[variant]["search_gain"]
        assert (recipe["a"], recipe["b"], search["a"], search["b"]) == \
            (f"{variant}-recipe", variant, f"{variant}-tuned", f"{variant}-recipe")
        assert recipe["diff"] + search["diff"] == pytest.approx(side[variant]["diff"])
    assert gains["all"]["search_gain"]["answer"] == "yes" and gains["head"]["search_gain"]["answer"] != "yes"
    # does tuning change the answer to "all vs head"? (all-tuned − head-tuned) − (all − head)
    (change,) = tuned["interactions"]
    assert change["diff"] == pytest.approx((rows["all-tuned"]["accuracy"] - rows["head-tuned"]["accuracy"])
                                           - (rows["all"]["accuracy"] - rows["head"]["accuracy"]))

    text = html_report(tmp_path, tuning=fake_tuning(tmp_path, {"head": 0.3, "all": 0.03}))
    section = text.split('<h3 id="tuning">', 1)[1]
    assert "lr 0.03, weight decay 0.0005" in section and "12 trials" in section
    assert "1,800 s of\ntraining, 0.500 device-hours" in section
    # a choice at an end of the searched range is flagged, in the table and in the text
    assert "lr 0.3 (the highest tried), weight decay 0.0005" in section
    assert "The choice of <code>head</code> lies at an end of the searched range" in section
    from cmpt726.tuning.summary import at_edge
    assert at_edge(0.0, [0.0, 0.0005]) is None and at_edge(0.0005, [0.0, 0.0005]) == "the highest tried"
    for variant in ("head", "all"):
        row = row_of(table_of(section, "side-by-side"), variant)
        assert f"{rows[variant]['accuracy']:.2f}" in row and f"{rows[variant + '-tuned']['accuracy']:.2f}" in row
        assert f"{side[variant]['diff']:+.2f}" in row and "3 of 3" in row
    assert "<b>Figure 6.8.</b> What the tuning saw" in section and section.count('<img') == 1
    assert "The recipe's gain and the search's." in section and "Does tuning change the answers?" in section
    assert "schedule: onecycle vs None" in section
    assert '<a href="#tuning">' in text and "Each variant tuned" in text
    assert "among the tuned variants only" not in text  # every variant was tuned
    # without twins the section and its headline are absent
    plain = tmp_path / "plain"
    numbers = compare(plain, fake_results(plain, {"head": 0.3, "all": 0.5}, [0]), fake_settings(head="head", all="all"),
                      replicates=1000)
    assert numbers["tuning"] is None
    assert 'id="tuning"' not in html_report(plain, tuning=[])
