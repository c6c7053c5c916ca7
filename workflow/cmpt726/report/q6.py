"""Question 6, every number: the variant table, the best variant and how it errs, calibration, the
comparisons the prose makes, and the entry point of rule plot_q6 that writes them with the figures.

The template (sections/q6.html.j2) only lays out what `q6_outputs` writes to numbers.json; it
computes nothing. Training time and peak memory come from the training jobs' own summaries
(`finetune.train_summary`), not from Snakemake's benchmark files.
"""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np

from ..data import load_arrays
from ..evaluation import read_scores
from ..io import read_json, read_tsv, write_json, write_tsv
from . import figures
from .render import data_uri

N_MISTAKES = 24
CALIBRATION_BINS = 15
TABLE_COLUMNS = ["variant", "train", "head", "epochs", "lr", "weight_decay", "batch_size", "accuracy",
                 "accuracy_std", "delta_vs_baseline", "reference_accuracy", "ece", "train_seconds", "peak_rss_mb"]
TABLE_KEYS = ["name", "train", "head", "epochs", "lr", "weight_decay", "batch_size", "accuracy", "accuracy_std",
              "delta", "reference", "ece", "seconds", "max_rss_mb"]


# --------------------------------------------------------------------------- words
def describe_backbone(backbone: dict) -> str:
    if backbone["source"] == "download":
        return f"the published weights, downloaded from {backbone['url']}"
    if backbone["source"] == "path":
        return f"weights read from {backbone['path']}"
    return "pretrained on CIFAR-100 by this workflow"


def describe_head(head: dict) -> str:
    widths = ["64", *map(str, head["hidden"]), "10"]
    text = "→".join(widths)
    extras = []
    if head["hidden"] and head["batchnorm"]:
        extras.append("BN")
    if head["dropout"]:
        extras.append(f"dropout {head['dropout']:g}")
    return text + (f" ({', '.join(extras)})" if extras else "")


def describe_data(summary: dict) -> dict:
    """results/data/cifar10/summary.json with the test images per class in words ("1,000" or "95–105")."""
    low, high = min(summary["test"]["per_class"]), max(summary["test"]["per_class"])
    return {**summary, "test_per_class": f"{low:,}" if low == high else f"{low:,}–{high:,}"}


def backbone_info(backbone: dict, summary_path=None, curves_path=None) -> dict:
    """The backbone's source in words and its CIFAR-100 top-1 (%) with where that number comes from."""
    info = {**backbone, "description": describe_backbone(backbone), "top1": None, "top1_source": None,
            "curves": data_uri(curves_path) if curves_path else None}
    published = (backbone.get("pretrain") or {}).get("published_top1")
    if summary_path:
        summary = read_json(summary_path)
        info.update(top1=summary.get("final_top1"), top1_source="measured on the CIFAR-100 test set after "
                    f"{summary.get('epochs')} epochs of pretraining here", published_top1=published,
                    pretrain_device=summary.get("device"))
    elif backbone["source"] == "download" and published is not None:
        info.update(top1=published, top1_source="as published with the weights; config key "
                    "backbone.pretrain.published_top1")
    return info


# --------------------------------------------------------------------------- per-image numbers
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
    mean_confidence, accuracy_overall = float(confidence.mean()), float(correct.mean())
    return {"edges": edges.tolist(), "count": count.tolist(), "confidence": _nan_to_none(mean_conf),
            "accuracy": _nan_to_none(accuracy), "ece": ece, "mean_confidence": mean_confidence,
            "accuracy_overall": accuracy_overall,
            # How the prose reads it: over- or under-confident on average, by how many points.
            "direction": "over-confident" if mean_confidence > accuracy_overall else "under-confident",
            "gap_points": 100 * abs(mean_confidence - accuracy_overall)}


def _nan_to_none(values) -> list:
    return [None if math.isnan(v) else float(v) for v in values]


