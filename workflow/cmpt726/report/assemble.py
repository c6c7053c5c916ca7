"""report/report.html from the results files; report/report.pdf from the HTML."""

from __future__ import annotations

import itertools
from pathlib import Path

from ..io import read_json
from . import q6
from .render import load_outputs, provenance, read_tsv, render


def write_report(out_html, template, *, settings: dict, seeds: list[int], metrics: list, epochs: list,
                 benchmarks: list, reference: dict, theory: dict, backbone: dict, data: dict, config: dict,
                 title: str, repo_dir=".") -> None:
    """metrics/epochs/benchmarks are in expand() order: variant-major, then seed."""
    keys = list(itertools.product(settings, seeds))
    metrics_by, epochs_by, bench_by = (dict(zip(keys, paths)) for paths in (metrics, epochs, benchmarks))
    rows = q6.variant_rows(settings, seeds, metrics_by, bench_by, reference)
    context = {
        "title": title,
        "theory": {name: load_outputs(paths) for name, paths in theory.items()},
        "q6": {
            "rows": rows,
            "best": max(rows, key=lambda r: r["accuracy"]),
            "n_test": read_json(metrics[0])["n"],
            "curves": {key: read_tsv(path) for key, path in epochs_by.items()},
            "backbone": {**backbone, "description": q6.describe_backbone(backbone)},
            "data": data,
            "defaults": config["training"],
            "seeds": seeds,
        },
        "provenance": provenance(config, repo_dir),
        "stylesheet": Path(template).with_name("report.css").read_text(),
    }
    render(template, out_html, context)
