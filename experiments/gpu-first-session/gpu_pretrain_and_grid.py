#!/usr/bin/env python
"""Pretrain the backbone with the full upstream recipe, then run the fine-tuning grid — no Snakemake.

Same functions as the workflow's rules (prepare_cifar10, prepare_cifar100, pretrain,
extract_features, train_variant, evaluate_variant), settings from config.yaml
(backbone.pretrain, training, variants via cmpt726.config.resolve_variant), so its
numbers are the workflow's. Needs Python ≥ 3.10 with torch, torchvision, numpy, pillow, pyyaml.

    python experiments/gpu-first-session/gpu_pretrain_and_grid.py --cifar10-root DIR --cifar100-imagefolder DIR --out OUT
    #   DIR (CIFAR-10) holds cifar-10-batches-py/; the ImageFolder holds train/<class>/*, test/<class>/*
    #   (or --cifar100-root DIR holding cifar-100-python/). ../shared/data/restore.py writes both.

Prints per-stage times, the device and the accuracy table (ours beside the 2019 script's) as
markdown; writes OUT/results.json and OUT/table.md. Reruns with the same OUT skip finished
stages (prepared data, backbone, finished variants) and resume an interrupted pretraining
from its last epoch, so pretraining (--skip-grid) and the grid can run as two calls. Flags
shorten it: --pretrain-epochs, --finetune-epochs, --variants, --train-subset; --backbone PTH
skips pretraining.
"""

from __future__ import annotations

import argparse
import copy
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))

import torch  # noqa: E402
import yaml  # noqa: E402

