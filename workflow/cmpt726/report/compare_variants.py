"""Question 6, every number (rule compare_variants): the variant table with 95 % intervals, paired tests, the
verdict, the prose's comparisons, the focus variant's errors and calibration. The template only lays them out."""

import math
import statistics
from pathlib import Path

import numpy as np

from ..config import uses_cached_features
from ..tuning.choice import runs_convergence
from ..data import load_arrays
from ..evaluation import read_metrics, read_score_set
from .. import stats
from ..files import read_json, read_tsv, weights_digest, write_json, write_tsv
from . import figures
from .render import data_uri

N_MISTAKES = 24
CALIBRATION_BINS = 15
TABLE_COLUMNS = ["variant", "train", "head", "augment", "epochs", "lr", "weight_decay", "batch_size", "seeds",
                 "accuracy", "ci_low", "ci_high", "interval", "accuracy_std", "kept_epochs", "kept_last",
                 "last_fifth_rise", "delta_vs_baseline", "reference_accuracy", "ece", "train_seconds", "peak_rss_mb"]
TABLE_KEYS = ["name", "train", "head", "augment", "epochs", "lr", "weight_decay", "batch_size", "seeds", "accuracy",
              "ci_low", "ci_high", "interval_method", "accuracy_std", "kept_epochs_text", "kept_last", "last_fifth_rise",
              "delta", "reference", "ece", "seconds", "max_rss_mb"]


def describe_backbone(backbone: dict) -> str:
    if backbone["source"] == "download":
        return f"the published weights, downloaded from {backbone['url']}"
    if backbone["source"] == "path":
        return f"weights read from {backbone['path']}"
    return "pretrained on CIFAR-100 by this workflow"


def describe_augment(augment: dict) -> str:
    parts = ([f"crop (pad {augment['crop']})"] if augment["crop"] else []) + (["flip"] if augment["flip"] else [])
    parts += [f"cutout {augment['cutout']}×{augment['cutout']}"] if augment["cutout"] else []
    return " + ".join(parts) or "none"


def describe_head(head: dict) -> str:
    extras = (["BN"] if head["hidden"] and head["batchnorm"] else []) + \
        ([f"dropout {head['dropout']:g}"] if head["dropout"] else [])
    return "→".join(["64", *map(str, head["hidden"]), "10"]) + (f" ({', '.join(extras)})" if extras else "")


def describe_data(summary: dict) -> dict:
    """results/data/cifar10/summary.json with the test images per class in words ("1,000" or "95–105")."""
    low, high = min(summary["test"]["per_class"]), max(summary["test"]["per_class"])
    return {**summary, "test_per_class": f"{low:,}" if low == high else f"{low:,}–{high:,}"}


