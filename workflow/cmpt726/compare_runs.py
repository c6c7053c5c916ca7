"""Experiments side by side: several finished runs of the workflow, one folder each, on one page.

    python -m cmpt726.compare_runs ../exp1 ../exp2 [--names assignment tuned] -o comparison.html [--pdf comparison.pdf]

The page shows the settings that differ, each (experiment, variant)'s accuracy with its interval, and a paired
test of every variant two experiments share (Holm over every test on the page). A run that cannot be compared is
refused, naming the folder, and nothing is written.
"""

import argparse
import base64
import binascii
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from . import stats
from .data import load_arrays
from .evaluation import read_scores
from .files import read_json

NUMBERS = "results/figures/q6/numbers.json"
TEST_IMAGES = "results/data/cifar10/test.npz"
DATA_SUMMARY = "results/data/cifar10/summary.json"
SCORES = "results/scores/{variant}/seed{seed}.tsv"
TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "compare.html.j2"


class CompareError(ValueError):
    """A run that cannot be compared (the message names its folder and file)."""


def _unfinished(folder: Path, why: str) -> CompareError:
    return CompareError(f"{folder}: {why}; finish the run first (snakemake --cores all --directory {folder})")


def _incomplete_outputs(folder: Path) -> list[str]:
    """Outputs Snakemake marks as being written (a job running now, or one killed before it finished)."""
    marks = folder / ".snakemake" / "incomplete"
    names = []
    for mark in sorted(marks.iterdir()) if marks.is_dir() else []:
        try:  # each marker's name is its output's path, urlsafe base64
            names.append(base64.urlsafe_b64decode(mark.name).decode())
        except (binascii.Error, UnicodeDecodeError):
            names.append(mark.name)
    return names


