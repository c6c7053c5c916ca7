"""Likely label errors in the CIFAR-10 test set: cleanlab on the models' mean out-of-sample test probabilities.

Only images the models get wrong can be flagged, so a flagging variant is judged against the suspects the other
flagging variants find without its family (`leave_one_out`); any other variant against the full list.
"""

from pathlib import Path

import numpy as np

from ..evaluation import read_score_set
from ..files import read_table, write_json, write_tsv

RANK_BY = "self_confidence"
TSV_COLUMNS = ["index", "given", "suggested", "self_confidence", "rank", "models_wrong", "models"]


def combine_probs(probs_list) -> np.ndarray:
    """Mean of the models' probabilities, each (N, K); refuses an empty list or differing shapes."""
    arrays = [np.asarray(p, dtype=np.float64) for p in probs_list]
    if not arrays:
        raise ValueError("combine_probs: no probabilities given (need at least one model)")
    shape = arrays[0].shape
    for i, p in enumerate(arrays):
        if p.shape != shape:
            raise ValueError(f"combine_probs: model {i} has shape {p.shape}, model 0 has {shape}")
    return np.mean(arrays, axis=0)


def find_suspects(labels, probs_list, *, filter_by: str) -> dict[str, np.ndarray]:
    """Images whose given label is likely wrong by the models' probabilities, most likely first (TSV_COLUMNS)."""
    from cleanlab.filter import find_label_issues

    probs_list = list(probs_list)
    probs = combine_probs(probs_list)
    labels = np.asarray(labels).astype(np.int64)
    ranked = np.asarray(find_label_issues(labels, probs, filter_by=filter_by,
                                          return_indices_ranked_by=RANK_BY, n_jobs=1), dtype=np.int64)
    wrong = np.sum([p.argmax(1) != labels for p in map(np.asarray, probs_list)], axis=0)
    return {"index": ranked, "given": labels[ranked], "suggested": probs[ranked].argmax(1),
            "self_confidence": probs[ranked, labels[ranked]], "rank": np.arange(1, len(ranked) + 1),
            "models_wrong": np.asarray(wrong, dtype=np.int64)[ranked],
            "models": np.full(len(ranked), len(probs_list), dtype=np.int64)}


def summary(labels, probs, suspect_indices) -> dict:
    """How one model's mistakes relate to the suspects, and its accuracy (%) with and without them."""
    labels = np.asarray(labels)
    probs = np.asarray(probs)
    suspects = np.asarray(suspect_indices, dtype=np.int64).reshape(-1)
    if len(suspects) and (suspects.min() < 0 or suspects.max() >= len(labels)):
        raise ValueError(f"summary: suspect indices must lie in 0..{len(labels) - 1}")
    is_suspect = np.zeros(len(labels), dtype=bool)
    is_suspect[suspects] = True
    wrong = probs.argmax(1) != labels
    kept = ~is_suspect
    return {"n_images": int(len(labels)), "n_suspects": int(is_suspect.sum()), "mistakes": int(wrong.sum()),
            "mistakes_suspect": int((wrong & is_suspect).sum()),
            "accuracy": float(100.0 * (~wrong).mean()) if len(labels) else None,
            "accuracy_without_suspects": float(100.0 * (~wrong[kept]).mean()) if kept.any() else None}


def leave_one_out(labels, probs_list, variants, *, filter_by: str) -> dict[str, dict]:
    """Per family (`variants`, one per entry of `probs_list`): its runs against the suspects of all the others."""
    variants = [str(v) for v in variants]
    if len(variants) != len(probs_list):
        raise ValueError(f"leave_one_out: {len(variants)} variant names for {len(probs_list)} probability arrays")
    names = list(dict.fromkeys(variants))
    if len(names) < 2:
        return {}
    out = {}
    for name in names:
        others = [p for p, v in zip(probs_list, variants) if v != name]
        suspects = find_suspects(labels, others, filter_by=filter_by)["index"]
        own = [summary(labels, p, suspects) for p, v in zip(probs_list, variants) if v == name]
        mean = {key: float(np.mean([o[key] for o in own])) if all(o[key] is not None for o in own) else None
                for key in ("mistakes", "mistakes_suspect", "accuracy", "accuracy_without_suspects")}
        out[name] = {"n_suspects": int(len(suspects)), "models": len(others), "runs": len(own), **mean,
                     "mistakes_suspect_share": 100 * mean["mistakes_suspect"] / mean["mistakes"]
                     if mean["mistakes"] else None}
    return out


