"""report/report.html from the results files; report/report.pdf from the HTML."""

from __future__ import annotations

from pathlib import Path

from .compare_variants import backbone_info, describe_data
from .render import load_outputs, provenance, render


def write_report(out_html, template, *, q6: list, theory: dict, backbone: dict, data: dict, title: str,
                 config_changes: list | None = None, analysis: list | None = None, tuning: list | None = None,
                 backbone_summary=None, backbone_curves=None, repo_dir=None) -> None:
    """The report from the outputs of rules compare_variants (q6), summarize_analyses (analysis), plot_tuning
    (tuning) and the theory questions (name → outputs); None leaves a section out. Every setting the text names
    comes from the results files, so the report cannot contradict what the jobs ran with."""
    outputs = load_outputs(q6)
    numbers = outputs["numbers"]
    if "rows" not in numbers:
        raise ValueError(f"none of {list(map(str, q6))} is the Q6 numbers JSON (with 'rows')")
    context = {
        "title": title,
        "theory": {name: load_outputs(paths) for name, paths in theory.items()},
        "q6": {**numbers, "figures": outputs["figures"], "data": describe_data(data),
               "backbone": backbone_info(backbone, backbone_summary, backbone_curves),
               "gallery": {"variant": numbers["focus"], "seed": numbers["seed"]}},
        "analysis": load_outputs(analysis) if analysis else None,
        "tuning": load_outputs(tuning) if tuning and numbers.get("tuning") else None,
        "provenance": provenance(config_changes, repo_dir, devices=numbers.get("devices")),
        "stylesheet": Path(template).with_name("report.css").read_text(),
    }
    render(template, out_html, context)
