"""Question 6 numbers for the report: one row per variant, means over seeds, seed's numbers beside."""

from __future__ import annotations

import statistics

from ..io import read_json
from .render import read_tsv


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


def _mean_std(values):
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else None
    return mean, std


def variant_rows(settings: dict, seeds: list[int], metrics: dict, benchmarks: dict, reference: dict,
                 baseline: str = "head") -> list[dict]:
    """settings: name → resolved settings; metrics/benchmarks: (name, seed) → path."""
    rows = []
    for name, s in settings.items():
        accs = [read_json(metrics[name, seed])["accuracy"] for seed in seeds]
        bench = [read_tsv(benchmarks[name, seed])[0] for seed in seeds]
        mean, std = _mean_std(accs)
        rows.append({
            "name": name, "head": describe_head(s["head"]), "train": s["train"], "epochs": s["epochs"],
            "lr": s["lr"], "weight_decay": s["weight_decay"], "batch_size": s["batch_size"],
            "accuracy": mean, "accuracy_std": std, "seeds": len(seeds), "reference": reference.get(name),
            "seconds": statistics.fmean(b["s"] for b in bench),
            "max_rss_mb": max(float(b["max_rss"]) if b["max_rss"] != "-" else float("nan") for b in bench),
        })
    base = next((r["accuracy"] for r in rows if r["name"] == baseline), None)
    for r in rows:
        r["delta"] = None if base is None else r["accuracy"] - base
    return rows