from cmpt726 import cifar100  # noqa: E402
from cmpt726.config import normalization_key, resolve_variant, uses_cached_features  # noqa: E402
from cmpt726.data import prepare_cifar10  # noqa: E402
from cmpt726.evaluation import evaluate_variant  # noqa: E402
from cmpt726.io import read_json, write_json, write_text  # noqa: E402
from cmpt726.pretrain import pretrain  # noqa: E402
from cmpt726.features import extract_features  # noqa: E402
from cmpt726.finetune import train_variant  # noqa: E402
from cmpt726.runtime import device_name, resolve_device  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--cifar10-root", required=True, help="folder holding cifar-10-batches-py/")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--cifar100-imagefolder", help="folder with train/<class>/* and test/<class>/*")
    src.add_argument("--cifar100-root", help="folder holding cifar-100-python/")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--config", default=str(REPO / "config.yaml"), help="settings (default: the repo's config.yaml)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--backbone", help="use this state_dict instead of pretraining")
    ap.add_argument("--pretrain-epochs", type=int, help="override backbone.pretrain.epochs (default: config, 200)")
    ap.add_argument("--pretrain-schedule", choices=["step", "onecycle"])
    ap.add_argument("--pretrain-bf16", action="store_true", help="bf16 autocast for pretraining (CUDA)")
    ap.add_argument("--finetune-epochs", type=int, help="override training.epochs of every variant")
    ap.add_argument("--finetune-bf16", action="store_true", help="bf16 autocast for fine-tuning (CUDA)")
    ap.add_argument("--variants", nargs="+", help="a subset of the config's variants")
    ap.add_argument("--train-subset", type=int, help="first N CIFAR-10 training images (default: all)")
    ap.add_argument("--no-verify", action="store_true", help="skip the md5 checks of the pickle files")
    ap.add_argument("--skip-grid", action="store_true", help="stop after pretraining (CIFAR-10 is not read)")
    return ap.parse_args(argv)


class Stages:
    """Times each stage and prints it as it ends."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def run(self, name, fn, *args, **kwargs):
        tic = time.perf_counter()
        result = fn(*args, **kwargs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds[name] = time.perf_counter() - tic
        print(f"[{name}] {self.seconds[name]:.1f} s", flush=True)
        return result


def table(rows, reference, pretrain_summary) -> str:
    lines = ["| variant | ours (%) | 2019 script's (%) | difference | train s |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        ref = reference.get(r["variant"])
        diff = f"{r['accuracy'] - ref:+.2f}" if ref is not None else ""
        ref_s = f"{ref:.2f}" if ref is not None else ""
        lines.append(f"| {r['variant']} | {r['accuracy']:.2f} | {ref_s} | {diff} | {r['train_seconds']:.1f} |")
    if pretrain_summary:
        p = pretrain_summary
        lines += ["", f"Backbone: CIFAR-100 top-1 {p['final_top1']:.2f}% after {p['epochs']} epochs "
                      f"({p['schedule']}), published {p['published_top1']}%; "
                      f"{p['train_seconds']:.0f} s of pretraining."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load(Path(args.config).read_text())
    device = resolve_device(args.device)
    stages = Stages()
    print(f"device: {device_name(device)}; torch {torch.__version__}; python {platform.python_version()}", flush=True)
    torch.backends.cudnn.benchmark = True

    # ---- data (both datasets), once per OUT
    d10, d100 = out / "data" / "cifar10", out / "data" / "cifar100"
    verify = not args.no_verify
    if not args.skip_grid and not (d10 / "summary.json").exists():
        stages.run("prepare_cifar10", prepare_cifar10, Path(args.cifar10_root) / "cifar-10-batches-py",
                   d10 / "train.npz", d10 / "test.npz", d10 / "summary.json", verify=verify,
                   subset_train=args.train_subset)
    if not args.backbone and not (d100 / "summary.json").exists():
        kind, source = (("imagefolder", args.cifar100_imagefolder) if args.cifar100_imagefolder
                        else ("pickle", str(Path(args.cifar100_root) / cifar100.BATCH_DIR)))
        stages.run("prepare_cifar100", cifar100.prepare_cifar100, source, kind, d100 / "train.npz",
                   d100 / "test.npz", d100 / "summary.json", verify=verify)

    # ---- backbone
    pre_cfg = copy.deepcopy(config["backbone"]["pretrain"])
    if args.pretrain_epochs:
        pre_cfg["epochs"] = args.pretrain_epochs
    if args.pretrain_schedule:
        pre_cfg["schedule"] = args.pretrain_schedule
    pre_cfg["bf16"] = pre_cfg["bf16"] or args.pretrain_bf16
    backbone, pre_summary = out / "backbone" / "pretrain.pt", None
    if args.backbone:
        backbone = Path(args.backbone)
    elif not backbone.exists():
        pre_summary = stages.run("pretrain", pretrain, d100 / "train.npz", d100 / "test.npz", backbone,
                                 out / "backbone" / "pretrain_epochs.tsv", out / "backbone" / "pretrain_summary.json",
                                 pre_cfg, device=args.device, resume_path=out / "backbone" / "pretrain.resume.pt")
    if pre_summary is None and (out / "backbone" / "pretrain_summary.json").exists() and not args.backbone:
        pre_summary = read_json(out / "backbone" / "pretrain_summary.json")

    # ---- the grid: cached features once per normalisation, then every variant
    names = [] if args.skip_grid else (args.variants or list(config["variants"]))
    rows = []
    for name in names:
        settings = resolve_variant(config, name)
        if args.finetune_epochs:
            settings["epochs"] = args.finetune_epochs
        settings["bf16"] = settings["bf16"] or args.finetune_bf16
        split_paths = {}
        for split in ("train", "test"):
            if uses_cached_features(settings):
                feats = out / "features" / normalization_key(settings["normalize"]) / f"{split}.npz"
                if not feats.exists():
                    stages.run(f"features/{split}", extract_features, backbone, d10 / f"{split}.npz", feats,
                               settings["normalize"], args.device)
                split_paths[split] = feats
            else:
                split_paths[split] = d10 / f"{split}.npz"
        vdir = out / "variants" / name
        metrics_path = vdir / "metrics.json"
        if not metrics_path.exists():
            stages.run(f"train/{name}", train_variant, backbone, split_paths["train"], split_paths["test"],
                       vdir / "model.pt", vdir / "epochs.tsv", settings=settings, seed=config["seeds"][0],
                       device=args.device, resume_path=vdir / "resume.pt")
            stages.run(f"evaluate/{name}", evaluate_variant, vdir / "model.pt", split_paths["test"],
                       vdir / "scores.tsv", metrics_path, normalize=settings["normalize"], device=args.device)
        seconds = sum(float(line.split("\t")[-1]) for line in (vdir / "epochs.tsv").read_text().splitlines()[1:])
        rows.append({"variant": name, "accuracy": read_json(metrics_path)["accuracy"], "train_seconds": seconds,
                     "settings": settings})

    md = table(rows, config.get("reference_accuracy", {}), pre_summary)
    print("\n" + md, flush=True)
    result = {"device": device_name(device), "torch": torch.__version__, "python": platform.python_version(),
              "argv": sys.argv[1:] if argv is None else argv, "stage_seconds": stages.seconds,
              "pretrain": pre_summary, "variants": rows, "reference_accuracy": config.get("reference_accuracy", {})}
    write_json(out / "results.json", result)
    write_text(out / "table.md", md)
    return result


if __name__ == "__main__":
    main()