def images_digest(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 of the test images and labels as arrays (the .npz file's own bytes carry zip dates)."""
    digest = hashlib.sha256()
    for array in (images, labels):
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def load_run(folder, name: str) -> dict:
    """One finished run: its numbers.json, data summary, test-set digest and per-variant correctness."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CompareError(f"{folder}: no such experiment folder")
    incomplete = _incomplete_outputs(folder)
    if incomplete:
        raise _unfinished(folder, f"Snakemake marks {len(incomplete)} output(s) as incomplete ({incomplete[0]}"
                          f"{', …' if len(incomplete) > 1 else ''}): the run is still going or was interrupted")
    for relative in (NUMBERS, TEST_IMAGES, DATA_SUMMARY):
        if not (folder / relative).is_file():
            raise _unfinished(folder, f"{relative} is missing")
    numbers = read_json(folder / NUMBERS)
    if "variant_settings" not in numbers or "smallest_effect" not in numbers:
        raise CompareError(f"{folder / NUMBERS} has no resolved settings (written by an older workflow); rerun "
                           f"snakemake --cores all --directory {folder} (only the Q6 numbers and the report rerun)")
    images, labels, classes = load_arrays(folder / TEST_IMAGES)
    written = (folder / NUMBERS).stat().st_mtime
    correct = {}
    for row in numbers["rows"]:
        seeds = []
        for seed in row["seed_list"]:
            path = folder / SCORES.format(variant=row["name"], seed=seed)
            if not path.is_file():
                raise _unfinished(folder, f"{path.relative_to(folder)} is missing")
            if path.stat().st_mtime > written:
                raise _unfinished(folder, f"{path.relative_to(folder)} is newer than {NUMBERS}")
            scores = read_scores(path, expected_rows=len(labels))
            if not np.array_equal(scores["label"], labels):
                raise CompareError(f"{path}: its labels differ from {folder / TEST_IMAGES}; rerun the workflow there")
            seeds.append(scores["pred"] == labels)
        correct[row["name"]] = np.stack(seeds)
    return {"name": name, "folder": folder, "numbers": numbers, "data": read_json(folder / DATA_SUMMARY),
            "test_digest": images_digest(images, labels), "n_test": int(len(labels)), "classes": classes,
            "correct": correct}


def check_same_test_set(runs: list[dict]) -> None:
    first = runs[0]
    for run in runs[1:]:
        if run["test_digest"] != first["test_digest"]:
            raise CompareError(
                f"{run['folder']} was scored on other test images than {first['folder']} ({run['n_test']:,} vs "
                f"{first['n_test']:,} images, test-set sha256 {run['test_digest'][:12]} vs {first['test_digest'][:12]}"
                f", from {TEST_IMAGES}): paired tests need the same images (check data.subset.test)")


def flatten(settings: dict, prefix: str = "") -> dict:
    """{"head": {"hidden": []}} → {"head.hidden": []}: one row per leaf setting."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def show(value) -> str:
    """A setting as config.yaml writes it (absent: an en dash)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def variant_settings(run: dict) -> dict:
    """variant → its flat resolved settings, with the seeds it ran (not a training setting, but it differs)."""
    seeds = {row["name"]: row["seed_list"] for row in run["numbers"]["rows"]}
    return {name: {**flatten(s), "seeds": ", ".join(map(str, seeds[name]))}
            for name, s in run["numbers"]["variant_settings"].items()}


def global_facts(run: dict) -> dict:
    """What holds for the whole run: data, backbone, seeds, statistics, devices."""
    numbers, data = run["numbers"], run["data"]
    backbone = numbers.get("backbone_file")
    subset = data.get("subset") or {}
    return {
        "test images": f"{run['n_test']:,} (sha256 {run['test_digest'][:12]})",
        "training images": f"{data['train']['images']:,}",
        "data subset": ", ".join(f"{k} {subset[k]:,}" for k in ("train", "test") if subset.get(k)) or "none",
        "backbone weights": "not recorded" if backbone is None
        else f"{backbone['name']} (sha256 of the weights {backbone['sha256'][:12]})",
        "variants": str(len(numbers["rows"])),
        "seeds": ", ".join(map(str, numbers["seeds"])),
        "alpha (report)": show(float(numbers["alpha"])),
        "bootstrap replicates (report)": f"{numbers['replicates']:,}",
        "devices": "; ".join(numbers["devices"]),
    }


def settings_differences(runs: list[dict]) -> dict:
    """The settings that differ between the experiments: run-wide, the same in every shared variant, per variant."""
    names = [r["name"] for r in runs]
    facts = [global_facts(r) for r in runs]
    global_rows = [{"key": key, "cells": [f[key] for f in facts],
                    "differs": len({f[key] for f in facts}) > 1} for key in facts[0]]
    per_run = [variant_settings(r) for r in runs]
    variants = list(dict.fromkeys(v for s in per_run for v in s))
    shared = [v for v in variants if all(v in s for s in per_run)]

    def values(variant, key):
        return [show(s[variant].get(key)) if variant in s else None for s in per_run]

    keys = list(dict.fromkeys(k for s in per_run for v in s.values() for k in v))
    common = []
    if shared:
        for key in keys:
            seen = {tuple(values(v, key)) for v in shared}
            if len(seen) == 1 and len(set(next(iter(seen)))) > 1:
                common.append({"key": key, "cells": list(next(iter(seen)))})
    lifted = {c["key"] for c in common}
    common = [c for c in common if c["key"] != "seeds"]  # the run-wide seeds row says it already
    per_variant = []
    for variant in variants:
        present = [s for s in per_run if variant in s]
        if len(present) < 2:
            continue
        rows = [{"key": key, "cells": ["–" if v is None else v for v in values(variant, key)]}
                for key in keys if key not in lifted
                and len({show(s[variant].get(key)) for s in present}) > 1]
        if rows:
            per_variant.append({"variant": variant, "rows": rows})
    only_in = [{"variant": v, "in": [n for n, s in zip(names, per_run) if v in s]}
               for v in variants if v not in shared]
    return {"global": global_rows, "common": common, "per_variant": per_variant, "only_in": only_in,
            "shared": shared, "variants": variants,
            "same_variants": [v for v in shared if v not in {p["variant"] for p in per_variant}]}


def accuracy_rows(runs: list[dict], variants: list[str]) -> list[dict]:
    """Per variant, per experiment that runs it: the accuracy and 95 % interval of that run's own report."""
    out = []
    for variant in variants:
        entries = []
        for run in runs:
            row = next((r for r in run["numbers"]["rows"] if r["name"] == variant), None)
            if row is not None:
                entries.append({"experiment": run["name"], "seeds": row["seeds"], "accuracy": row["accuracy"],
                                "std": row["accuracy_std"], "ci_low": row["ci_low"], "ci_high": row["ci_high"],
                                "interval_method": row["interval_method"]})
        out.append({"variant": variant, "entries": entries})
    return out


def paired_tests(runs: list[dict], alpha: float, smallest_effect: float) -> dict:
    """Every variant two experiments share, compared between them (later − earlier; Holm over the page)."""
    variants = list(dict.fromkeys(v for run in runs for v in run["correct"]))
    shared = [v for v in variants if sum(v in run["correct"] for run in runs) >= 2]
    if not shared:
        return {"tests": [], "alpha": alpha}
    tests = []
    for variant in shared:
        having = [run for run in runs if variant in run["correct"]][::-1]  # later first
        family = stats.pairwise_comparisons({run["name"]: run["correct"][variant] for run in having}, alpha=alpha,
                                            smallest_effect=smallest_effect)
        tests += [{"variant": variant, **record} for record in family["pairs"]]
    for record, adjusted in zip(tests, stats.holm([t["p"] for t in tests])):
        record["p_adjusted"] = adjusted
        record["significant"] = bool(adjusted < alpha)
    return {"tests": tests, "alpha": alpha}


def shared_setting(runs: list[dict], key: str, option: str) -> float:
    """A report setting the page's tests take over (alpha, smallest_effect): the runs must agree, or use `option`."""
    values = {float(r["numbers"][key]) for r in runs}
    if len(values) > 1:
        raise CompareError(f"the runs' reports use different {key} values ({sorted(values)}); choose one with {option}")
    return values.pop()


def comparison_context(folders, names=None, alpha: float | None = None, *, smallest_effect: float | None = None,
                       out_html=None) -> dict:
    """Everything the template lays out; refuses (CompareError) before anything is written."""
    folders = [Path(f) for f in folders]
    if len(folders) < 2:
        raise CompareError("give at least two experiment folders")
    if len({f.resolve() for f in folders}) < len(folders):
        raise CompareError(f"the same folder is given twice: {' '.join(map(str, folders))}")
    names = list(names) if names else [f.resolve().name for f in folders]
    if len(names) != len(folders):
        raise CompareError(f"--names: {len(names)} names for {len(folders)} folders")
    if len(set(names)) < len(names):
        raise CompareError(f"the experiments need distinct names (got {', '.join(names)}); give them with --names")
    runs = [load_run(f, n) for f, n in zip(folders, names)]
    check_same_test_set(runs)
    if alpha is None:
        alpha = shared_setting(runs, "alpha", "--alpha")
    if smallest_effect is None:
        smallest_effect = shared_setting(runs, "smallest_effect", "--smallest-effect")
    settings = settings_differences(runs)
    tests = paired_tests(runs, alpha, smallest_effect)
    base = Path(out_html).resolve().parent if out_html else Path.cwd()
    # Paths relative to the page, so that it works wherever it moves together with the experiments.
    experiments = [{"name": r["name"], "folder": os.path.relpath(r["folder"].resolve(), base),
                    "report": os.path.relpath(r["folder"].resolve() / "report" / "report.html", base)
                    if (r["folder"] / "report" / "report.html").is_file() else None,
                    "variants": len(r["numbers"]["rows"]), "seeds": r["numbers"]["seeds"]} for r in runs]
    significant = [t for t in tests["tests"] if t["significant"]]
    return {"experiments": experiments, "names": names, "settings": settings,
            "accuracy": accuracy_rows(runs, settings["variants"]), "tests": tests, "significant": significant,
            "n_test": runs[0]["n_test"], "test_digest": runs[0]["test_digest"], "alpha": alpha}


def write_comparison(folders, out_html, names=None, alpha: float | None = None, *,
                     smallest_effect: float | None = None, title: str | None = None, pdf=None) -> dict:
    from .files import write_text
    from .report.render import environment, html_to_pdf, provenance

    context = comparison_context(folders, names, alpha, smallest_effect=smallest_effect, out_html=out_html)
    context["title"] = title or "Experiments side by side: " + ", ".join(context["names"])
    context["provenance"] = {k: v for k, v in provenance({}).items() if k != "config"}
    context["stylesheet"] = TEMPLATE.with_name("report.css").read_text()
    env = environment(TEMPLATE.parent)
    write_text(out_html, env.get_template(TEMPLATE.name).render(**context))
    if pdf:
        html_to_pdf(out_html, pdf)
    return context


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cmpt726.compare_runs", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="experiment folders, each a finished run (snakemake --directory)")
    parser.add_argument("--names", nargs="+", help="one name per folder (default: the folders' names)")
    parser.add_argument("-o", "--output", default="comparison.html", help="the HTML page (default: %(default)s)")
    parser.add_argument("--pdf", help="also print the page to this PDF (wkhtmltopdf)")
    parser.add_argument("--alpha", type=float, help="significance level (default: the runs' report.alpha)")
    parser.add_argument("--smallest-effect", type=float,
                        help="δ of the equivalence tests, in points (default: the runs' report.smallest_effect)")
    parser.add_argument("--title", help="the page's title")
    args = parser.parse_args(argv)
    try:
        context = write_comparison(args.folders, args.output, args.names, args.alpha,
                                   smallest_effect=args.smallest_effect, title=args.title, pdf=args.pdf)
    except (ValueError, RuntimeError) as error:  # CompareError, a malformed score file, no wkhtmltopdf: each names it
        print(f"compare: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}{' and ' + args.pdf if args.pdf else ''}: {len(context['tests']['tests'])} paired "
          f"test(s), {len(context['significant'])} significant")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