def confident_mistakes(labels: np.ndarray, probs: np.ndarray, k: int = N_MISTAKES) -> np.ndarray:
    """Indices of the k wrong predictions with the highest max score, most confident first."""
    pred = probs.argmax(1)
    score = probs.max(1)
    wrong = np.flatnonzero(pred != labels)
    order = np.lexsort((wrong, -score[wrong]))  # ties: lower index first, so the choice is stable
    return wrong[order[:k]]


def top_confusion(confusion, classes) -> dict | None:
    """The most frequent off-diagonal (true, predicted) pair."""
    c = np.array(confusion)
    np.fill_diagonal(c, -1)
    i, j = np.unravel_index(np.argmax(c), c.shape)
    return None if c[i, j] <= 0 else {"true": classes[i], "pred": classes[j], "count": int(c[i, j])}


# --------------------------------------------------------------------------- the variant table
def _mean_std(values):
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else None
    return mean, std


def variant_rows(settings: dict, seeds: list[int], metrics: dict, train_summaries: dict, reference: dict,
                 baseline: str = "head") -> list[dict]:
    """settings: name → resolved settings; metrics/train_summaries: (name, seed) → path."""
    rows = []
    for name, s in settings.items():
        accs = [read_json(metrics[name, seed])["accuracy"] for seed in seeds]
        cost = [read_json(train_summaries[name, seed]) for seed in seeds]
        mean, std = _mean_std(accs)
        rows.append({
            "name": name, "head": describe_head(s["head"]), "train": s["train"], "epochs": s["epochs"],
            "lr": s["lr"], "weight_decay": s["weight_decay"], "batch_size": s["batch_size"],
            "accuracy": mean, "accuracy_std": std, "seeds": len(seeds), "reference": reference.get(name),
            "seconds": statistics.fmean(c["train_seconds"] for c in cost),
            "max_rss_mb": max(c["peak_rss_mb"] for c in cost),
            "max_cuda_mb": max((c["peak_cuda_mb"] for c in cost if c.get("peak_cuda_mb") is not None), default=None),
        })
    base = next((r["accuracy"] for r in rows if r["name"] == baseline), None)
    for r in rows:
        r["delta"] = None if base is None else r["accuracy"] - base
    return rows


def varying_columns(rows: list[dict]) -> dict:
    """Which optional columns differ between variants (a column that is the same everywhere goes in a note)."""
    return {key: len({r[key] for r in rows}) > 1 for key in ("lr", "batch_size")}


def head_vs_full(rows: list[dict]) -> dict | None:
    """The prose's comparison: the best variant that fine-tunes everything against the best head-only one."""
    heads = [r for r in rows if r["train"] == "head"]
    fulls = [r for r in rows if r["train"] == "all"]
    if not heads or not fulls:
        return None
    h = max(heads, key=lambda r: r["accuracy"])
    f = max(fulls, key=lambda r: r["accuracy"])
    return {"head": h["name"], "head_accuracy": h["accuracy"], "full": f["name"], "full_accuracy": f["accuracy"],
            "full_wins": f["accuracy"] > h["accuracy"], "difference": abs(f["accuracy"] - h["accuracy"]),
            "time_ratio": f["seconds"] / h["seconds"] if f["seconds"] and h["seconds"] else None}