def backbone_info(backbone: dict, summary_path=None, curves_path=None) -> dict:
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


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = CALIBRATION_BINS) -> dict:
    """Reliability bins of the max softmax score and the expected calibration error (ECE, in [0, 1])."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    if confidence.shape != correct.shape or confidence.ndim != 1 or not len(confidence):
        raise ValueError("calibration needs two equal-length, non-empty 1-d arrays")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=bins)
    hit_sum = np.bincount(which, weights=correct.astype(np.float64), minlength=bins)
    filled = count > 0
    mean_conf = np.where(filled, conf_sum / np.maximum(count, 1), np.nan)
    accuracy = np.where(filled, hit_sum / np.maximum(count, 1), np.nan)
    ece = float(np.sum(count[filled] / len(confidence) * np.abs(accuracy[filled] - mean_conf[filled])))
    mean_confidence, accuracy_overall = float(confidence.mean()), float(correct.mean())
    return {"edges": edges.tolist(), "count": count.tolist(), "confidence": _nan_to_none(mean_conf),
            "accuracy": _nan_to_none(accuracy), "ece": ece, "mean_confidence": mean_confidence,
            "accuracy_overall": accuracy_overall,
            "direction": "over-confident" if mean_confidence > accuracy_overall else "under-confident",
            "gap_points": 100 * abs(mean_confidence - accuracy_overall)}


def _nan_to_none(values) -> list:
    return [None if math.isnan(v) else float(v) for v in values]


def confident_mistakes(labels: np.ndarray, probs: np.ndarray, k: int = N_MISTAKES) -> np.ndarray:
    """Indices of the k wrong predictions with the highest max score, most confident first."""
    wrong = np.flatnonzero(probs.argmax(1) != labels)
    return wrong[np.lexsort((wrong, -probs.max(1)[wrong]))[:k]]  # ties: lower index first


def top_confusion(confusion, classes) -> dict | None:
    """The most frequent off-diagonal (true, predicted) pair."""
    c = np.array(confusion)
    np.fill_diagonal(c, -1)
    i, j = np.unravel_index(np.argmax(c), c.shape)
    return None if c[i, j] <= 0 else {"true": classes[i], "pred": classes[j], "count": int(c[i, j])}


def variant_rows(settings: dict, runs: list, metrics: dict, train_summaries: dict, summary: dict, reference: dict,
                 baseline: str = "head") -> list[dict]:
    """One row per variant of the table (metrics and train_summaries by (name, seed))."""
    rows = []
    for name, s in settings.items():
        seeds = [seed for v, seed in runs if v == name]
        cost = [train_summaries[name, seed] for seed in seeds]
        acc = summary[name]
        kept = [c.get("kept_epoch") for c in cost]
        rows.append({
            "name": name, "head": describe_head(s["head"]), "augment": describe_augment(s["augment"]),
            "train": s["train"], "epochs": s["epochs"], "lr": s["lr"], "weight_decay": s["weight_decay"],
            "batch_size": s["batch_size"], "seeds": len(seeds), "seed_list": seeds,
            "accuracy": acc["mean"], "accuracy_std": acc["std"], "per_seed": acc["per_seed"],
            "ci_low": acc["ci_low"], "ci_high": acc["ci_high"], "interval_method": acc["interval_method"],
            "metrics_accuracy": [metrics[name, seed]["accuracy"] for seed in seeds],
            "reference": reference.get(name), "keep": cost[0].get("keep"), "kept_epochs": kept,
            "kept_epochs_text": ", ".join("–" if k is None else str(k) for k in kept),
            "validation_images": cost[0].get("validation_images"),
            "seconds": statistics.fmean(c["train_seconds"] for c in cost),
            "max_rss_mb": max(c["peak_rss_mb"] for c in cost),
            "max_cuda_mb": max((c["peak_cuda_mb"] for c in cost if c.get("peak_cuda_mb") is not None), default=None),
        })
    base = next((r["accuracy"] for r in rows if r["name"] == baseline), None)
    for r in rows:
        r["delta"] = None if base is None else r["accuracy"] - base
    return rows


# The training settings the prose names.
SHARED_KEYS = ("lr", "momentum", "weight_decay", "batch_size", "epochs", "normalize", "validation", "replicate_2019_bugs")


def shared_settings(settings: dict) -> dict:
    """Each of SHARED_KEYS with its value when every variant has the same, else None (`by_variant` lists them)."""
    shared, by_variant = {}, {}
    for key in SHARED_KEYS:
        values = {name: s[key] for name, s in settings.items()}
        same = all(v == next(iter(values.values())) for v in values.values())
        shared[key] = next(iter(values.values())) if same else None
        if not same:
            by_variant[key] = [{"name": name, "value": v} for name, v in values.items()]
    heads = [name for name, s in settings.items() if s["train"] == "head"]
    cached = [name for name in heads if uses_cached_features(settings[name])]
    return {**shared, "by_variant": by_variant, "cached_heads": cached,
            "uncached_heads": [name for name in heads if name not in cached]}


def named_comparisons(asked: list[dict], rows: list[dict], pairs: dict, smallest_effect: float) -> dict:
    """The discussion's questions (their own Holm family) and best full network against best head."""
    by_name = {r["name"]: r for r in rows}
    present = [item for item in asked if item["a"] in by_name and item["b"] in by_name and item["a"] != item["b"]]
    skipped = [item for item in asked if item not in present]
    answered = stats.answer_questions(pairs, present) if present else []
    found = [{**item, **_pair(record, by_name), "differs": differences(by_name[item["a"]], by_name[item["b"]])}
             for item, record in zip(present, answered)]
    heads = [r for r in rows if r["train"] == "head"]
    fulls = [r for r in rows if r["train"] == "all"]
    head_vs_full = None
    if heads and fulls:
        h = max(heads, key=lambda r: r["accuracy"])
        f = max(fulls, key=lambda r: r["accuracy"])
        head_vs_full = {**_pair(stats.find_pair(pairs, f["name"], h["name"]), by_name),
                        "time_ratio": f["seconds"] / h["seconds"] if f["seconds"] and h["seconds"] else None}
        outcome, up = head_vs_full["outcome"], head_vs_full["diff"] > 0
        head_vs_full["verb"] = ("beats" if outcome == "difference" and up else "loses to" if outcome == "difference"
                                else f"is within ±{smallest_effect:g} points of" if outcome == "equivalent"
                                else "cannot be told apart from")
        head_vs_full["conclusion"] = (
            "The CIFAR-100 features transfer, but adapting them to the new classes pays." if outcome == "difference" and up
            else "Here the frozen features are as good as adapted ones." if outcome == "equivalent"
            else "With one seed each this compares two trained networks, not the two ways of training."
            if outcome == "models only"
            else "Inconclusive: the interval allows either to be better." if not head_vs_full["significant"] else "")
    return {"asked": found, "skipped": skipped, "head_vs_full": head_vs_full}


