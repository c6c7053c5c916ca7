"""The statistics behind "which variant is better": intervals, paired tests, the headline verdict.

This module owns the numbers the report quotes when it compares fine-tuning variants:

* `wilson_interval` - the interval for one run's accuracy (one seed);
* `bootstrap_accuracies` - a two-level paired bootstrap (test images x seeds) of every variant's
  mean accuracy, the one source of every multi-seed interval and every difference interval;
* `accuracy_summary` - per variant: mean, std over seeds, per-seed accuracies, a 95 % interval;
* `mcnemar_exact`, `holm`, `pairwise_comparisons`, `find_pair`, `paired_test` - every pair of
  variants compared on the same images, p-values Holm-adjusted over the whole family of pairs;
* `verdict` - who is best, or which variants are indistinguishable from the top one.

Everything is pure numpy/scipy on in-memory arrays: no files, no torch, no plotting. The input is
always `correct_by_variant`: a dict name -> boolean array (seeds, images), row s being seed s's
run, `correct[s, i]` whether that run classified test image i right. Every variant must be scored on
the same images in the same order (the comparisons are paired); the seed count may differ between
variants. `correct_matrix` builds such an array from `evaluation.read_scores` results.

Outputs meant for the report (`accuracy_summary`, `pairwise_comparisons`, `paired_test`,
`verdict`) hold only str/int/float/bool/None, lists and dicts, and never NaN, so that
`json.dumps(..., allow_nan=False)` takes them as they are. Accuracies and differences are in
percent / percentage points.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats as _scipy_stats

BOOTSTRAP_METHOD = "bootstrap (images × seeds)"
WILSON_METHOD = "wilson"
MCNEMAR_TEST = "mcnemar exact"


# ----------------------------------------------------------------------------------------------
# Input


def correct_matrix(scores_per_seed: Sequence[Mapping]) -> np.ndarray:
    """(seeds, images) bool array from one variant's `read_scores` dicts, one per seed.

    Refuses runs whose label columns disagree: they were not scored on the same test images.
    """
    if not scores_per_seed:
        raise ValueError("no score tables given")
    labels = np.asarray(scores_per_seed[0]["label"])
    rows = []
    for s, scores in enumerate(scores_per_seed):
        if not np.array_equal(np.asarray(scores["label"]), labels):
            raise ValueError(f"seed row {s}: labels differ from seed row 0 (not the same test images)")
        rows.append(np.asarray(scores["pred"]) == labels)
    return np.stack(rows)


def _validate(correct_by_variant: Mapping[str, np.ndarray]) -> tuple[list[str], list[np.ndarray], int]:
    """Names, (seeds, images) bool arrays and the common image count; a 1-D array is one seed."""
    if not correct_by_variant:
        raise ValueError("no variants given")
    names, arrays = [], []
    n_images = None
    for name, value in correct_by_variant.items():
        arr = np.asarray(value)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ValueError(f"{name}: expected a (seeds, images) array, got shape {np.shape(value)}")
        if arr.dtype != bool:
            if not np.isin(arr, (0, 1)).all():
                raise ValueError(f"{name}: correctness must be boolean (or 0/1)")
            arr = arr.astype(bool)
        if n_images is None:
            n_images = arr.shape[1]
        elif arr.shape[1] != n_images:
            raise ValueError(f"{name}: {arr.shape[1]} images, but other variants have {n_images} "
                             "(paired comparisons need the same test images)")
        names.append(str(name))
        arrays.append(arr)
    return names, arrays, int(n_images)


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(_scipy_stats.norm.ppf(0.5 + confidence / 2))


# ----------------------------------------------------------------------------------------------
# Single run


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for `correct` successes out of `n`, in percent (0..100)."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not 0 <= correct <= n:
        raise ValueError(f"correct must be in 0..{n}, got {correct}")
    z = _z(confidence)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # Clip float rounding only: mathematically the bounds already lie in [0, 1].
    return float(100 * max(0.0, centre - half)), float(100 * min(1.0, centre + half))


def mcnemar_exact(a_correct, b_correct) -> dict:
    """Exact two-sided McNemar test of two runs on the same images.

    b = images A got right and B wrong, c = A wrong and B right; p is the two-sided binomial test of
    b against Binomial(b + c, 1/2), and 1 when there are no discordant pairs (nothing to test).
    """
    a = np.asarray(a_correct, dtype=bool)
    b_arr = np.asarray(b_correct, dtype=bool)
    if a.ndim != 1 or a.shape != b_arr.shape:
        raise ValueError(f"need two 1-D arrays of the same length, got {a.shape} and {b_arr.shape}")
    b = int(np.count_nonzero(a & ~b_arr))
    c = int(np.count_nonzero(~a & b_arr))
    p = 1.0 if b + c == 0 else float(_scipy_stats.binomtest(b, b + c, 0.5).pvalue)
    return {"b": b, "c": c, "p": min(1.0, p)}


# ----------------------------------------------------------------------------------------------
# The two-level paired bootstrap


def bootstrap_accuracies(correct_by_variant: Mapping[str, np.ndarray], replicates: int = 10_000,
                         seed: int = 0, chunk: int = 500, resample_seeds: bool = True) -> dict:
    """Bootstrap replicates of every variant's mean accuracy (percent): name -> array (replicates,).

    Each replicate draws the test images with replacement - the SAME draw for every variant, which
    is what pairs the comparisons - and, independently for each variant, draws that variant's seeds
    with replacement; the variant's replicate accuracy is the mean, over its drawn seeds, of the
    accuracy on the drawn images. So the spread counts both the finite test set and the
    seed-to-seed variation of training. With one seed the seed draw is a no-op (a plain paired image
    bootstrap); `resample_seeds=False` gives that images-only bootstrap for any seed count.

    Cheap form: a draw of images is a count vector w (how often each image was drawn, summing to
    n), so the accuracies of all runs at once are w @ correct / n - one matrix product of (chunk,
    images) counts by the (images, all runs) 0/1 matrix per chunk of replicates. A draw of seeds is
    likewise a count vector over that variant's runs.

    Deterministic for a given (seed, replicates, chunk): the image draws come from one child of
    SeedSequence(seed) and the seed draws from another, so the image draws do not depend on which
    variants are passed or how many seeds they have.

    Timing (measured on the dev machine: 2 shared CPU cores, numpy 2.4 / OpenBLAS): 10 variants x
    3 seeds x 10,000 images x 10,000 replicates take 0.75-1.9 s over repeated runs (most of it
    drawing the 10^8 image indices), with ~140 MB of temporaries at the default chunk of 500.
    """
    names, arrays, n = _validate(correct_by_variant)
    if replicates < 1:
        raise ValueError(f"replicates must be >= 1, got {replicates}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    chunk = max(1, min(chunk, (2**31 - 1) // n))  # keep the flat int32 bincount index from overflowing
    # All runs side by side: column j is one (variant, seed) run.
    runs = np.concatenate(arrays, axis=0).T.astype(np.float64)  # (images, total runs)
    bounds = np.cumsum([0] + [a.shape[0] for a in arrays])
    image_ss, seed_ss = np.random.SeedSequence(seed).spawn(2)
    image_rng, seed_rng = np.random.default_rng(image_ss), np.random.default_rng(seed_ss)
    out = {name: np.empty(replicates) for name in names}

    for start in range(0, replicates, chunk):
        m = min(chunk, replicates - start)
        # int32 draws and an int32 flat index are ~4x faster than the int64 default here.
        draws = image_rng.integers(0, n, size=(m, n), dtype=np.int32)
        draws += (np.arange(m, dtype=np.int32) * n)[:, None]
        counts = np.bincount(draws.ravel(), minlength=m * n).reshape(m, n)
        del draws
        run_acc = (counts @ runs) * (100.0 / n)  # (m, total runs): each run on the drawn images
        for name, lo, hi in zip(names, bounds[:-1], bounds[1:]):
            k = hi - lo
            if k == 1:
                out[name][start:start + m] = run_acc[:, lo]
            elif resample_seeds:
                picks = seed_rng.integers(0, k, size=(m, k))
                seed_w = np.zeros((m, k))
                np.add.at(seed_w, (np.arange(m)[:, None], picks), 1.0 / k)
                out[name][start:start + m] = (run_acc[:, lo:hi] * seed_w).sum(1)
            else:
                out[name][start:start + m] = run_acc[:, lo:hi].mean(1)
    return out


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def _bootstrap_p(diff: np.ndarray) -> float:
    """Two-sided bootstrap p of "no difference": 2 x the smaller tail, (1 + count) / (1 + B).

    The +1 counts the observed data as one of the resamples, so p is never 0 (the smallest
    reportable p is 2 / (B + 1)); ties at 0 count in both tails, which only makes p larger.
    """
    b = len(diff)
    below = (1 + np.count_nonzero(diff <= 0)) / (1 + b)
    above = (1 + np.count_nonzero(diff >= 0)) / (1 + b)
    return float(min(1.0, 2 * min(below, above)))


# ----------------------------------------------------------------------------------------------
# Per variant


def accuracy_summary(correct_by_variant: Mapping[str, np.ndarray], confidence: float = 0.95,
                     replicates: int = 10_000, seed: int = 0, boot: Mapping | None = None) -> dict:
    """Per variant: mean and std over seeds, per-seed accuracies and an interval for the mean.

    The interval is Wilson's for a variant with one seed (the only uncertainty is the finite test
    set) and the two-level bootstrap percentile interval for several seeds (seed-to-seed variation
    counts too); `interval_method` names which. `boot` takes a `bootstrap_accuracies` result to
    reuse (it must cover these variants); otherwise it is computed from `replicates` and `seed`.
    Returns {name: {...}} in the input order.
    """
    names, arrays, n = _validate(correct_by_variant)
    if boot is None and any(a.shape[0] > 1 for a in arrays):
        boot = bootstrap_accuracies(correct_by_variant, replicates=replicates, seed=seed)
    summary = {}
    for name, arr in zip(names, arrays):
        per_seed = 100.0 * arr.mean(1)
        k = arr.shape[0]
        if k == 1:
            low, high = wilson_interval(int(arr.sum()), n, confidence)
            method = WILSON_METHOD
        else:
            low, high = _percentile_interval(boot[name], confidence)
            method = BOOTSTRAP_METHOD
        summary[name] = {
            "seeds": int(k),
            "n_images": n,
            "mean": float(per_seed.mean()),
            "std": float(per_seed.std(ddof=1)) if k > 1 else None,
            "per_seed": [float(v) for v in per_seed],
            "ci_low": low,
            "ci_high": high,
            "confidence": float(confidence),
            "interval_method": method,
        }
    return summary


# ----------------------------------------------------------------------------------------------
# Between variants


def holm(pvalues) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    Sorted ascending, the j-th smallest (j = 0..m-1) is multiplied by m - j; a running maximum
    keeps the adjusted values in the same order as the raw ones (step-down), and they cap at 1.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("pvalues must be a flat sequence")
    if p.size and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
        raise ValueError("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return [float(v) for v in adjusted]


def pairwise_comparisons(correct_by_variant: Mapping[str, np.ndarray], order: Sequence[str] | None = None,
                         alpha: float = 0.05, confidence: float = 0.95, replicates: int = 10_000,
                         seed: int = 0, boot: Mapping | None = None) -> dict:
    """Every unordered pair (A, B) of variants compared on the same test images.

    Per pair, oriented A - B with A before B in `order` (default: the input order):
    `diff_points` (mean accuracy A - B), `ci_low`/`ci_high` (its percentile interval from the paired
    bootstrap), `p`, `p_adjusted` (Holm over all pairs of this family), `significant`
    (p_adjusted < alpha) and `test`, which says where p came from:

    * both variants with one seed -> "mcnemar exact" on the two runs (also under `mcnemar`);
    * otherwise -> "bootstrap (images × seeds)": p = min(1, 2 min(P*(diff <= 0), P*(diff >= 0)))
      over the bootstrap replicates. `per_seed_mcnemar` then records McNemar of seed row i of A
      against seed row i of B (for the record only; it does not enter p).

    `boot` takes a `bootstrap_accuracies` result to reuse (then "seed" is None in the output).
    Returns {"order", "alpha", "confidence", "replicates", "seed", "pairs": [...]}; look one pair up
    in either orientation with `find_pair`.
    """
    names, arrays, n = _validate(correct_by_variant)
    by_name = dict(zip(names, arrays))
    if order is None:
        order = names
    order = [str(v) for v in order]
    if sorted(order) != sorted(names):
        raise ValueError(f"order {order} must list each variant {names} exactly once")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if boot is None:
        boot = bootstrap_accuracies(correct_by_variant, replicates=replicates, seed=seed)
    else:
        seed = None  # the caller's bootstrap: its seed is not known here
    replicates = int(len(next(iter(boot.values()))))

    pairs = []
    for a, b in itertools.combinations(order, 2):
        xa, xb = by_name[a], by_name[b]
        diff = boot[a] - boot[b]
        low, high = _percentile_interval(diff, confidence)
        record = {
            "a": a,
            "b": b,
            "seeds_a": int(xa.shape[0]),
            "seeds_b": int(xb.shape[0]),
            "diff_points": float(100.0 * (xa.mean(1).mean() - xb.mean(1).mean())),
            "ci_low": low,
            "ci_high": high,
            "mcnemar": None,
            "per_seed_mcnemar": None,
        }
        if xa.shape[0] == 1 and xb.shape[0] == 1:
            record["mcnemar"] = mcnemar_exact(xa[0], xb[0])
            record["p"] = record["mcnemar"]["p"]
            record["test"] = MCNEMAR_TEST
        else:
            record["p"] = _bootstrap_p(diff)
            record["test"] = BOOTSTRAP_METHOD
            record["per_seed_mcnemar"] = [{"seed_row": i, **mcnemar_exact(xa[i], xb[i])}
                                          for i in range(min(xa.shape[0], xb.shape[0]))]
        pairs.append(record)

    for record, adjusted in zip(pairs, holm([r["p"] for r in pairs])):
        record["p_adjusted"] = adjusted
        record["significant"] = bool(adjusted < alpha)
    return {"order": order, "alpha": float(alpha), "confidence": float(confidence),
            "replicates": replicates, "seed": None if seed is None else int(seed), "pairs": pairs}


def find_pair(comparisons: Mapping, a: str, b: str) -> dict:
    """The record for A vs B from `pairwise_comparisons` output, oriented A - B whichever way it
    was stored (a flipped record has the difference and its interval negated, McNemar's b and c
    swapped; the p-values do not change)."""
    for record in comparisons["pairs"]:
        if (record["a"], record["b"]) == (a, b):
            return dict(record)
        if (record["a"], record["b"]) == (b, a):
            flipped = dict(record, a=a, b=b, seeds_a=record["seeds_b"], seeds_b=record["seeds_a"],
                           diff_points=-record["diff_points"],
                           ci_low=-record["ci_high"], ci_high=-record["ci_low"])
            if record["mcnemar"] is not None:
                m = record["mcnemar"]
                flipped["mcnemar"] = {"b": m["c"], "c": m["b"], "p": m["p"]}
            if record["per_seed_mcnemar"] is not None:
                flipped["per_seed_mcnemar"] = [dict(m, b=m["c"], c=m["b"]) for m in record["per_seed_mcnemar"]]
            return flipped
    raise KeyError(f"no comparison of {a!r} and {b!r} in {comparisons.get('order')}")


def paired_test(correct_by_variant: Mapping[str, np.ndarray], a: str, b: str,
                comparisons: Mapping | None = None, **kwargs) -> dict:
    """One named comparison (e.g. "head" vs "all"), oriented A - B, as its record in the family.

    The p-value is Holm-adjusted over ALL pairs of `correct_by_variant`, not just this one, so a
    headline comparison gets no easier standard than the rest. It is `find_pair` on
    `pairwise_comparisons(correct_by_variant, **kwargs)`; pass that output as `comparisons` to
    reuse it instead of bootstrapping again.
    """
    if comparisons is None:
        comparisons = pairwise_comparisons(correct_by_variant, **kwargs)
    return find_pair(comparisons, a, b)


# ----------------------------------------------------------------------------------------------
# Headline


def verdict(summary: Mapping[str, Mapping], comparisons: Mapping, alpha: float | None = None) -> dict:
    """Who is best, or who cannot be told apart from the top variant.

    Variants are ranked by mean accuracy (ties keep the summary's order). The top one is `best`
    only if it is significantly better (Holm-adjusted) than the runner-up AND than every other
    variant - a lower-ranked one with few seeds or a wide interval can stay indistinguishable even
    when the runner-up is not. Otherwise `best` is None. `tied_with_top` lists the top variant and
    every variant not significantly different from it, in rank order; `max_gap_points` is the
    largest |bound| of their 95 % difference intervals against the top one - how far apart the
    tied variants could plausibly be (None when nothing is tied). With one variant there is
    nothing to compare: best is None and runner_up is None.
    """
    if alpha is None:
        alpha = comparisons["alpha"]
    names = list(summary)
    ranked = sorted(names, key=lambda v: (-summary[v]["mean"], names.index(v)))
    top = ranked[0]
    result = {"top": top, "runner_up": None, "best": None, "tied_with_top": [top],
              "max_gap_points": None, "p_top_vs_runner_up": None, "alpha": float(alpha),
              "ranking": ranked}
    if len(ranked) == 1:
        return result
    runner_up = ranked[1]
    result["runner_up"] = runner_up
    result["p_top_vs_runner_up"] = find_pair(comparisons, top, runner_up)["p_adjusted"]
    gap = None
    for other in ranked[1:]:
        record = find_pair(comparisons, top, other)
        if not record["p_adjusted"] < alpha:
            result["tied_with_top"].append(other)
            bound = max(abs(record["ci_low"]), abs(record["ci_high"]))
            gap = bound if gap is None else max(gap, bound)
    result["max_gap_points"] = gap
    if len(result["tied_with_top"]) == 1:
        result["best"] = top
    return result
