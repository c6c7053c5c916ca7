"""report/report.html from the results files; report/report.pdf from the HTML."""

from pathlib import Path

from ..files import read_json
from .compare_variants import backbone_info, describe_data
from .render import load_outputs, provenance, render


def write_report(spec: dict, paths: dict, repo_dir=None) -> None:
    """report.html from the results files only, so the report cannot contradict what the jobs ran with."""
    outputs = load_outputs(paths["q6"])
    numbers = outputs["numbers"]
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
