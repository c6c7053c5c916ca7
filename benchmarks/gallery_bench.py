"""Time the gallery builds (report/gallery.html and report/gallery.pdf) on 10,000 test images.

    .venv/bin/python benchmarks/gallery_bench.py [--n 10000] [--images results/data/cifar10/test.npz] [--out DIR]
                                                 [--browser]

Without --images it makes smooth random images (upsampled noise, so they compress roughly like photos)
and random scores; with --images it uses those real images and random scores. It writes a test.npz and
a score file in the workflow's formats, then runs the same functions as the rules gallery_html and
gallery_pdf, and prints the time and size of each file. Record the output in docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from cmpt726.data import load_arrays, save_arrays  # noqa: E402
from cmpt726.evaluation import write_scores  # noqa: E402
from cmpt726.io import write_json  # noqa: E402
from cmpt726.report import gallery  # noqa: E402

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TEMPLATES = REPO / "workflow" / "templates"


def synthetic_images(n: int, rng) -> np.ndarray:
    """(n, 3, 32, 32) uint8: 8×8 noise upsampled ×4, plus fine noise."""
    coarse = rng.integers(0, 256, (n, 3, 8, 8)).astype(np.float32)
    smooth = coarse.repeat(4, 2).repeat(4, 3)
    return np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)


def make_inputs(folder: Path, n: int, images_npz=None, seed: int = 0) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    if images_npz:
        images, labels, classes = load_arrays(images_npz)
        images, labels = images[:n], labels[:n]
    else:
        images, labels, classes = synthetic_images(n, rng), rng.integers(0, 10, n), CLASSES
    logits = rng.normal(0, 1.5, (len(labels), 10))
    logits[np.arange(len(labels)), labels] += 2.5  # about 70% right
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    test, scores = folder / "test.npz", folder / "scores.tsv"
    save_arrays(test, images, labels, classes)
    write_scores(scores, labels, probs, -np.log(probs[np.arange(len(labels)), labels]))
    return test, scores


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--images", help="a prepared test.npz (results/data/cifar10/test.npz) to use instead")
    parser.add_argument("--out", help="keep the files in this folder (default: a temporary one)")
    parser.add_argument("--browser", action="store_true", help="also time opening gallery.html in Chromium")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.out or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        test, scores = make_inputs(folder, args.n, args.images)
        focus = folder / "numbers.json"  # what rule plot_q6 tells the gallery: the variant and seed it shows
        write_json(focus, {"focus": "bench", "seed": 0})
        print(f"gallery build, {args.n:,} images ({'real: ' + args.images if args.images else 'synthetic'}), "
              f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Python {platform.python_version()}")
        total = 0.0
        for name, build, template in [("gallery.html", gallery.gallery_html, "gallery.html.j2"),
                                      ("gallery.pdf", gallery.gallery_pdf, "gallery_print.html.j2")]:
            out = folder / name
            tic = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # the builders' own one-line log
                build(test, [("bench", 0)], [scores], focus, out, TEMPLATES / template, title="gallery benchmark")
            seconds = time.perf_counter() - tic
            total += seconds
            print(f"  {name:17s} {seconds:6.1f} s  {out.stat().st_size / 1e6:6.1f} MB")
        print(f"  {'both':17s} {total:6.1f} s")
        if args.browser:
            browser_timings(folder / "gallery.html")


def browser_timings(html: Path) -> None:
    """Open gallery.html in headless Chromium (tests/chromium.py): time to the first paint, and a re-sort."""
    sys.path.insert(0, str(REPO / "tests"))
    from chromium import Chromium, find_chromium

    if find_chromium() is None:
        print("  chromium: not installed, browser timings skipped")
        return
    paint = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
    with Chromium() as browser:
        tic = time.perf_counter()
        browser.open(html)
        browser.evaluate(paint)
        print(f"  {'open+paint':17s} {time.perf_counter() - tic:6.1f} s  (headless Chromium)")
        for control, value in [("sort", "score-desc"), ("outcome", "wrong")]:
            tic = time.perf_counter()
            browser.evaluate(f"(() => {{ const s = document.getElementById('{control}'); s.value = '{value}';"
                             f" s.dispatchEvent(new Event('change')); return {paint}; }})()")
            print(f"  {control + '=' + value:17s} {time.perf_counter() - tic:6.1f} s")


if __name__ == "__main__":
    main()