DIFFERENCE_KEYS = {"train": "trains", "head": "head", "augment": "augment", "epochs": "epochs", "lr": "lr",
                   "weight_decay": "weight decay", "batch_size": "batch"}


def differences(a: dict, b: dict) -> list[str]:
    """What the table rows of variants a and b differ in, as "augment: crop (pad 4) + flip vs none"."""
    return [f"{label}: {a[key]:g} vs {b[key]:g}" if isinstance(a[key], float) else f"{label}: {a[key]} vs {b[key]}"
            for key, label in DIFFERENCE_KEYS.items() if a[key] != b[key]]


def _pair(record: dict, by_name: dict) -> dict:
    """One paired comparison (a `stats` record oriented a − b) with both accuracies and the words the prose needs."""
    a, b = record["a"], record["b"]
    return {"a": a, "b": b, "a_accuracy": by_name[a]["accuracy"], "b_accuracy": by_name[b]["accuracy"],
            "diff": record["diff_points"], "ci_low": record["ci_low"], "ci_high": record["ci_high"],
            "p": record["p"], "p_adjusted": record["p_adjusted"], "test": record["test"], "scope": record["scope"],
            "significant": record["significant"], "equivalent": record["equivalent"],
            "tost_p_adjusted": record["tost_p_adjusted"], "outcome": record["outcome"], "answer": record["answer"],
            "detectable": record.get("detectable"),
            "direction": "higher" if record["diff_points"] > 0 else "lower" if record["diff_points"] < 0 else "equal"}


def pair_matrix(names: list[str], pairs: dict) -> dict:
    """Row − column differences (points) and Holm-adjusted p-values as square lists (None on the diagonal)."""
    diff = [[None if a == b else stats.find_pair(pairs, a, b)["diff_points"] for b in names] for a in names]
    p = [[None if a == b else stats.find_pair(pairs, a, b)["p_adjusted"] for b in names] for a in names]
    return {"names": names, "diff": diff, "p_adjusted": p}


def converged(histories: list[list[dict]]) -> dict:
    """Whether a variant's runs converged: `kept_last` ("2 of 3" kept their last epoch) and `last_fifth_rise`."""
    runs = runs_convergence(histories)
    return {"kept_last": f"{runs['kept_last']} of {runs['scored']}" if runs["scored"] else None,
            "last_fifth_rise": runs["last_fifth_rise"]}


