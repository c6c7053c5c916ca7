"""Question 6 figures and numbers: training curves, confusion matrix, per-class accuracy, calibration,
the most confident mistakes; the variant table as TSV; one JSON of every number the prose quotes."""

from __future__ import annotations

import csv
import itertools
import math
import statistics

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # no display on the workers; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..data import load_arrays  # noqa: E402
from ..evaluation import read_scores  # noqa: E402
from ..io import atomic_path, read_json, write_json  # noqa: E402
from . import q6  # noqa: E402
from .render import read_tsv  # noqa: E402

DPI = 130
N_MISTAKES = 24
CALIBRATION_BINS = 15
TABLE_COLUMNS = ["variant", "train", "head", "epochs", "lr", "weight_decay", "batch_size", "accuracy",
                 "accuracy_std", "delta_vs_baseline", "reference_accuracy", "ece", "train_seconds", "peak_rss_mb"]


# --------------------------------------------------------------------------- pure numbers
def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS) -> dict:
    """Reliability bins of the max softmax score and the expected calibration error (ECE, in [0, 1]).

    Bin b holds the scores in (b/bins, (b+1)/bins]; ECE = Σ_b (n_b / N) |accuracy_b − mean score_b|.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if confidence.shape != correct.shape or confidence.ndim != 1 or not len(confidence):
        raise ValueError("calibration needs two equal-length, non-empty 1-d arrays")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=bins)
    hit_sum = np.bincount(which, weights=correct.astype(np.float64), minlength=bins)
    filled = count > 0
    mean_conf = np.where(filled, conf_sum / np.maximum(count, 1), np.nan)
    accuracy = np.where(filled, hit_sum / np.maximum(count, 1), np.nan)
    ece = float(np.sum(count[filled] / len(confidence) * np.abs(accuracy[filled] - mean_conf[filled])))
    nan_to_none = lambda a: [None if math.isnan(v) else float(v) for v in a]  # noqa: E731
    return {"edges": edges.tolist(), "count": count.tolist(), "confidence": nan_to_none(mean_conf),
            "accuracy": nan_to_none(accuracy), "ece": ece, "mean_confidence": float(confidence.mean()),
            "accuracy_overall": float(correct.mean())}


def confident_mistakes(labels: np.ndarray, probs: np.ndarray, k: int = N_MISTAKES) -> np.ndarray:
    """Indices of the k wrong predictions with the highest max score, most confident first."""
    pred = probs.argmax(1)
    score = probs.max(1)
    wrong = np.flatnonzero(pred != labels)
    order = np.lexsort((wrong, -score[wrong]))  # ties: lower index first, so the choice is stable
    return wrong[order[:k]]


def _clean(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def mean_curves(histories: list[list[dict]], column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Epochs, the mean over seeds of one per-epoch column, and its std (None for one seed)."""
    length = min(len(h) for h in histories)
    values = np.array([[row[column] for row in h[:length]] for h in histories], dtype=np.float64)
    epochs = np.array([row["epoch"] for row in histories[0][:length]])
    return epochs, values.mean(0), (values.std(0, ddof=1) if len(histories) > 1 else None)


# --------------------------------------------------------------------------- figures
def _save(fig, path) -> None:
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=DPI, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)


