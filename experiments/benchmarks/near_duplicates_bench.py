"""Train–test near-duplicates on the real CIFAR-10: time each stage, check the fast search, draw the pairs.

    .venv/bin/python experiments/benchmarks/near_duplicates_bench.py --cifar10 ../real-data/cifar-10-batches-py
                                                         [--exact-sample 1000] [--png-dir /tmp] [--seed 0]

Get the data with `.venv/bin/python ../shared/data/restore.py ../real-data --only cifar10` (official pickles;
read here directly, never copied into the project). It writes the four inputs of `write_near_duplicates`
into a temporary folder under /tmp — the real images, and random 64-d float32 features (a randomly
initialised backbone would be no more meaningful, and the cost of the feature search does not depend on
the values) — and runs that entry point, timing each stage. Then:

* the exact brute-force search (`exact_nearest_by_pixels`, every training image, all 9 shifts) on a random
  sample of test images plus every flagged one, compared with the two-stage search;
* a text histogram of the nearest-neighbour distances with the threshold;
* PNG grids under --png-dir: every flagged pair (test image above its training twin), and the 50 pairs
  just above the threshold, to judge the rule by eye.

Recorded output: experiments/benchmarks/outputs.md; the numbers: experiments/benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))

from cmpt726.analysis import near_duplicates as nd  # noqa: E402
from cmpt726.config import schema_default  # noqa: E402

# The workflow's settings (the schema's defaults), passed in as the rule passes them.
SETTINGS = {"k": schema_default("analysis.near_duplicates.mad_k"),
            "candidates": schema_default("analysis.near_duplicates.candidates")}

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def read_batches(folder: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as fh:
            batch = pickle.load(fh, encoding="latin1")
        images.append(np.asarray(batch["data"], np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch["labels"], np.int64))
    return np.concatenate(images), np.concatenate(labels)


def memory_mb() -> dict:
    with open("/proc/self/status") as fh:
        return {line.split(":")[0]: int(line.split()[1]) // 1024 for line in fh if line.startswith(("VmRSS", "VmHWM"))}


def read_tsv(path: Path) -> dict:
    with open(path) as fh:
        header = fh.readline().rstrip("\n").split("\t")
    table = np.loadtxt(path, delimiter="\t", skiprows=1, ndmin=2)
    return {name: table[:, j] for j, name in enumerate(header)}


def histogram(distances: np.ndarray, threshold: float, bins: int = 30) -> str:
    counts, edges = np.histogram(np.log(np.maximum(distances, nd.DISTANCE_FLOOR)), bins=bins)
    lines = []
    for count, left, right in zip(counts, np.exp(edges[:-1]), np.exp(edges[1:])):
        mark = "  <- threshold" if left <= threshold < right else ""
        lines.append(f"  {left:6.3f}-{right:6.3f} {count:5d} {'#' * int(np.ceil(count / 40))}{mark}")
    return "\n".join(lines)


def save_pairs(path: Path, test_images, train_images, test_idx, train_idx, distances, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 10
    rows = max(1, int(np.ceil(len(test_idx) / cols)))
    fig, axes = plt.subplots(2 * rows, cols, figsize=(cols * 1.25, rows * 2.7), squeeze=False)
    for a in axes.flat:
        a.axis("off")
    for j, (t, r, d) in enumerate(zip(test_idx, train_idx, distances)):
        row, col = divmod(j, cols)
        axes[2 * row, col].imshow(test_images[t].transpose(1, 2, 0))
        axes[2 * row, col].set_title(f"test {t}\nd={d:.3f}", fontsize=6)
        axes[2 * row + 1, col].imshow(train_images[r].transpose(1, 2, 0))
        axes[2 * row + 1, col].set_title(f"train {r}", fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cifar10", type=Path, default=Path("../real-data/cifar-10-batches-py"))
    parser.add_argument("--exact-sample", type=int, default=1000,
                        help="random test images checked by brute force (0: skip the brute-force check)")
    parser.add_argument("--png-dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads, pinned as the workflow's jobs do (default: torch's choice)")
    args = parser.parse_args(argv)

    if args.threads:
        from cmpt726.snakemake_job import set_threads

        set_threads(args.threads)
    import torch

    print(f"# near-duplicates benchmark: torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start (other users' jobs share the CPUs)")
    tic = time.perf_counter()
    train_images, train_labels = read_batches(args.cifar10, TRAIN_BATCHES)
    test_images, test_labels = read_batches(args.cifar10, ["test_batch"])
    print(f"read pickles: {time.perf_counter() - tic:.2f} s ({len(train_images)} train, {len(test_images)} test)")

    rng = np.random.default_rng(args.seed)
    classes = np.array([f"class{i}" for i in range(10)])
    with tempfile.TemporaryDirectory(prefix="near-dups-bench-") as tmp:
        tmp = Path(tmp)
        paths = {name: tmp / f"{name}.npz" for name in ["train", "test", "train_features", "test_features"]}
        np.savez(paths["train"], images=train_images, labels=train_labels, classes=classes)
        np.savez(paths["test"], images=test_images, labels=test_labels, classes=classes)
        for split, labels in (("train", train_labels), ("test", test_labels)):
            features = rng.standard_normal((len(labels), 64), dtype=np.float32)
            np.savez(paths[f"{split}_features"], features=features, labels=labels, classes=classes)
        out = tmp / "near_duplicates.tsv"
        rss_before, cpu_before = memory_mb()["VmRSS"], time.process_time()
        summary = nd.write_near_duplicates(paths["train"], paths["test"], paths["train_features"],
                                           paths["test_features"], out, **SETTINGS)
        cpu_seconds = time.process_time() - cpu_before
        peak = memory_mb()["VmHWM"]
        table = read_tsv(out)

    seconds = summary["seconds"]
    print("\n## write_near_duplicates, 50,000 train x 10,000 test")
    for stage, label in [("load", "load the four .npz files"),
                         ("candidates", "pixels 1: 8x8 thumbnail correlations, top 16"),
                         ("exact_on_candidates", "pixels 2: picture+detail, 9 shifts, on the 16 candidates"),
                         ("features", "features: cosine, 64-d (random values)"),
                         ("write", "write the TSV"), ("total", "total")]:
        print(f"  {label:55s} {seconds[stage]:7.2f} s")
    print(f"  process CPU time {cpu_seconds:.1f} s; peak resident memory {peak} MB, of which {rss_before} MB "
          "before the call (torch's libraries and the pickles read above)")
    threshold = summary["threshold"]
    distance = table["pixel_distance"].astype(np.float32)
    train_index = table["train_index"].astype(np.int64)
    flagged = table["flagged"].astype(bool)
    print(f"\nthreshold {threshold:.4f} = exp({summary['median_log_distance']:.4f} - {summary['k']:g} x "
          f"{summary['robust_sd_log_distance']:.4f}); median distance {summary['median_distance']:.4f}")
    print(f"rule: {summary['rule']}")
    print(f"flagged: {summary['n_flagged']} of {summary['n_test']} test images "
          f"({summary['n_flagged_other_label']} with a twin of another label)")
    for k in (5, 6, 7, 8, 10):
        t = float(np.exp(summary["median_log_distance"] - k * summary["robust_sd_log_distance"]))
        print(f"  (for comparison, k = {k:2d}: threshold {t:.4f}, {int((distance <= t).sum())} flagged)")
    print("\nnearest-neighbour pixel distances (log bins):")
    print(histogram(distance, threshold))

    # ---------------------------------------------------------------- exact search on a sample
    if args.exact_sample > 0:
        check_against_brute_force(args, rng, train_images, test_images, train_index, distance, flagged, threshold)
    save_pictures(args, summary, test_images, train_images, train_index, distance, threshold)
    print(f"load average {os.getloadavg()[0]:.2f} at end")


def check_against_brute_force(args, rng, train_images, test_images, train_index, distance, flagged, threshold):
    sample = np.sort(rng.choice(len(test_images), min(args.exact_sample, len(test_images)), replace=False))
    flagged_idx = np.flatnonzero(flagged)
    tic = time.perf_counter()
    exact_index, exact_distance = nd.exact_nearest_by_pixels(train_images, test_images[sample])
    exact_seconds = time.perf_counter() - tic
    same = exact_index == train_index[sample]
    close = np.abs(exact_distance - distance[sample]) <= 1e-5
    below = exact_distance <= threshold
    minutes = exact_seconds * len(test_images) / len(sample) / 60
    print(f"\n## exact brute-force search (every training image, 9 shifts) on {len(sample)} random test images: "
          f"{exact_seconds:.1f} s (all {len(test_images):,} would take ~{minutes:.0f} min)")
    print(f"  same nearest training image: {same.sum()} / {len(sample)}; same distance (1e-5): {close.sum()}; "
          f"where they differ the fast distance is {np.median(distance[sample][~same] / exact_distance[~same]):.3f}x "
          "the exact one (median; an ordinary image's nearest by detail often lies outside its 16 candidates)")
    print(f"  fast distance >= exact distance for all: {bool((distance[sample] >= exact_distance - 1e-5).all())}")
    print(f"  exact distance <= threshold: {below.sum()}; of these the fast search has the same twin: "
          f"{(same & below).sum()} and flags {flagged[sample][below].sum()}; "
          f"fast-flagged in sample: {flagged[sample].sum()}")
    rest = np.setdiff1d(flagged_idx, sample)
    tic = time.perf_counter()
    exact_f_index, exact_f_distance = nd.exact_nearest_by_pixels(train_images, test_images[rest])
    print(f"  the other {len(rest)} flagged test images ({time.perf_counter() - tic:.1f} s): same twin "
          f"{(exact_f_index == train_index[rest]).sum()}, same distance "
          f"{(np.abs(exact_f_distance - distance[rest]) <= 1e-5).sum()}")


def save_pictures(args, summary, test_images, train_images, train_index, distance, threshold):
    args.png_dir.mkdir(parents=True, exist_ok=True)
    order = np.argsort(distance, kind="stable")
    ranked_flagged = order[: summary["n_flagged"]]
    for page, start in enumerate(range(0, len(ranked_flagged), 100), start=1):
        idx = ranked_flagged[start:start + 100]
        path = args.png_dir / f"near_duplicates_flagged_{page}.png"
        save_pairs(path, test_images, train_images, idx, train_index[idx], distance[idx],
                   f"flagged pairs {start + 1}-{start + len(idx)} of {len(ranked_flagged)} (threshold {threshold:.3f})")
        print(f"saved {path}")
    above = order[summary["n_flagged"]: summary["n_flagged"] + 50]
    path = args.png_dir / "near_duplicates_above_threshold.png"
    save_pairs(path, test_images, train_images, above, train_index[above], distance[above],
               f"the 50 pairs just above the threshold {threshold:.3f}")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
