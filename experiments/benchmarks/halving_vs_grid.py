"""Successive halving against the exhaustive grid on the head variants: does the budget-aware
search choose as well, and how much compute does it save?

    .venv/bin/python experiments/benchmarks/halving_vs_grid.py --configfile config.yaml [configs/tuning-cpu.yaml ...] \
        --backbone results/backbone/<source>.pt --features results/features/<norm>/train.npz \
        --split results/data/cifar10/validation_5000.npz [--variants head head_fc256_l2] \
        [--out ../halving-vs-grid] [--device cpu] [--json result.json]

For each variant it runs the variant's search twice with the code the workflow's tuning jobs run
(`tuning.trials.search`, the trials of `tuning_trial`, the choice of `tuning_choice`): once as configured
with `method: halving`, once with `method: grid` (every configuration for every epoch), same space,
same seed. A trial continued by halving is the same run as the grid's trial of that configuration
(tests/test_tuning.py), so halving's choice is scored by the grid's number for it. The criterion:
the validation accuracy of halving's choice is within 0.3 points of the grid's best, at most a third
of its trial epochs. Only the training features and the validation split are read (no test set).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))

from cmpt726.tuning import plan as tuning, trials as search  # noqa: E402
from cmpt726.config import _merge, resolve_variant, uses_cached_features, validate_config  # noqa: E402

MARGIN = 0.3      # points
COMPUTE = 1 / 3   # of the grid's trial epochs


def load_config(paths) -> dict:
    """The config files merged key by key, in order, as Snakemake merges --configfile overlays."""
    config = {}
    for path in paths:
        _merge(config, yaml.safe_load(Path(path).read_text()) or {})
    validate_config(config)
    return config


def compare(config: dict, name: str, backbone, features, split, out: Path, device: str) -> dict:
    runs = {}
    for method in ("halving", "grid"):
        variant_config = copy.deepcopy(config)
        variant_config["tuning"]["method"] = method
        plan = tuning.plan_for(variant_config, name)
        runs[method] = search.search(backbone, features, split, out / method / name, plan, device=device)
    grid_trials = {r["config_index"]: r for r in (json.loads(p.read_text())
                                                  for p in sorted((out / "grid" / name / "rung0").glob("trial*.json")))}
    halving, grid = runs["halving"], runs["grid"]
    halving_scored = grid_trials[halving["config_index"]]["val_acc"]
    row = {
        "variant": name,
        "halving_choice": halving["config"], "grid_choice": grid["config"],
        "same_choice": halving["config_index"] == grid["config_index"],
        "halving_val_acc": halving["val_acc"], "grid_val_acc": grid["val_acc"],
        "halving_choice_in_grid": halving_scored,
        "shortfall": grid["val_acc"] - halving_scored,
        "halving_trial_epochs": halving["trial_epochs"], "grid_trial_epochs": grid["trial_epochs"],
        "compute_ratio": halving["trial_epochs"] / grid["trial_epochs"],
        "halving_seconds": halving["trial_seconds"], "grid_seconds": grid["trial_seconds"],
        "rungs": halving["rungs"],
    }
    row["passes"] = row["shortfall"] <= MARGIN and row["compute_ratio"] <= COMPUTE
    return row


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="+", default=[str(REPO / "config.yaml")],
                        help="config.yaml, then overlays (merged in order)")
    parser.add_argument("--backbone", required=True, help="the backbone the features were computed with")
    parser.add_argument("--features", required=True, help="cached training features of the heads' normalisation")
    parser.add_argument("--split", required=True, help="the validation split (.npz of split_cifar10)")
    parser.add_argument("--variants", nargs="*", help="head variants to compare (default: every tuned head variant)")
    parser.add_argument("--out", default="halving-vs-grid", help="folder for the trials of both searches")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    config = load_config(args.configfile)
    config["tuning"]["enabled"] = True
    heads = [name for name in tuning.tuned_variants(config).values()
             if uses_cached_features(resolve_variant(config, name))]
    names = args.variants or heads
    for name in names:
        if name not in heads:
            parser.error(f"{name} is not a tuned head variant on cached features ({', '.join(heads)})")
    rows = [compare(config, name, args.backbone, args.features, args.split, Path(args.out), args.device) for name in names]
    for r in rows:
        print(f"{r['variant']}: halving {r['halving_choice']} ({r['halving_choice_in_grid']:.2f} %), grid "
              f"{r['grid_choice']} ({r['grid_val_acc']:.2f} %), shortfall {r['shortfall']:.2f} points, "
              f"{r['halving_trial_epochs']}/{r['grid_trial_epochs']} trial epochs ({r['compute_ratio']:.0%}), "
              f"{'passes' if r['passes'] else 'FAILS'}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    return rows


if __name__ == "__main__":
    main()