def plot_curves(curves: dict[str, list[list[dict]]], path) -> None:
    """Training loss and test accuracy per epoch, one line per variant (mean over seeds, ±1 std band)."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.9))
    colors = plt.get_cmap("tab10")
    for i, (name, histories) in enumerate(curves.items()):
        color = colors(i % 10)
        for ax, column in [(ax_loss, "train_loss"), (ax_acc, "test_acc")]:
            epochs, mean, std = mean_curves(histories, column)
            ax.plot(epochs, mean, marker="o", markersize=3.5, color=color, label=name, lw=1.6)
            if std is not None:
                ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.15, lw=0)
    ax_loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="Training loss")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="Test accuracy after each epoch")
    last = max(len(h) for histories in curves.values() for h in histories)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.set_xlim(0.5, last + 0.5)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, min_n_ticks=1))
    ax_acc.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.tight_layout()
    _save(fig, path)


def plot_confusion(confusion: np.ndarray, classes: list[str], title: str, path) -> None:
    """Counts, coloured by the row-normalised rate (recall per true class)."""
    confusion = np.asarray(confusion)
    rates = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.6, 5.6))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    k = len(classes)
    for i, j in itertools.product(range(k), range(k)):
        ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7.5,
                color="white" if rates[i, j] > 0.55 else "#222")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8.5)
    ax.set_yticks(range(k), classes, fontsize=8.5)
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="fraction of the true class")
    fig.tight_layout()
    _save(fig, path)


def plot_per_class(per_class: dict[str, dict[str, float | None]], path) -> None:
    """Grouped bars: per-class test accuracy of each named variant (best and baseline)."""
    names = list(per_class)
    classes = list(next(iter(per_class.values())))
    x = np.arange(len(classes))
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    colors = ["#1f77b4", "#bbbbbb", "#ff7f0e"]
    for i, name in enumerate(names):
        values = [np.nan if per_class[name][c] is None else per_class[name][c] for c in classes]
        bars = ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name, color=colors[i % 3])
        if i == 0:
            ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    ax.set_xticks(x, classes, fontsize=9)
    ax.set(ylabel="test accuracy (%)", ylim=(0, 105), title="Per-class test accuracy")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    _save(fig, path)


def plot_reliability(calib: dict, title: str, path) -> None:
    """Accuracy per score bin against the diagonal, and how many images fall in each bin."""
    edges = np.array(calib["edges"])
    centers = (edges[:-1] + edges[1:]) / 2
    width = edges[1] - edges[0]
    acc = np.array([np.nan if a is None else a for a in calib["accuracy"]])
    conf = np.array([np.nan if c is None else c for c in calib["confidence"]])
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(5.6, 5.6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.bar(centers, acc, width * 0.95, color="#1f77b4", edgecolor="#0d3d66", label="accuracy in bin")
    gap_bottom = np.fmin(acc, conf)
    ax.bar(centers, np.abs(conf - acc), width * 0.95, bottom=gap_bottom, facecolor="none", hatch="///",
           edgecolor="#d62728", lw=0.8, label="gap to the bin's mean score")
    ax.plot([0, 1], [0, 1], "--", color="#444", lw=1, label="perfect calibration")
    ax.set(ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title=f"{title}  (ECE {100 * calib['ece']:.2f}%)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    ax_n.bar(centers, calib["count"], width * 0.95, color="#888")
    ax_n.set(xlabel="max softmax score", ylabel="images")
    ax_n.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)


def plot_mistakes(images: np.ndarray, labels, probs, indices, classes: list[str], title: str, path) -> None:
    """The given test images (N, 3, 32, 32 uint8) in a grid, each with true class, prediction and score."""
    cols = 6
    rows = max(1, math.ceil(len(indices) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.55, rows * 1.95), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, indices):
        p = probs[i]
        ax.imshow(images[i].transpose(1, 2, 0), interpolation="nearest")
        ax.set_title(f"#{i}  true: {classes[labels[i]]}\npred: {classes[p.argmax()]} {p.max():.3f}",
                     fontsize=7.5, color="#a00", pad=3)
    if not len(indices):
        axes[0, 0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


# --------------------------------------------------------------------------- the rule's work
def plot_pretraining(epochs_path, path, published_top1: float | None = None) -> None:
    """Backbone pretraining on CIFAR-100: test top-1 and losses per epoch, beside the published top-1."""
    rows = read_tsv(epochs_path)
    epoch = [r["epoch"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.plot(epoch, [r["test_top1"] for r in rows], label="test top-1 (ours)")
    left.plot(epoch, [r["train_acc"] for r in rows], alpha=0.6, label="train accuracy")
    if published_top1 is not None:
        left.axhline(published_top1, color="black", linestyle="--", linewidth=1,
                     label=f"published weights ({published_top1:.2f}%)")
    left.set(xlabel="epoch", ylabel="accuracy (%)", title="CIFAR-100 accuracy")
    left.legend(fontsize=8)
    right.plot(epoch, [r["train_loss"] for r in rows], label="train loss")
    right.plot(epoch, [r["test_loss"] for r in rows], label="test loss")
    right.set(xlabel="epoch", ylabel="cross-entropy", title="CIFAR-100 loss")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    _save(fig, path)


def write_table(path, rows: list[dict]) -> None:
    with atomic_path(path, suffix=".tsv") as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(TABLE_COLUMNS)
        for r in rows:
            values = [r["name"], r["train"], r["head"], r["epochs"], r["lr"], r["weight_decay"], r["batch_size"],
                      r["accuracy"], r["accuracy_std"], r["delta"], r["reference"], r["ece"], r["seconds"],
                      r["max_rss_mb"]]
            writer.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in values])


def q6_outputs(*, settings: dict, seeds: list[int], metrics: list, epochs: list, benchmarks: list, scores: list,
               test_images, reference: dict, out: dict, baseline: str = "head") -> dict:
    """Every Q6 figure, the variant table and the numbers JSON.

    metrics/epochs/benchmarks/scores are in expand() order (variant-major, then seed). The per-image analyses
    (confusion, per-class, calibration diagram, mistakes) use the best variant's first seed.
    out: figure name → path for curves, confusion, per_class, reliability, mistakes, table, numbers.
    """
    keys = list(itertools.product(settings, seeds))
    for name, paths in [("metrics", metrics), ("epochs", epochs), ("benchmarks", benchmarks), ("scores", scores)]:
        if len(paths) != len(keys):
            raise ValueError(f"{name}: {len(paths)} files for {len(keys)} variant × seed runs")
    metrics_by, epochs_by, bench_by, scores_by = (dict(zip(keys, p)) for p in (metrics, epochs, benchmarks, scores))
    images, labels, classes = load_arrays(test_images)
    n = len(labels)

    rows = q6.variant_rows(settings, seeds, metrics_by, bench_by, reference, baseline=baseline)
    table = {key: read_scores(path, expected_rows=n) for key, path in scores_by.items()}
    for key, s in table.items():
        if not np.array_equal(s["label"], labels):
            raise ValueError(f"{scores_by[key]}: its labels differ from {test_images}; re-evaluate the variant")
    calib = {key: calibration(s["probs"].max(1), s["pred"] == s["label"]) for key, s in table.items()}
    for r in rows:
        r["ece"] = statistics.fmean(100 * calib[r["name"], seed]["ece"] for seed in seeds)
        r.update({k: _clean(v) for k, v in r.items()})

    best = max(rows, key=lambda r: r["accuracy"])["name"]
    seed = seeds[0]
    best_metrics = read_json(metrics_by[best, seed])
    best_scores = table[best, seed]
    mistakes = confident_mistakes(best_scores["label"], best_scores["probs"])
    compare = {best: best_metrics["per_class_accuracy"]}
    if baseline in settings and baseline != best:
        compare[f"{baseline} (baseline)"] = read_json(metrics_by[baseline, seed])["per_class_accuracy"]
    per_class = best_metrics["per_class_accuracy"]
    ranked = sorted((a, c) for c, a in per_class.items() if a is not None)

    plot_curves({name: [read_tsv(epochs_by[name, s]) for s in seeds] for name in settings}, out["curves"])
    plot_confusion(best_metrics["confusion"], classes, f"{best}, seed {seed}", out["confusion"])
    plot_per_class(compare, out["per_class"])
    plot_reliability(calib[best, seed], f"{best}, seed {seed}", out["reliability"])
    plot_mistakes(images, best_scores["label"], best_scores["probs"], mistakes, classes,
                  f"The {len(mistakes)} most confident mistakes of {best} (seed {seed})", out["mistakes"])
    write_table(out["table"], rows)

    wrong = int((best_scores["pred"] != best_scores["label"]).sum())
    numbers = {
        "rows": rows, "baseline": baseline if baseline in settings else None, "best": best, "seed": seed,
        "seeds": list(seeds), "n_test": n, "classes": classes,
        "best_accuracy": next(r["accuracy"] for r in rows if r["name"] == best),
        "best_seed_accuracy": best_metrics["accuracy"],
        "ece": {name: next(r["ece"] for r in rows if r["name"] == name) for name in settings},
        "calibration": {k: v for k, v in calib[best, seed].items() if k != "edges"},
        "calibration_bins": CALIBRATION_BINS,
        "per_class": per_class,
        "worst_class": {"name": ranked[0][1], "accuracy": ranked[0][0]} if ranked else None,
        "best_class": {"name": ranked[-1][1], "accuracy": ranked[-1][0]} if ranked else None,
        "top_confusion": _top_confusion(best_metrics["confusion"], classes),
        "n_wrong": wrong,
        "mistakes": [{"index": int(i), "label": classes[best_scores["label"][i]],
                      "pred": classes[best_scores["pred"][i]], "score": float(best_scores["probs"][i].max())}
                     for i in mistakes],
        "devices": sorted({read_json(p).get("device", "not recorded") for p in metrics}),
    }
    write_json(out["numbers"], numbers)
    return numbers


def _top_confusion(confusion, classes) -> dict | None:
    """The most frequent off-diagonal (true, predicted) pair."""
    c = np.array(confusion)
    np.fill_diagonal(c, -1)
    i, j = np.unravel_index(np.argmax(c), c.shape)
    return None if c[i, j] <= 0 else {"true": classes[i], "pred": classes[j], "count": int(c[i, j])}