def write_label_issues(score_paths, out_tsv, classes, labels, *, reference=None, summary_json=None,
                       test_set="the test set", filter_by: str, variants=None, families=None) -> dict:
    """Find suspects over all `score_paths` and write `out_tsv`; returns (and writes to `summary_json`) a summary,
    with `leave_one_out` by `families` (default: `variants`) when `variants` names each file."""
    paths = [str(p) for p in score_paths]
    classes = [str(c) for c in classes]
    labels = np.asarray(labels)
    probs_list = [s["probs"] for s in read_score_set(paths, labels, classes, test_set=test_set)]
    table = find_suspects(labels, probs_list, filter_by=filter_by)

    reference = paths[0] if reference is None else str(reference)
    if reference in paths:
        ref_probs = probs_list[paths.index(reference)]
    else:
        (ref,) = read_score_set([reference], labels, classes, test_set=test_set)
        ref_probs = ref["probs"]
    # Weak models make their own errors look like label errors: the report states how accurate they are.
    model_accuracy = [float(100.0 * (p.argmax(1) == labels).mean()) for p in probs_list]
    result = {"n_models": len(paths), "filter_by": filter_by, "rank_by": RANK_BY,
              "model_accuracy": {"min": min(model_accuracy), "max": max(model_accuracy)},
              "reference": reference, **summary(labels, ref_probs, table["index"])}
    if variants is not None:
        families = [str(f) for f in (variants if families is None else families)]
        result["variants"] = list(dict.fromkeys(str(v) for v in variants))
        result["families"] = dict(zip(map(str, variants), families))
        result["leave_one_out"] = leave_one_out(labels, probs_list, families, filter_by=filter_by)

    write_tsv(out_tsv, TSV_COLUMNS, ([i, classes[g], classes[s], float(conf), rank, wrong, models]
                                     for i, g, s, conf, rank, wrong, models in zip(*(table[c] for c in TSV_COLUMNS))))
    if summary_json is not None:
        write_json(summary_json, result)
    print(f"{result['n_suspects']} likely label errors among {len(labels)} test images (cleanlab, filter_by={filter_by}, "
          f"mean probabilities of {len(paths)} score files)")
    return result


def read_label_issues(path, classes=None) -> dict[str, np.ndarray]:
    """A label_issues.tsv back as arrays (given/suggested as names, or class indices when `classes` is given)."""
    path = Path(path)
    rows = read_table(path, TSV_COLUMNS)
    cols = dict(zip(TSV_COLUMNS, zip(*rows))) if rows else {c: () for c in TSV_COLUMNS}
    try:
        table = {c: np.array(cols[c], dtype=kind) for c, kind in zip(
            TSV_COLUMNS, (np.int64, str, str, np.float64, np.int64, np.int64, np.int64))}
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    if classes is not None:
        lookup = {str(c): k for k, c in enumerate(classes)}
        for key in ("given", "suggested"):
            unknown = sorted(set(table[key]) - set(lookup))
            if unknown:
                raise ValueError(f"{path}: column {key} has class names {unknown} not in {list(lookup)}")
            table[key] = np.array([lookup[c] for c in table[key]], dtype=np.int64)
    return table


def label_issues_of_test_set(score_paths, test_images, out_tsv, summary_json, *, filter_by: str,
                             variants=None, families=None) -> dict:
    """Rule label_issues: `write_label_issues` with the class names and labels of the prepared test set."""
    from ..data import load_arrays

    _, labels, classes = load_arrays(test_images)
    return write_label_issues(score_paths, out_tsv, classes, labels, summary_json=summary_json,
                              test_set=test_images, filter_by=filter_by, variants=variants, families=families)