def setting_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Every training setting in which runs a and b differ (nested keys dotted), as "key: a vs b"."""
    found = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            found += setting_differences(x, y, f"{prefix}{key}.")
        elif x != y:
            found.append(f"{prefix}{key}: {x} vs {y}")
    return found


def tuned_against_fixed(twins: dict, rows: list[dict], correct: dict, summary: dict, pairs: dict,
                        comparisons: list[dict], alpha: float, smallest_effect: float,
                        settings: dict, recipes: dict | None = None) -> dict | None:
    """Fixed beside tuned, each a Holm family: tuned − fixed, the recipe's and the search's gains, the questions
    asked again of the twins, and whether tuning changes their answers; the verdict among the twins."""
    by_name = {r["name"]: r for r in rows}
    twins = {t: v for t, v in twins.items() if t in by_name and v in by_name}
    if not twins:
        return None
    asked = [{"a": t, "b": v, "asks": f"Does tuning help {v}?"} for t, v in twins.items()]
    side = [{**_pair(record, by_name), "variant": v, "twin": t, "fixed": by_name[v], "tuned": by_name[t],
             "settings_differ": setting_differences(settings[t], settings[v])}
            for (t, v), record in zip(twins.items(), stats.answer_questions(pairs, asked))]
    recipe_of = {v: r for r, v in (recipes or {}).items() if r in by_name}
    split = [(t, v, recipe_of[v]) for t, v in twins.items() if v in recipe_of]
    gains = None
    if split:
        records = stats.answer_questions(pairs, [q for t, v, r in split for q in (
            {"a": r, "b": v, "asks": f"Does {v}'s tuned recipe at one fixed lr help it?"},
            {"a": t, "b": r, "asks": f"Does the search help {v} beyond that recipe?"})])
        gains = [{"variant": v, "recipe": r, "twin": t, "recipe_row": by_name[r],
                  "recipe_gain": _pair(records[2 * i], by_name), "search_gain": _pair(records[2 * i + 1], by_name)}
                 for i, (t, v, r) in enumerate(split)]
    twin_of = {v: t for t, v in twins.items()}
    # The questions both of whose variants were tuned, with the twins that answer them again.
    again = [(q, twin_of[q["a"]], twin_of[q["b"]]) for q in comparisons
             if q["a"] in twin_of and q["b"] in twin_of and q["a"] != q["b"]]
    # A question keeps its words only where the twins differ as the variants do ("10 epochs against 1" is not
    # what twins that both train 15 compare); else it asks of the twins by name, their differences beside it.
    mapped = [{**q, "a": ta, "b": tb,
               "asks": q["asks"]
               if differences(by_name[ta], by_name[tb]) == differences(by_name[q["a"]], by_name[q["b"]])
               else f"Does {ta} beat {tb}? (asked above as “{q['asks']}”)"} for q, ta, tb in again]
    # Does tuning change a question's answer? (A' − B') − (A − B) where all four have 2+ seeds; a Holm family.
    interactions = [{"a": q["a"], "b": q["b"], "asks": q["asks"],
                     **stats.run_level_contrast([correct[name] for name in (q["a"], q["b"], ta, tb)], [-1, 1, 1, -1])}
                    for q, ta, tb in again if min(len(correct[name]) for name in (q["a"], q["b"], ta, tb)) >= 2]
    for record, adjusted in zip(interactions, stats.holm([r["p"] for r in interactions])):
        record.update(p_adjusted=adjusted, significant=bool(adjusted < alpha))
    twin_rows = [by_name[t] for t in twins]
    among = {t: correct[t] for t in twins}
    twin_pairs = _pairwise(among, alpha, smallest_effect, settings)
    verdict = stats.verdict({t: summary[t] for t in twins}, twin_pairs, alpha)
    return {"side_by_side": side, "n_better": sum(c["outcome"] == "difference" and c["diff"] > 0 for c in side),
            "gains": gains, "interactions": interactions,
            "comparisons": named_comparisons(mapped, twin_rows, pairs, smallest_effect),
            "not_asked": len(comparisons) - len(mapped),
            "verdict": headline(verdict, twin_rows),
            "untuned": [r["name"] for r in rows if r["name"] not in twins and r["name"] not in twin_of
                        and r["name"] not in (recipes or {})]}


def headline(verdict: dict, rows: list[dict]) -> dict:
    """What the report may claim: a best variant only when the tests allow it, else who is tied at the top."""
    by_name = {r["name"]: r for r in rows}
    top = by_name[verdict["top"]]
    return {**verdict, "top_accuracy": top["accuracy"], "top_ci": [top["ci_low"], top["ci_high"]],
            "tied_others": [v for v in verdict["tied_with_top"] if v != verdict["top"]]}


def validation_accuracy(epochs: list[dict], kept_epoch) -> float | None:
    """A run's validation accuracy at its kept epoch, or the latest one before it (None: no validation split)."""
    measured = [r["val_acc"] for r in epochs
                if r.get("val_acc") is not None and (kept_epoch is None or r["epoch"] <= kept_epoch)]
    return measured[-1] if measured else None


