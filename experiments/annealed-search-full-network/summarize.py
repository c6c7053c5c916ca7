"""The annealed search's pick against the exhaustive grid, from a finished run of overlay.yaml.

    .venv/bin/python experiments/annealed-search-full-network/summarize.py [RUN_FOLDER]

Per variant: every lr of the space trained in full as a grid variant (`<variant>_lr<x>`) with its validation
accuracy (kept epoch) and test accuracy, the search's choice and its tuned twin's test accuracy, and the gap
between the pick and the grid's best test accuracy (points).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def main(run: Path) -> None:
    overlay = yaml.safe_load((HERE / "overlay.yaml").read_text())
    for variant in overlay["tuning"]["variants"]:
        search = json.loads((run / f"results/tuning/{variant}/search.json").read_text())
        rows = []
        for lr in overlay["tuning"]["space"]["lr"]:
            name = f"{variant}_lr{str(lr).replace('.', '_')}"
            test = json.loads((run / f"results/metrics/{name}/seed0.json").read_text())["accuracy"]
            train = json.loads((run / f"results/metrics/{name}/seed0.train.json").read_text())
            rows.append((lr, train["kept_val_acc"], test))
        twin = json.loads((run / f"results/metrics/{variant}-tuned/seed0.json").read_text())["accuracy"]
        best = max(rows, key=lambda r: r[2])
        by_val = max(rows, key=lambda r: r[1])
        print(f"\n{variant}: search chose lr {search['config']['lr']} ({search['trial_epochs']} trial epochs, "
              f"the grid {search['grid_epochs']}); its twin's test accuracy {twin:.2f} %")
        print("| lr | validation (%) | test (%) |\n|---:|---:|---:|")
        for lr, val, test in rows:
            mark = " (search)" if lr == search["config"]["lr"] else ""
            print(f"| {lr}{mark} | {val:.2f} | {test:.2f} |")
        print(f"grid's best test: lr {best[0]} {best[2]:.2f} %; grid's validation pick: lr {by_val[0]} "
              f"({by_val[2]:.2f} % test); search's pick − grid's best test: {twin - best[2]:+.2f} points")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."))
