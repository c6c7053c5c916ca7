"""The linear-probe anchor of the tuned heads: multinomial logistic regression (L-BFGS) on the frozen backbone's cached
features, its L2 strength C chosen on the validation split — the best linear head, a solved problem.

    .venv/bin/python experiments/benchmarks/linear_probe.py \
        --features results/features/<norm>/train.npz --test-features results/features/<norm>/test.npz \
        --split results/data/cifar10/validation_5000.npz [--C 1e-4 1e-3 ...] [--json results/tuning/linear_probe.json] \
        [--heads results/metrics/head-tuned/seed?.json ...]

The same inputs as the head variants: the features `cache_features` wrote (the normalisation's folder), the
validation split `split_cifar10` wrote. Each C is fitted on the training part of the split (features
standardised with the training part's mean and sd: the same linear functions as raw features, better
conditioned for L-BFGS) and scored on the validation part; the best (ties: the smaller C, the stronger
penalty) is scored once on the test features. With --heads, each head's test accuracy (the `accuracy` of
an evaluate_variant metrics JSON, in %) is set against the probe's: every tuned head should reach at
least the probe's minus 0.3 points.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_C = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0]
MARGIN = 0.3  # points a tuned head may fall short of the probe


def load_features(path):
    with np.load(path) as f:
        return f["features"].astype(np.float64), f["labels"].astype(np.int64)


def probe(train_features, split, test_features=None, grid=DEFAULT_C, max_iter: int = 2000) -> dict:
    """Fit one L-BFGS logistic regression per C on the training part, choose C on the validation part,
    score the chosen one on the test features (when given). Accuracies in %."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = load_features(train_features)
    with np.load(split) as s:
        train_idx, val_idx = s["train"], s["val"]
    scaler = StandardScaler().fit(x[train_idx])
    x_train, x_val = scaler.transform(x[train_idx]), scaler.transform(x[val_idx])
    trials, models = [], {}
    for c in sorted(grid):
        tic = time.perf_counter()
        model = LogisticRegression(C=c, solver="lbfgs", max_iter=max_iter).fit(x_train, y[train_idx])
        trials.append({"C": c, "val_acc": 100.0 * model.score(x_val, y[val_idx]),
                       "train_acc": 100.0 * model.score(x_train, y[train_idx]),
                       "iterations": int(np.max(model.n_iter_)), "converged": bool(np.max(model.n_iter_) < max_iter),
                       "seconds": time.perf_counter() - tic})
        models[c] = model
    best = max(trials, key=lambda t: (t["val_acc"], -t["C"]))  # ties: the smaller C (stronger penalty)
    result = {"C": best["C"], "val_acc": best["val_acc"], "trials": trials,
              "images": {"train": int(len(train_idx)), "validation": int(len(val_idx))},
              "chosen_at_grid_edge": best["C"] in (min(grid), max(grid)),
              "inputs": {"features": str(train_features), "split": str(split)}}
    if test_features is not None:
        x_test, y_test = load_features(test_features)
        result["test_acc"] = 100.0 * models[best["C"]].score(scaler.transform(x_test), y_test)
        result["images"]["test"] = int(len(y_test))
        result["inputs"]["test_features"] = str(test_features)
    return result


def compare_heads(result: dict, metrics_paths) -> list[dict]:
    """Each head's test accuracy against the probe's (needs the probe's test accuracy)."""
    rows = []
    for path in metrics_paths:
        metrics = json.loads(Path(path).read_text())
        if "accuracy" not in metrics:  # e.g. seed0.train.json, caught by a seed?.json glob
            raise SystemExit(f"{path}: not an evaluate_variant metrics JSON (no 'accuracy'); give results/metrics/<v>/seed?.json")
        acc = metrics["accuracy"]  # %
        rows.append({"metrics": str(path), "test_acc": acc, "minus_probe": acc - result["test_acc"],
                     "at_least_probe_minus_margin": acc >= result["test_acc"] - MARGIN})
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", required=True, help="cached training features (.npz of cache_features)")
    parser.add_argument("--split", required=True, help="validation split (.npz of split_cifar10)")
    parser.add_argument("--test-features", help="cached test features: score the chosen C once")
    parser.add_argument("--C", type=float, nargs="+", default=DEFAULT_C, help="inverse L2 strengths tried")
    parser.add_argument("--max-iter", type=int, default=2000)
    parser.add_argument("--heads", nargs="*", default=[], help="evaluate_variant metrics JSONs to set against it")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    if args.heads and not args.test_features:
        parser.error("--heads needs --test-features (they are compared on the test set)")
    result = probe(args.features, args.split, args.test_features, args.C, args.max_iter)
    if args.heads:
        result["heads"] = compare_heads(result, args.heads)
    for t in result["trials"]:
        print(f"C {t['C']:<8g} validation {t['val_acc']:6.2f} %  train {t['train_acc']:6.2f} %  "
              f"{t['iterations']} iterations{'' if t['converged'] else ' (not converged)'}  {t['seconds']:.1f} s")
    test = f", test {result['test_acc']:.2f} %" if "test_acc" in result else ""
    print(f"chosen C {result['C']:g}: validation {result['val_acc']:.2f} %{test}"
          + (" (at the edge of the grid: widen it)" if result["chosen_at_grid_edge"] else ""))
    for row in result.get("heads", []):
        print(f"{row['metrics']}: {row['test_acc']:.2f} % ({row['minus_probe']:+.2f} against the probe)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