def choose_focus(rows: list[dict], focus: str | None = None) -> tuple[str, str]:
    """The variant the per-image sections study and how it was chosen (never by test accuracy)."""
    if focus:
        return focus, "report.gallery_variant"
    if all(r["val_accuracy"] is not None for r in rows):
        return max(rows, key=lambda r: r["val_accuracy"])["name"], "validation accuracy"
    return rows[0]["name"], "first variant (no validation accuracy to choose by)"


def reference_check(rows: list[dict], replica_2019: bool) -> dict:
    """The 2019 script's reported accuracies against ours: how many lie inside our 95 % intervals."""
    checked = [{"name": r["name"], "reference": r["reference"], "accuracy": r["accuracy"],
                "diff": r["accuracy"] - r["reference"], "inside": r["ci_low"] <= r["reference"] <= r["ci_high"]}
               for r in rows if r["reference"] is not None]
    return {"replica_2019": replica_2019, "rows": checked, "inside": sum(c["inside"] for c in checked),
            "n": len(checked)}


def training_mode(settings: dict) -> str:
    """The group whose run variance a one-seed variant borrows: heads and full networks spread differently."""
    return "heads" if settings["train"] == "head" else "full network"


def _pairwise(correct: dict, alpha: float, smallest_effect: float, settings: dict) -> dict:
    if len(correct) > 1:
        return stats.pairwise_comparisons(correct, order=list(correct), alpha=alpha, smallest_effect=smallest_effect,
                                          groups={name: training_mode(settings[name]) for name in correct})
    return {"pairs": [], "alpha": alpha, "pooled_run_sd": None, "pooled_run_sd_by_group": None}


def read_train_summary(path) -> dict:
    """A training job's summary, with the settings the run trained with (finetune.train_variant records them)."""
    summary = read_json(path)
    if "settings" not in summary:
        raise ValueError(f"{path}: no `settings`: a training summary from older code; delete it to retrain")
    return summary