# --------------------------------------------------------------------------- rule plot_q6
def q6_outputs(*, settings: dict, seeds: list[int], metrics: list, epochs: list, train_summaries: list,
               scores: list, test_images, reference: dict, out: dict, baseline: str = "head") -> dict:
    """Every Q6 figure, the variant table and the numbers JSON.

    metrics/epochs/train_summaries/scores are in expand() order (variant-major, then seed). The per-image
    analyses (confusion, per-class, calibration diagram, mistakes) use the best variant's first seed.
    out: figure name → path for curves, confusion, per_class, reliability, mistakes, table, numbers.
    """
    keys = list(itertools.product(settings, seeds))
    for name, paths in [("metrics", metrics), ("epochs", epochs), ("train_summaries", train_summaries),
                        ("scores", scores)]:
        if len(paths) != len(keys):
            raise ValueError(f"{name}: {len(paths)} files for {len(keys)} variant × seed runs")
    metrics_by, epochs_by, cost_by, scores_by = (dict(zip(keys, p)) for p in (metrics, epochs, train_summaries, scores))
    images, labels, classes = load_arrays(test_images)
    n = len(labels)

    rows = variant_rows(settings, seeds, metrics_by, cost_by, reference, baseline=baseline)
    table = {key: read_scores(path, expected_rows=n) for key, path in scores_by.items()}
    for key, s in table.items():
        if not np.array_equal(s["label"], labels):
            raise ValueError(f"{scores_by[key]}: its labels differ from {test_images}; re-evaluate the variant")
    calib = {key: calibration(s["probs"].max(1), s["pred"] == s["label"]) for key, s in table.items()}
    for r in rows:
        r["ece"] = statistics.fmean(100 * calib[r["name"], seed]["ece"] for seed in seeds)

    best_row = max(rows, key=lambda r: r["accuracy"])
    best, seed = best_row["name"], seeds[0]
    best_metrics = read_json(metrics_by[best, seed])
    best_scores = table[best, seed]
    mistakes = confident_mistakes(best_scores["label"], best_scores["probs"])
    compare = {best: best_metrics["per_class_accuracy"]}
    if baseline in settings and baseline != best:
        compare[f"{baseline} (baseline)"] = read_json(metrics_by[baseline, seed])["per_class_accuracy"]
    per_class = best_metrics["per_class_accuracy"]
    ranked = sorted((a, c) for c, a in per_class.items() if a is not None)

    figures.plot_curves({name: [read_tsv(epochs_by[name, s]) for s in seeds] for name in settings}, out["curves"])
    figures.plot_confusion(best_metrics["confusion"], classes, f"{best}, seed {seed}", out["confusion"])
    figures.plot_per_class(compare, out["per_class"])
    figures.plot_reliability(calib[best, seed], f"{best}, seed {seed}", out["reliability"])
    figures.plot_mistakes(images, best_scores["label"], best_scores["probs"], mistakes, classes,
                          f"The {len(mistakes)} most confident mistakes of {best} (seed {seed})", out["mistakes"])
    write_tsv(out["table"], TABLE_COLUMNS, ([r[k] for k in TABLE_KEYS] for r in rows))

    numbers = {
        "rows": rows, "baseline": baseline if baseline in settings else None, "best": best, "best_row": best_row,
        "seed": seed, "seeds": list(seeds), "n_test": n, "classes": classes,
        "train_modes": list(dict.fromkeys(r["train"] for r in rows)),
        "varying": varying_columns(rows),
        "head_vs_full": head_vs_full(rows),
        "best_accuracy": best_row["accuracy"],
        "best_seed_accuracy": best_metrics["accuracy"],
        "ece": {r["name"]: r["ece"] for r in rows},
        "calibration": {k: v for k, v in calib[best, seed].items() if k != "edges"},
        "calibration_bins": CALIBRATION_BINS,
        "per_class": per_class,
        "worst_class": {"name": ranked[0][1], "accuracy": ranked[0][0]} if ranked else None,
        "best_class": {"name": ranked[-1][1], "accuracy": ranked[-1][0]} if ranked else None,
        "top_confusion": top_confusion(best_metrics["confusion"], classes),
        "n_wrong": int((best_scores["pred"] != best_scores["label"]).sum()),
        "mistakes": [{"index": int(i), "label": classes[best_scores["label"][i]],
                      "pred": classes[best_scores["pred"][i]], "score": float(best_scores["probs"][i].max())}
                     for i in mistakes],
        "devices": sorted({read_json(p).get("device", "not recorded") for p in metrics}),
    }
    write_json(out["numbers"], numbers)
    return numbers
