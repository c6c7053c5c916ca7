"""report/report.html from the results files; report/report.pdf from the HTML."""

from __future__ import annotations

from pathlib import Path

from ..io import read_json
from .q6 import describe_backbone
from .render import data_uri, load_outputs, provenance, render


def write_report(out_html, template, *, q6: list, theory: dict, backbone: dict, data: dict, config: dict,
                 title: str, gallery: dict | None = None, backbone_summary=None, backbone_curves=None,
                 repo_dir=".") -> None:
    """q6: the outputs of rule plot_q6 (figures, the variant table, numbers.json);
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
            "backbone": q6_backbone(backbone, backbone_summary, backbone_curves),
            "data": data,
            "defaults": config["training"],
            "gallery": gallery,
        },
        "provenance": provenance(config, repo_dir, devices=numbers.get("devices")),
        "stylesheet": Path(template).with_name("report.css").read_text(),
    }
    render(template, out_html, context)


def q6_backbone(backbone: dict, summary_path=None, curves_path=None) -> dict:
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