def q6_outputs(paths: dict, out: dict, spec: dict, baseline: str = "head") -> dict:
    """Every Q6 figure, the variant table and the numbers JSON (rule compare_variants), from the settings the
    training jobs recorded."""
    metrics, epochs, train_summaries, scores = (paths[k] for k in ("metrics", "epochs", "train_summaries", "scores"))
    test_images, backbone = paths["test"], paths.get("backbone")
    tests = spec["statistics"]
    alpha, replicates = tests["alpha"], tests["bootstrap_replicates"]
    comparisons, smallest_effect = tests["comparisons"], tests["smallest_effect"]
    reference, focus, replica_2019, twins = spec["reference"], spec["focus"], spec["replica_2019"], spec["twins"]
    runs = [tuple(r) for r in spec["runs"]]
    epochs_by, scores_by = dict(zip(runs, epochs)), dict(zip(runs, scores))
    metrics_by = {run: read_metrics(path) for run, path in zip(runs, metrics)}  # each file read once
    cost_by = {run: read_train_summary(path) for run, path in zip(runs, train_summaries)}
    settings = {}
    for (name, _), cost in cost_by.items():
        settings.setdefault(name, cost["settings"])
    images, labels, classes = load_arrays(test_images)
    n = len(labels)

    table = dict(zip(scores_by, read_score_set(scores_by.values(), labels, classes, test_set=test_images)))
    correct = {name: np.stack([table[name, seed]["pred"] == labels for v, seed in runs if v == name])
               for name in settings}
    summary = stats.accuracy_summary(correct, replicates=replicates, seed=0)
    pairs = _pairwise(correct, alpha, smallest_effect, settings)
    rows = variant_rows(settings, runs, metrics_by, cost_by, summary, reference, baseline=baseline)
    curves = {name: [read_tsv(epochs_by[name, s]) for v, s in runs if v == name] for name in settings}
    for r in rows:
        accs = [validation_accuracy(c, k) for c, k in zip(curves[r["name"]], r["kept_epochs"])]
        r["val_accuracy"] = None if None in accs else statistics.fmean(accs)
        r.update(converged(curves[r["name"]]))
    calib = {key: calibration(s["probs"].max(1), s["pred"] == s["label"]) for key, s in table.items()}
    for r in rows:
        r["ece"] = statistics.fmean(100 * calib[r["name"], seed]["ece"] for seed in r["seed_list"])
    verdict = stats.verdict(summary, pairs, alpha)

    focus, focus_chosen_by = choose_focus(rows, focus)
    focus_row = next(r for r in rows if r["name"] == focus)
    seed = focus_row["seed_list"][0]
    focus_metrics = metrics_by[focus, seed]
    focus_scores = table[focus, seed]
    mistakes = confident_mistakes(focus_scores["label"], focus_scores["probs"])
    compare = {focus: focus_metrics["per_class_accuracy"]}
    if baseline in settings and baseline != focus:
        base_seed = next(s for v, s in runs if v == baseline)
        compare[f"{baseline} (baseline)"] = metrics_by[baseline, base_seed]["per_class_accuracy"]
    per_class = focus_metrics["per_class_accuracy"]
    ranked = sorted((a, c) for c, a in per_class.items() if a is not None)

    figures.plot_curves(curves, out["curves"], twins)
    figures.plot_confusion(focus_metrics["confusion"], classes, f"{focus}, seed {seed}", out["confusion"])
    figures.plot_per_class(compare, out["per_class"])
    figures.plot_reliability(calib[focus, seed], f"{focus}, seed {seed}", out["reliability"])
    figures.plot_mistakes(images, focus_scores["label"], focus_scores["probs"], mistakes, classes,
                          f"The {len(mistakes)} most confident mistakes of {focus} (seed {seed})", out["mistakes"])
    figures.plot_intervals(rows, verdict, out["variants"])
    matrix = pair_matrix([r["name"] for r in rows], pairs)
    figures.plot_pair_matrix(matrix, alpha, out["pairs"])
    write_tsv(out["table"], TABLE_COLUMNS, ([r[k] for k in TABLE_KEYS] for r in rows))

    numbers = {
        "rows": rows, "baseline": baseline if baseline in settings else None,
        "verdict": headline(verdict, rows), "alpha": alpha, "replicates": replicates,
        "smallest_effect": smallest_effect, "pooled_run_sd": pairs["pooled_run_sd"],
        "pooled_run_sd_by_group": pairs["pooled_run_sd_by_group"],
        "pairs": pairs["pairs"], "matrix": matrix,
        "comparisons": named_comparisons(comparisons or [], rows, pairs, smallest_effect),
        "tuning": tuned_against_fixed(twins or {}, rows, correct, summary, pairs, comparisons or [], alpha,
                                      smallest_effect, settings, spec.get("recipes")),
        "reference_check": reference_check(rows, replica_2019),
        "focus": focus, "focus_row": focus_row, "focus_is_top": focus == verdict["top"],
        "focus_chosen_by": focus_chosen_by,
        "seed": seed, "seeds": sorted({s for _, s in runs}), "n_test": n, "classes": classes,
        "train_modes": list(dict.fromkeys(r["train"] for r in rows)),
        "varying": {key: len({str(r[key]) for r in rows}) > 1 for key in ("lr", "batch_size", "augment", "seeds")},
        "settings": shared_settings(settings),
        "validation": {"images": focus_row["validation_images"], "keep": focus_row["keep"]},
        "focus_seed_accuracy": focus_metrics["accuracy"], "ece": {r["name"]: r["ece"] for r in rows},
        "calibration": {k: v for k, v in calib[focus, seed].items() if k != "edges"},
        "calibration_bins": CALIBRATION_BINS, "per_class": per_class,
        "worst_class": {"name": ranked[0][1], "accuracy": ranked[0][0]} if ranked else None,
        "best_class": {"name": ranked[-1][1], "accuracy": ranked[-1][0]} if ranked else None,
        "top_confusion": top_confusion(focus_metrics["confusion"], classes),
        "n_wrong": int((focus_scores["pred"] != focus_scores["label"]).sum()),
        "mistakes": [{"index": int(i), "label": classes[focus_scores["label"][i]],
                      "pred": classes[focus_scores["pred"][i]], "score": float(focus_scores["probs"][i].max())}
                     for i in mistakes],
        # Where the runs trained and, apart, where the test set was scored (merged results may differ).
        "devices": sorted({c.get("device", "not recorded") for c in cost_by.values()}),
        "scored_on": sorted({m.get("device", "not recorded") for m in metrics_by.values()}),
        "variant_settings": settings,
        "backbone_file": None if backbone is None else
        {"name": Path(backbone).name, "sha256": weights_digest(backbone)},
    }
    write_json(out["numbers"], numbers)
    return numbers
