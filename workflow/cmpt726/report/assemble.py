"""report/report.html from the results files; report/report.pdf from the HTML."""

from __future__ import annotations

from pathlib import Path

from ..files import read_json
from .compare_variants import backbone_info, describe_data
from .render import load_outputs, provenance, render


def write_report(spec: dict, paths: dict, repo_dir=None) -> None:
    """report.html from the outputs of rules compare_variants, summarize_analyses, plot_tuning and the theory
    questions. Every setting the text names comes from those files, so the report cannot contradict what the
    jobs ran with.

    spec: `title`, `backbone` (the config's slice), `theory` (the questions), `config_changes` (keys that differ
    from the shipped config.yaml). paths (rule report_html's): `html` (out), `template`, `q6`, `data`,
    `theory_<question>` for each question; `analysis`, `tuning` (empty or absent: the section left out),
    `backbone` and `backbone_curves` (a pretrained backbone's summary and curves) where there are some."""
    outputs = load_outputs(paths["q6"])
    numbers = outputs["numbers"]
    if "rows" not in numbers:
        raise ValueError(f"none of {list(map(str, paths['q6']))} is the Q6 numbers JSON (with 'rows')")
    context = {
        "title": spec["title"],
        "theory": {name: load_outputs(paths[f"theory_{name}"]) for name in spec["theory"]},
        "q6": {**numbers, "figures": outputs["figures"], "data": describe_data(read_json(paths["data"])),
               "backbone": backbone_info(spec["backbone"], paths.get("backbone"), paths.get("backbone_curves")),
               "gallery": {"variant": numbers["focus"], "seed": numbers["seed"]}},
        "analysis": load_outputs(paths["analysis"]) if paths.get("analysis") else None,
        "tuning": load_outputs(paths["tuning"]) if paths.get("tuning") and numbers.get("tuning") else None,
        "provenance": provenance(spec.get("config_changes"), repo_dir, devices=numbers.get("devices")),
        "stylesheet": Path(paths["template"]).with_name("report.css").read_text(),
    }
    render(paths["template"], paths["html"], context)
