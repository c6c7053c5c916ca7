"""report/report.html from the results files; report/report.pdf from the HTML."""

from __future__ import annotations

from pathlib import Path

from .q6 import backbone_info, describe_data
from .render import load_outputs, provenance, render


def write_report(out_html, template, *, q6: list, theory: dict, backbone: dict, data: dict, config: dict,
                 title: str, analysis: list | None = None, backbone_summary=None, backbone_curves=None,
                 repo_dir=None) -> None:
    """q6: the outputs of rule compare_variants (figures, the variant table, numbers.json); analysis: those of rule
    summarize_analyses (sections/analysis.html.j2; None leaves the section out);
    theory: question name ("q1") → the outputs of its rule, rendered by sections/<name>.html.j2."""
    outputs = load_outputs(q6)
    numbers = outputs["numbers"]
    if "rows" not in numbers:
        raise ValueError(f"none of {list(map(str, q6))} is the Q6 numbers JSON (with 'rows')")
    context = {
        "title": title,
        "theory": {name: load_outputs(paths) for name, paths in theory.items()},
        "q6": {
            **numbers,
            "figures": outputs["figures"],
            "backbone": backbone_info(backbone, backbone_summary, backbone_curves),
            "data": describe_data(data),
            "defaults": config["training"],
            "gallery": {"variant": numbers["focus"], "seed": numbers["seed"]},
        },
        "analysis": load_outputs(analysis) if analysis else None,
        "provenance": provenance(config, repo_dir, devices=numbers.get("devices")),
        "stylesheet": Path(template).with_name("report.css").read_text(),
    }
    render(template, out_html, context)
