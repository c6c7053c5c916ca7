"""Question 6 and pretraining figures; drawing only (the numbers come from report/compare_variants.py)."""

import itertools
import math

import matplotlib.ticker
import numpy as np

from ..files import read_tsv
from ..plotting import plain_text, plt, save_figure
from ..text import signed


def mean_curves(histories: list[list[dict]], column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Epochs where every seed has a value of `column`, the mean over seeds there, and the std (None for one seed)."""
    length = min(len(h) for h in histories)
    rows = [i for i in range(length) if all(h[i].get(column) is not None for h in histories)]
    values = np.array([[h[i][column] for i in rows] for h in histories], dtype=np.float64).reshape(len(histories), -1)
    epochs = np.array([histories[0][i]["epoch"] for i in rows])
    return epochs, values.mean(0), (values.std(0, ddof=1) if len(histories) > 1 else None)


@plain_text
def plot_curves(curves: dict[str, list[list[dict]]], path, twins: dict[str, str] | None = None) -> None:
    """Training loss and validation accuracy per epoch per variant (mean, ±1 std); a twin dashed in its colour."""
    twins = twins or {}
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.9))
    colors = plt.get_cmap("tab10")
    bases = list(dict.fromkeys(twins.get(name, name) for name in curves))
    validated = False
    for name, histories in curves.items():
        color = colors(bases.index(twins.get(name, name)) % 10)
        style = {"ls": "--", "marker": "s"} if name in twins else {"ls": "-", "marker": "o"}
        for ax, column in [(ax_loss, "train_loss"), (ax_acc, "val_acc")]:
            epochs, mean, std = mean_curves(histories, column)
            if not len(epochs):
                continue
            validated |= column == "val_acc"
            ax.plot(epochs, mean, markersize=3.5, color=color, label=name, lw=1.6, **style)
            if std is not None:
                ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.15, lw=0)
    ax_loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="Training loss")
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy (%)", title="Validation accuracy after each epoch")
    if not validated:
        ax_acc.text(0.5, 0.5, "no validation split\n(training.validation: 0)", ha="center", va="center",
                    transform=ax_acc.transAxes, color="#555")
    last = max(len(h) for histories in curves.values() for h in histories)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.set_xlim(0.5, last + 0.5)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, min_n_ticks=1))
    handles, labels = ax_loss.get_legend_handles_labels()
    ax_acc.legend(handles, labels, fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    fig.tight_layout()
    save_figure(fig, path)


@plain_text
def plot_intervals(rows: list[dict], verdict: dict, path) -> None:
    """Each variant's test accuracy with its 95 % interval, highest first; those tied with the top one in its colour."""
    order = sorted(rows, key=lambda r: -r["accuracy"])
    tied = set(verdict["tied_with_top"])
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(order) + 1.2))
    for y, r in enumerate(order):
        color = "#1f77b4" if r["name"] in tied else "#888"
        ax.errorbar(r["accuracy"], y, xerr=[[r["accuracy"] - r["ci_low"]], [r["ci_high"] - r["accuracy"]]],
                    fmt="o", color=color, capsize=3, lw=1.6, markersize=5)
        if len(r["per_seed"]) > 1:
            ax.plot(r["per_seed"], [y] * len(r["per_seed"]), "|", color=color, markersize=9, alpha=0.6)
    ax.set_yticks(range(len(order)), [r["name"] for r in order], fontsize=9)
    ax.invert_yaxis()
    ax.set(xlabel="test accuracy (%), 95 % interval", title="Test accuracy of every variant")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


@plain_text
def plot_pair_matrix(matrix: dict, alpha: float, path) -> None:
    """Row − column difference in test accuracy (points) for every pair with its Holm-adjusted p; p < alpha framed."""
    names, diff, p = matrix["names"], matrix["diff"], matrix["p_adjusted"]
    k = len(names)
    values = np.array([[np.nan if v is None else v for v in row] for row in diff], dtype=float).reshape(k, k)
    limit = max(1e-9, np.nanmax(np.abs(values))) if k > 1 else 1.0
    fig, ax = plt.subplots(figsize=(1.0 * k + 2.6, 0.8 * k + 1.6))
    image = ax.imshow(values, cmap="RdBu", vmin=-limit, vmax=limit)
    for i, j in itertools.product(range(k), range(k)):
        if i == j:
            continue
        ax.text(j, i, f"{signed(values[i, j])}\np={p[i][j]:.2g}", ha="center", va="center", fontsize=7,
                color="white" if abs(values[i, j]) > 0.6 * limit else "#222")
        if p[i][j] < alpha:
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2, edgecolor="black"))
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8.5)
    ax.set_yticks(range(k), names, fontsize=8.5)
    ax.set_title(f"Row − column test accuracy (points); framed: Holm-adjusted p < {alpha:g}", fontsize=9.5)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="difference (points)")
    fig.tight_layout()
    save_figure(fig, path)


@plain_text
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
    save_figure(fig, path)


@plain_text
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
    save_figure(fig, path)


@plain_text
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
    save_figure(fig, path)


@plain_text
def plot_image_grid(tiles: list[list[tuple]], title: str, path, empty: str, cols: int = 6,
                    cell=(1.55, 1.95)) -> None:
    """Small images in a grid with a title each; tiles: groups (side by side) of (image (3, 32, 32), title, colour)."""
    flat = [tile for group in tiles for tile in group]
    rows = max(1, math.ceil(len(flat) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * cell[0], rows * cell[1]), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (image, text, color) in zip(axes.flat, flat):
        ax.imshow(image.transpose(1, 2, 0), interpolation="nearest")
        ax.set_title(text, fontsize=7.5, color=color, pad=3)
    if not flat:
        axes[0, 0].text(0.5, 0.5, empty, ha="center", va="center")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_mistakes(images: np.ndarray, labels, probs, indices, classes: list[str], title: str, path) -> None:
    """The given test images (N, 3, 32, 32 uint8) in a grid, each with true class, prediction and score."""
    plot_image_grid([[(images[i], f"#{i}  true: {classes[labels[i]]}\npred: {classes[probs[i].argmax()]} "
                                  f"{probs[i].max():.3f}", "#a00")] for i in indices], title, path, "no mistakes")


@plain_text
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
    save_figure(fig, path)
