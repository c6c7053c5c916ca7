"""Time the gallery builds (report/gallery.html and report/gallery.pdf) on 10,000 test images, and size them.

    .venv/bin/python experiments/benchmarks/gallery_bench.py [--n 10000] [--runs 1] [--analyses]
        [--images results/data/cifar10/test.npz] [--train-images results/data/cifar10/train.npz]
        [--human-counts cifar10h-counts.npy] [--no-pdf] [--browser] [--out DIR]

Without --images it makes smooth random images (upsampled noise, so they compress roughly like photos;
their sprite is larger than real CIFAR-10's) and random scores; with --images it uses those real images and
random scores. --runs R writes R score files, runs (v0, 0), (v0, 1), (v0, 2), (v1, 0), … (3 seeds per
variant), whose predictions agree on most images, as the workflow's variants do. --analyses adds the three
optional analysis files: a label_issues.tsv (150 suspects), a CIFAR-10H table (synthetic votes, or the real
ones from --human-counts) and a near_duplicates.tsv (1% flagged, twins drawn from --train-images, or from
5,000 synthetic training images). Then it runs the same functions as the rules gallery_html and gallery_pdf
and prints the time and size of each file, and what the HTML's bytes are. --browser also times opening
gallery.html in headless Chromium (tests/chromium.py), switching the run, and the disagreement filter.

Recorded output: experiments/benchmarks/outputs.md; the numbers: experiments/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))

from cmpt726.analysis.human_labels import TSV_COLUMNS as HUMAN_COLUMNS  # noqa: E402
from cmpt726.analysis.human_labels import write_human_table  # noqa: E402
from cmpt726.analysis.label_issues import TSV_COLUMNS as ISSUE_COLUMNS  # noqa: E402
from cmpt726.analysis.near_duplicates import COLUMNS as DUPLICATE_COLUMNS  # noqa: E402
from cmpt726.config import schema_default  # noqa: E402
from cmpt726.data import load_arrays, save_arrays  # noqa: E402
from cmpt726.evaluation import write_scores  # noqa: E402
from cmpt726.files import write_json, write_tsv  # noqa: E402
from cmpt726.report.gallery import pages  # noqa: E402

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TEMPLATES = REPO / "workflow" / "templates"
SEEDS_PER_VARIANT = 3


def synthetic_images(n: int, rng) -> np.ndarray:
    """(n, 3, 32, 32) uint8: 8×8 noise upsampled ×4, plus fine noise."""
    coarse = rng.integers(0, 256, (n, 3, 8, 8)).astype(np.float32)
    smooth = coarse.repeat(4, 2).repeat(4, 3)
    return np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)


def run_names(runs: int) -> list[tuple[str, int]]:
    return [(f"v{k // SEEDS_PER_VARIANT}", k % SEEDS_PER_VARIANT) for k in range(runs)]


def make_inputs(folder: Path, n: int, images_npz=None, runs: int = 1, seed: int = 0):
    """test.npz and one score file per run; returns (test.npz, runs, score files, labels, classes)."""
    rng = np.random.default_rng(seed)
    if images_npz:
        images, labels, classes = load_arrays(images_npz)
        images, labels = images[:n], labels[:n]
    else:
        images, labels, classes = synthetic_images(n, rng), rng.integers(0, 10, n), CLASSES
    n = len(labels)
    test = folder / "test.npz"
    save_arrays(test, images, labels, classes)
    shared = rng.normal(0, 1.5, (n, 10))
    shared[np.arange(n), labels] += 3.0  # about 63% right
    names, paths, own = run_names(runs), [], {}
    for variant, s in names:
        if variant not in own:
            own[variant] = rng.normal(0, 0.5, (n, 10))
        logits = shared + own[variant] + rng.normal(0, 0.3, (n, 10))
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        path = folder / f"scores/{variant}/seed{s}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_scores(path, labels, probs, -np.log(probs[np.arange(n), labels]))
        paths.append(path)
    return test, names, paths, labels, classes


def make_analyses(folder: Path, labels, classes, rng, train_npz=None, human_counts=None) -> dict:
    """The three optional analysis files (synthetic unless real ones are given) and the training images."""
    n = len(labels)
    suspects = rng.choice(n, min(150, n), replace=False)
    write_tsv(folder / "label_issues.tsv", ISSUE_COLUMNS,
              [[int(i), classes[labels[i]], classes[(labels[i] + 1 + rng.integers(9)) % 10], 0.01, r + 1, 5, 30]
               for r, i in enumerate(suspects)])
    if human_counts:
        write_human_table(human_counts, labels, folder / "human_labels.tsv", classes,
                          unsure_below=schema_default("analysis.human_labels.unsure_below"))
    else:
        rows = []
        for i, y in enumerate(labels):
            p = rng.dirichlet(np.full(10, 0.05))
            p = 0.8 * np.eye(10)[y] + 0.2 * p if rng.random() > 0.01 else p
            votes = rng.multinomial(51, p)
            h = votes / votes.sum()
            majority = y if votes[y] == votes.max() else int(np.argmax(votes))
            entropy = float(-(h[h > 0] * np.log(h[h > 0])).sum())
            rows.append([i, classes[y], classes[majority], h.max(), entropy, h[y], int(majority != y),
                         int(h.max() < 0.7), ",".join(map(str, votes))])
        write_tsv(folder / "human_labels.tsv", HUMAN_COLUMNS, rows)
    if train_npz is None:
        train_npz = folder / "train.npz"
        save_arrays(train_npz, synthetic_images(5000, rng), rng.integers(0, 10, 5000), classes)
    n_train = len(load_arrays(train_npz)[1])
    flagged = rng.random(n) < 0.01
    write_tsv(folder / "near_duplicates.tsv", DUPLICATE_COLUMNS,
              [[i, int(rng.integers(n_train)), 0.02 if f else 1.2, int(rng.integers(n_train)), 0.5, int(f)]
               for i, f in enumerate(flagged)])
    return {"train_images": train_npz, "label_issues": folder / "label_issues.tsv",
            "human_labels": folder / "human_labels.tsv", "near_duplicates": folder / "near_duplicates.tsv"}


def html_parts(path: Path) -> str:
    """What the bytes of gallery.html are: the thumbnail sprite, the runs' scores (their top and p arrays in
    the page JSON), the rest."""
    html = path.read_text(encoding="utf-8")
    sprite = len(re.search(r"\.thumb \{[^}]*url\(([^)]+)\)", html).group(1))
    twins = re.search(r"\.twin \{[^}]*url\(([^)]+)\)", html)
    runs = sum(len(m) for m in re.findall(r'"(?:top|p)":\[[0-9,]*\]', html))
    rest = len(html.encode("utf-8")) - sprite - runs - (len(twins.group(1)) if twins else 0)
    return (f"sprite {sprite / 1e6:.1f} MB, runs {runs / 1e6:.2f} MB"
            + (f", twins {len(twins.group(1)) / 1e6:.2f} MB" if twins else "") + f", rest {rest / 1e6:.2f} MB")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1, help="score files: variants × 3 seeds (default 1)")
    parser.add_argument("--analyses", action="store_true", help="add label issues, people's votes, near-duplicates")
    parser.add_argument("--images", help="a prepared test.npz (results/data/cifar10/test.npz) to use instead")
    parser.add_argument("--train-images", help="a prepared train.npz for the near-duplicate twins (--analyses)")
    parser.add_argument("--human-counts", help="cifar10h-counts.npy: real votes for --analyses (real images)")
    parser.add_argument("--no-pdf", action="store_true", help="time gallery.html only")
    parser.add_argument("--out", help="keep the files in this folder (default: a temporary one)")
    parser.add_argument("--browser", action="store_true", help="also time opening gallery.html in Chromium")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.out or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        test, runs, scores, labels, classes = make_inputs(folder, args.n, args.images, args.runs)
        files = (make_analyses(folder, labels, classes, np.random.default_rng(1), args.train_images,
                               args.human_counts) if args.analyses else {})
        focus = folder / "numbers.json"  # what rule compare_variants tells the gallery: the variant and seed it shows
        write_json(focus, {"focus": runs[0][0], "seed": runs[0][1],
                           "verdict": {"top": runs[0][0], "best": None, "tied_with_top": [runs[0][0]]}})
        print(f"gallery build, {len(labels):,} images ({'real: ' + args.images if args.images else 'synthetic'}), "
              f"{len(runs)} run{'s' * (len(runs) > 1)} ({len({v for v, _ in runs})} variants), "
              f"analyses {'on' if args.analyses else 'off'}; "
              f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
              f"Python {platform.python_version()}")
        total = 0.0
        builds = [("gallery.html", pages.gallery_html, ["gallery.html.j2", "gallery.js"])]
        if not args.no_pdf:
            builds.append(("gallery.pdf", pages.gallery_pdf, ["gallery_print.html.j2"]))
        for name, build, templates in builds:
            out = folder / name
            tic = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # the builders' own one-line log
                build(test, runs, scores, focus, out, *(TEMPLATES / t for t in templates), title="gallery benchmark",
                      **files)
            seconds = time.perf_counter() - tic
            total += seconds
            print(f"  {name:17s} {seconds:6.1f} s  {out.stat().st_size / 1e6:6.1f} MB"
                  + (f"  ({html_parts(out)})" if name.endswith(".html") else ""))
        print(f"  {'both' if len(builds) > 1 else 'total':17s} {total:6.1f} s")
        if args.browser:
            browser_timings(folder / "gallery.html", runs)


def browser_timings(html: Path, runs) -> None:
    """Open gallery.html in headless Chromium (tests/chromium.py): time to the first paint, a re-sort, a run
    switch and the disagreement filter."""
    sys.path.insert(0, str(REPO / "tests"))
    from chromium import Chromium, find_chromium

    if find_chromium() is None:
        print("  chromium: not installed, browser timings skipped")
        return
    paint = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
    steps = [("sort", "score-desc"), ("outcome", "wrong"), ("outcome", "")]
    if len(runs) > 1:
        steps += [("variant", runs[-1][0]), ("seed", str(runs[-1][1]))]
    if len({v for v, _ in runs}) > 1:
        steps += [("subset", "variants-disagree")]
    with Chromium() as browser:
        tic = time.perf_counter()
        browser.open(html)
        browser.evaluate(paint)
        print(f"  {'open+paint':17s} {time.perf_counter() - tic:6.1f} s  (headless Chromium)")
        for control, value in steps:
            tic = time.perf_counter()
            browser.evaluate(f"(() => {{ const s = document.getElementById('{control}'); s.value = '{value}';"
                             f" s.dispatchEvent(new Event('change')); return {paint}; }})()")
            shown = browser.evaluate("document.getElementById('count').textContent")
            print(f"  {control + '=' + value:17s} {time.perf_counter() - tic:6.1f} s  ({shown})")


if __name__ == "__main__":
    main()
