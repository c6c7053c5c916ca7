"""The tuned twins of one or more run folders, compared with the report's own statistics, when the runs
have no fixed variants to set beside them (experiments/gpu-both-settings/gpu_tuned_full_network.sh trains only the twins of
the six full-network variants; the heads' twins can come from another run on the same backbone). Prints markdown: per twin its search's choice, validation accuracy and
convergence, its test accuracy with interval (`stats.accuracy_summary`), the discussion's questions asked
of the twins (`report.comparisons` mapped to `<v>-tuned`, one Holm family: `stats.answer_questions`) and
the verdict among them (`stats.verdict`).

    .venv/bin/python experiments/gpu-both-settings/tuned_twins.py ../exp-gpu ../exp-gpu-heads --configfile config.yaml
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml

from cmpt726 import stats
from cmpt726.config import schema_default
from cmpt726.compare_runs import TEST_IMAGES
from cmpt726.data import load_arrays
from cmpt726.evaluation import read_score_set
from cmpt726.text import signed  # the report's "+1.23", never "-0.00"
from cmpt726.tuning.choice import TWIN_SUFFIX


def twin_runs(results: Path) -> dict[str, list[Path]]:
    """twin → its score files (seed order), for every `<v>-tuned` folder of results/scores."""
    return {d.name: sorted(d.glob("seed*.tsv")) for d in sorted((results / "scores").glob(f"*{TWIN_SUFFIX}"))
            if list(d.glob("seed*.tsv"))}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="experiment folders (each holds results/), one backbone")
    parser.add_argument("--configfile", type=Path, default=Path("config.yaml"),
                        help="where report.comparisons, alpha and smallest_effect come from")
    args = parser.parse_args(argv)
    report = yaml.safe_load(args.configfile.read_text()).get("report", {})
    alpha, delta, comparisons, replicates = (report.get(key, schema_default(f"report.{key}"))
                                             for key in ("alpha", "smallest_effect", "comparisons",
                                                         "bootstrap_replicates"))
    runs, results_of = {}, {}
    for folder in args.runs:  # a twin found in several folders: the first folder's runs
        for twin, paths in twin_runs(folder / "results").items():
            if twin not in runs:
                runs[twin], results_of[twin] = paths, folder / "results"
    # Every file checked against the test set as the report checks it (one row per image, its labels), the test
    # set of the first folder that holds one (a run whose data folder stayed behind, as on the GPU, holds none).
    test_set = next((folder / TEST_IMAGES for folder in args.runs if (folder / TEST_IMAGES).is_file()), None)
    if test_set is None:
        parser.error(f"none of the folders holds the test set ({TEST_IMAGES}) to check the score files against")
    labels = load_arrays(test_set)[1]
    correct = {t: np.stack([r["pred"] == labels for r in read_score_set(paths, labels, test_set=str(test_set))])
               for t, paths in runs.items()}
    summary = stats.accuracy_summary(correct, replicates=replicates)
    pairs = stats.pairwise_comparisons(correct, order=list(correct), alpha=alpha, smallest_effect=delta)

    print("| twin | chosen | validation (%) | kept epoch | val. rise, last fifth | seeds | test (%) | 95 % interval |")
    print("|---|---|---:|---|---:|---:|---:|---|")
    for twin, s in sorted(summary.items(), key=lambda kv: -kv[1]["mean"]):
        search = json.loads((results_of[twin] / "tuning" / twin[:-len(TWIN_SUFFIX)] / "search.json").read_text())
        chosen = ", ".join(f"{k} {v:g}" for k, v in search["config"].items())
        spread = f" ± {s['std']:.2f}" if s["std"] is not None else ""
        rise = search["converged"]["last_fifth_rise"]  # None for a one-epoch search
        rise = "–" if rise is None else f"{rise:+.2f}"
        print(f"| {twin} | {chosen} | {search['val_acc']:.2f} | {search['kept_epoch']} of {search['epochs']} | "
              f"{rise} | {s['seeds']} | {s['mean']:.2f}{spread} | "
              f"[{s['ci_low']:.2f}, {s['ci_high']:.2f}] |")

    asked = [{**q, "a": q["a"] + TWIN_SUFFIX, "b": q["b"] + TWIN_SUFFIX} for q in comparisons
             if q["a"] + TWIN_SUFFIX in correct and q["b"] + TWIN_SUFFIX in correct]
    if asked:
        print("\n| question (A − B) | A − B (points) | 95 % interval | test | answer |")
        print("|---|---:|---|---|---|")
        for q in stats.answer_questions(pairs, asked):
            print(f"| {q['asks']} ({q['a']} − {q['b']}) | {signed(q['diff_points'])} | "
                  f"[{signed(q['ci_low'])}, {signed(q['ci_high'])}] | {q['test']} | {q['answer']} |")
    v = stats.verdict(summary, pairs)
    print(f"\nverdict: top {v['top']}, best {v['best']}, tied with the top: {', '.join(v['tied_with_top'])}"
          f" (largest gap they could have: {v['max_gap_points']} points)")


if __name__ == "__main__":
    main()
