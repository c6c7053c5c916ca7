"""The statistics behind "which variant is better": intervals, paired tests, the verdict (docs/statistics.md).

The input `correct_by_variant`: name -> bool (seeds, images) array, every variant on the same test images (paired).
Report outputs are JSON-able without NaN or infinity; accuracies and differences in percent/points.
"""

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats as _scipy_stats

from .text import signed

BOOTSTRAP_METHOD = "bootstrap (images × seeds)"
WILSON_METHOD = "wilson"
MCNEMAR_TEST = "mcnemar exact"
RUN_LEVEL_TEST = "run-level t (runs + images)"
SCOPE_VARIANTS = "variants"
SCOPE_MODELS = "two trained models"


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
    """Exact two-sided McNemar test of two runs on the same images (b: A right and B wrong, c: the reverse)."""
    a = np.asarray(a_correct, dtype=bool)
    b_arr = np.asarray(b_correct, dtype=bool)
    b = int(np.count_nonzero(a & ~b_arr))
    c = int(np.count_nonzero(~a & b_arr))
    p = 1.0 if b + c == 0 else float(_scipy_stats.binomtest(b, b + c, 0.5).pvalue)
    return {"b": b, "c": c, "p": min(1.0, p)}


def _clamp_chunk(chunk: int, n: int) -> int:
    return max(1, min(chunk, (2**31 - 1) // n))  # keep the flat int32 bincount index from overflowing


def _image_counts(rng, m: int, n: int) -> np.ndarray:
    """(m, n): how often each of n images is drawn in each of m bootstrap replicates (int32: ~4x faster)."""
    draws = rng.integers(0, n, size=(m, n), dtype=np.int32)
    draws += (np.arange(m, dtype=np.int32) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=m * n).reshape(m, n)


def bootstrap_accuracies(correct_by_variant: Mapping[str, np.ndarray], replicates: int,
                         seed: int = 0, chunk: int = 500) -> dict:
    """Bootstrap replicates of every variant's mean accuracy (percent): name -> (replicates,) array.

    Each replicate draws the test images (the same draw for every variant: paired) and, per variant, its seeds,
    so the spread counts both the finite test set and seed-to-seed variation.
    """
    names, arrays, n = _validate(correct_by_variant)
    chunk = _clamp_chunk(chunk, n)
    runs = np.concatenate(arrays, axis=0).T.astype(np.float64)  # (images, total runs): a column per run
    bounds = np.cumsum([0] + [a.shape[0] for a in arrays])
    image_ss, seed_ss = np.random.SeedSequence(seed).spawn(2)
    image_rng, seed_rng = np.random.default_rng(image_ss), np.random.default_rng(seed_ss)
    out = {name: np.empty(replicates) for name in names}
    for start in range(0, replicates, chunk):
        m = min(chunk, replicates - start)
        run_acc = (_image_counts(image_rng, m, n) @ runs) * (100.0 / n)  # (m, total runs)
        for name, lo, hi in zip(names, bounds[:-1], bounds[1:]):
            k = hi - lo
            if k == 1:
                out[name][start:start + m] = run_acc[:, lo]
            else:
                picks = seed_rng.integers(0, k, size=(m, k))
                seed_w = np.zeros((m, k))
                np.add.at(seed_w, (np.arange(m)[:, None], picks), 1.0 / k)
                out[name][start:start + m] = (run_acc[:, lo:hi] * seed_w).sum(1)
    return out


def bootstrap_means(values_by_name: Mapping[str, np.ndarray], replicates: int = 2000, seed: int = 0,
                    chunk: int = 500) -> dict:
    """Paired image bootstrap of per-image values (e.g. a cross-entropy): name -> (replicates,) means."""
    names = [str(k) for k in values_by_name]
    if not names:
        raise ValueError("no values given")
    matrix = np.stack([np.asarray(v, dtype=np.float64) for v in values_by_name.values()], axis=1)  # (n, names)
    if matrix.ndim != 2 or not np.isfinite(matrix).all():
        raise ValueError(f"need finite (images,) arrays of one length per name, got shape {matrix.shape}")
    n = matrix.shape[0]
    rng = np.random.default_rng(seed)
    out = np.empty((replicates, len(names)))
    chunk = _clamp_chunk(chunk, n)
    for start in range(0, replicates, chunk):
        m = min(chunk, replicates - start)
        out[start:start + m] = _image_counts(rng, m, n) @ matrix / n
    return {name: out[:, j] for j, name in enumerate(names)}


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


# Fewer replicates than this in a tail: the rank p is mostly its floor, so `bootstrap_p` takes the normal one.
MIN_TAIL = 10


def _one_sided(diff: np.ndarray, x0: float, upper: bool) -> tuple[float, str]:
    """Bootstrap p of "diff <= x0" (or ">= x0" when `upper`): the rank form, else the normal approximation."""
    b = len(diff)
    count = np.count_nonzero(diff >= x0 if upper else diff <= x0)
    if count >= MIN_TAIL:
        return float((1 + count) / (1 + b)), "rank"
    sd = float(np.std(diff, ddof=1)) if b > 1 else 0.0
    z = (x0 - float(np.mean(diff))) / sd if sd > 0 else (np.inf if x0 > np.mean(diff) else -np.inf)
    return float(_scipy_stats.norm.sf(z) if upper else _scipy_stats.norm.cdf(z)), "normal"


def bootstrap_p(diff: np.ndarray) -> tuple[float, str]:
    """Two-sided bootstrap p of "no difference" (2 x the smaller tail) and how it was taken ("rank" or "normal")."""
    low, how_low = _one_sided(diff, 0.0, upper=False)
    high, how_high = _one_sided(diff, 0.0, upper=True)
    p, how = (low, how_low) if low <= high else (high, how_high)
    return float(min(1.0, 2 * p)), how


def accuracy_summary(correct_by_variant: Mapping[str, np.ndarray], confidence: float = 0.95,
                     replicates: int | None = None, seed: int = 0, boot: Mapping | None = None) -> dict:
    """Per variant: mean and std over seeds, per-seed accuracies and an interval for the mean (Wilson for one
    seed, the bootstrap for several)."""
    names, arrays, n = _validate(correct_by_variant)
    if boot is None and any(a.shape[0] > 1 for a in arrays):
        if replicates is None:
            raise ValueError("a variant has several seeds: give `replicates` (or `boot`) for its bootstrap interval")
        boot = bootstrap_accuracies(correct_by_variant, replicates=replicates, seed=seed)
    summary = {}
    for name, arr in zip(names, arrays):
        per_seed = 100.0 * arr.mean(1)
        k = arr.shape[0]
        if k == 1:
            (low, high), method = wilson_interval(int(arr.sum()), n, confidence), WILSON_METHOD
        else:
            (low, high), method = _percentile_interval(boot[name], confidence), BOOTSTRAP_METHOD
        summary[name] = {"seeds": int(k), "n_images": n, "mean": float(per_seed.mean()),
                         "std": float(per_seed.std(ddof=1)) if k > 1 else None,
                         "per_seed": [float(v) for v in per_seed], "ci_low": low, "ci_high": high,
                         "confidence": float(confidence), "interval_method": method}
    return summary


def holm(pvalues) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    return [float(v) for v in adjusted]


def ranking_intervals(values_by_name: Mapping[str, np.ndarray], confidence: float = 0.95, replicates: int = 2000,
                      seed: int = 0) -> dict:
    """A ranking by the mean of a per-image value (lower first) with paired bootstrap intervals, per name and for
    its difference to the lowest."""
    boot = bootstrap_means(values_by_name, replicates=replicates, seed=seed)
    means = {str(k): float(np.mean(v)) for k, v in values_by_name.items()}
    order = sorted(means, key=means.get)
    lowest = order[0]
    rows = {}
    for name in order:
        low, high = _percentile_interval(boot[name], confidence)
        d_low, d_high = _percentile_interval(boot[name] - boot[lowest], confidence)
        rows[name] = {"mean": means[name], "ci_low": low, "ci_high": high,
                      "diff_to_lowest": means[name] - means[lowest], "diff_ci_low": d_low, "diff_ci_high": d_high}
    return {"order": order, "lowest": lowest, "confidence": float(confidence), "replicates": int(replicates),
            "tied_with_lowest": [n for n in order[1:] if rows[n]["diff_ci_low"] <= 0], "rows": rows}


def run_variance(runs: np.ndarray) -> tuple | None:
    """One variant's run-to-run variation from its (..., seeds, images) correctness: (s2, w, df), None for one seed.

    s2: variance over seeds of the run accuracy; w: mean over images of the variance over seeds of an image's
    correctness; df = seeds - 1.
    """
    x = np.asarray(runs, dtype=np.float64)
    k = x.shape[-2]
    if k < 2:
        return None
    p = x.mean(-2)
    s2, w = x.mean(-1).var(-1, ddof=1), (p * (1 - p)).mean(-1) * k / (k - 1)
    return (float(s2), float(w), k - 1) if np.ndim(s2) == 0 else (s2, w, k - 1)


def pooled_run_variance(arrays: Sequence[np.ndarray]) -> tuple | None:
    """`run_variance` pooled over the variants with several seeds (weighted by df); None when none has two."""
    parts = [v for v in (run_variance(a) for a in arrays) if v is not None]
    if not parts:
        return None
    df = sum(d for _, _, d in parts)
    return (sum(s2 * d for s2, _, d in parts) / df, sum(w * d for _, w, d in parts) / df, df)


def run_level_difference(a_runs, b_runs, confidence: float = 0.95, *, smallest_effect: float,
                         pooled: tuple[float, float, int] | None = None) -> dict:
    """The run-level test of variant A against B: is the difference of expected accuracies zero (two-sided), and
    is it within ±smallest_effect points (TOST)? Variance: the runs' part (a one-seed side borrows `pooled`) plus
    the paired image part less what it already holds of the runs; Welch-Satterthwaite df (docs/statistics.md).
    """
    xa, xb = np.asarray(a_runs, dtype=np.float64), np.asarray(b_runs, dtype=np.float64)
    n = xa.shape[-1]
    acc_a, acc_b = xa.mean(-1), xb.mean(-1)  # (..., k): each run's accuracy
    diff = acc_a.mean(-1) - acc_b.mean(-1)
    pa, pb = xa.mean(-2), xb.mean(-2)  # (..., n): each image's share of runs right

    def side(x, acc, p):
        k = x.shape[-2]
        if k >= 2:
            return acc.var(-1, ddof=1), (p * (1 - p)).mean(-1) * k / (k - 1), k - 1, k, False
        if pooled is None:
            raise ValueError("a variant with one seed needs a pooled run variance (another variant with 2+ seeds)")
        return pooled[0], pooled[1], pooled[2], 1, True

    s2a, wa, dfa, ka, borrowed_a = side(xa, acc_a, pa)
    s2b, wb, dfb, kb, borrowed_b = side(xb, acc_b, pb)
    v_img = np.maximum(0.0, (pa - pb).var(-1, ddof=1) - wa / ka - wb / kb) / n
    ra, rb = s2a / ka, s2b / kb
    se2 = ra + rb + v_img
    # A borrowed variance is partly the other side's own estimate: count the run parts as one, smaller df.
    if borrowed_a or borrowed_b:
        denom = (ra + rb) ** 2 / min(dfa, dfb)
    else:
        denom = ra**2 / dfa + rb**2 / dfb
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(denom > 0, se2**2 / np.where(denom > 0, denom, 1.0), np.inf)
    se = np.sqrt(se2)
    d = smallest_effect / 100
    positive = se > 0
    safe = np.where(positive, se, 1.0)
    t_dist = _scipy_stats.t
    p = np.where(positive, 2 * t_dist.sf(np.abs(diff) / safe, df), np.where(diff == 0, 1.0, 0.0))
    # TOST: H0 diff <= -d (reject when diff is well above -d) and H0 diff >= d.
    p_low = np.where(positive, t_dist.sf((diff + d) / safe, df), np.where(diff > -d, 0.0, 1.0))
    p_high = np.where(positive, t_dist.cdf((diff - d) / safe, df), np.where(diff < d, 0.0, 1.0))
    q = t_dist.ppf(0.5 + confidence / 2, df)
    # Accuracy differences lie in [-100, 100] points; with 2 seeds and df near 1 the bounds can pass them.
    return {"diff": 100 * diff, "se": 100 * se, "df": df, "ci_low": np.maximum(-100.0, 100 * (diff - q * se)),
            "ci_high": np.minimum(100.0, 100 * (diff + q * se)), "p": np.minimum(1.0, p),
            "tost_p": np.maximum(p_low, p_high), "borrowed": borrowed_a or borrowed_b}


def run_level_contrast(arrays: Sequence[np.ndarray], weights: Sequence[float], confidence: float = 0.95) -> dict:
    """The run-level test (as `run_level_difference`) of a contrast Σ w_j · (expected accuracy of variant j),
    e.g. the interaction (A' − B') − (A − B): is it zero? Every variant needs 2+ seeds."""
    xs = [np.asarray(x, dtype=np.float64) for x in arrays]
    parts = [run_variance(x) for x in xs]
    if any(part is None for part in parts):
        raise ValueError("every variant of a contrast needs at least 2 seeds")
    n = xs[0].shape[1]
    diff = sum(w * x.mean() for w, x in zip(weights, xs))
    runs = [w * w * s2 / x.shape[0] for w, x, (s2, _, _) in zip(weights, xs, parts)]
    image = max(0.0, float(sum(w * x.mean(0) for w, x in zip(weights, xs)).var(ddof=1))
                - sum(w * w * v / x.shape[0] for w, x, (_, v, _) in zip(weights, xs, parts))) / n
    se2 = sum(runs) + image
    denom = sum(r * r / d for r, (_, _, d) in zip(runs, parts))
    df = se2 * se2 / denom if denom > 0 else np.inf
    se = float(np.sqrt(se2))
    if se > 0:
        p, q = float(2 * _scipy_stats.t.sf(abs(diff) / se, df)), float(_scipy_stats.t.ppf(0.5 + confidence / 2, df))
    else:
        p, q = (1.0 if diff == 0 else 0.0), 0.0
    return {"diff": 100 * float(diff), "se": 100 * se, "df": float(df), "ci_low": 100 * float(diff - q * se),
            "ci_high": 100 * float(diff + q * se), "p": min(1.0, p)}


def _paired_interval(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float]:
    """Normal interval (points) for the accuracy difference of two trained models on the same images."""
    d = a.astype(np.float64) - b.astype(np.float64)
    half = _z(confidence) * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0
    return float(100 * (d.mean() - half)), float(100 * (d.mean() + half))


def answer(outcome: str, diff: float, ci_low: float, ci_high: float, smallest_effect: float) -> str:
    """The words for one question "does A beat B?" (A - B oriented), from the outcome of its tests."""
    if outcome == "difference":
        return "yes" if diff > 0 else "no, the opposite"
    if outcome == "equivalent":
        return f"no difference larger than {smallest_effect:g} points"
    interval = f"[{signed(ci_low)}, {signed(ci_high)}]"
    if outcome == "models only":
        return f"inconclusive: {interval}; one seed each, so the test compares two trained models, not the variants"
    return f"inconclusive: {interval}"


def _decide(record: dict, alpha: float) -> None:
    """significant, equivalent, outcome and answer of a record from its adjusted p-values."""
    variants = record["scope"] == SCOPE_VARIANTS
    record["significant"] = bool(record["p_adjusted"] < alpha)
    record["equivalent"] = bool(variants and not record["significant"] and record["tost_p_adjusted"] is not None
                                and record["tost_p_adjusted"] < alpha)
    record["outcome"] = ("models only" if not variants else "difference" if record["significant"]
                         else "equivalent" if record["equivalent"] else "inconclusive")
    record["answer"] = answer(record["outcome"], record["diff_points"], record["ci_low"], record["ci_high"],
                              record["smallest_effect"])


def _adjust(records: list[dict], alpha: float) -> None:
    """Holm over `records` (one family), for the tests of a difference and, separately, for TOST."""
    for record, adjusted in zip(records, holm([r["p"] for r in records])):
        record["p_adjusted"] = adjusted
    with_tost = [r for r in records if r["tost_p"] is not None]
    for record, adjusted in zip(with_tost, holm([r["tost_p"] for r in with_tost])):
        record["tost_p_adjusted"] = adjusted
    for record in records:
        record.setdefault("tost_p_adjusted", None)
        _decide(record, alpha)


def pairwise_comparisons(correct_by_variant: Mapping[str, np.ndarray], order: Sequence[str] | None = None, *,
                         alpha: float, smallest_effect: float, confidence: float = 0.95,
                         replicates: int | None = None, seed: int = 0, boot: Mapping | None = None,
                         method: str = "run-level", groups: Mapping[str, str] | None = None) -> dict:
    """Every unordered pair (A, B) of variants, oriented A - B in `order`, tested and Holm-adjusted as one family.

    Two one-seed variants: McNemar (about the two trained models only). Otherwise `method` "run-level" (a one-seed
    variant borrows the run variance pooled over its group in `groups`, else over all variants) or "bootstrap"
    (kept for comparison in the calibration benchmark).
    """
    names, arrays, n = _validate(correct_by_variant)
    by_name = dict(zip(names, arrays))
    if order is None:
        order = names
    order = [str(v) for v in order]
    groups = dict(groups or {})
    pools = {None: pooled_run_variance(arrays)}
    for group in set(groups.values()):
        pools[group] = pooled_run_variance([by_name[n] for n in names if groups.get(n) == group])

    def pool_for(name):  # (pooled variance, where from) for a one-seed variant: its group's, else all variants'
        own = pools[groups[name]] if name in groups else None
        return (own, groups[name]) if own is not None else (pools[None], "all")

    if method == "bootstrap":
        if boot is None:
            if replicates is None:
                raise ValueError('method "bootstrap" needs `replicates` (or `boot`)')
            boot = bootstrap_accuracies(correct_by_variant, replicates=replicates, seed=seed)
        else:
            seed = None  # the caller's bootstrap: its seed is not known here
        replicates = int(len(next(iter(boot.values()))))
    else:
        replicates = seed = None

    pairs = []
    for a, b in itertools.combinations(order, 2):
        xa, xb = by_name[a], by_name[b]
        record = {"a": a, "b": b, "seeds_a": int(xa.shape[0]), "seeds_b": int(xb.shape[0]),
                  "diff_points": float(100.0 * (xa.mean(1).mean() - xb.mean(1).mean())),
                  "smallest_effect": float(smallest_effect), "mcnemar": None, "per_seed_mcnemar": None,
                  "borrowed": False, "pooled_from": None, "se_points": None, "df": None, "p_method": None}
        if xa.shape[0] == 1 and xb.shape[0] == 1:
            record["mcnemar"] = mcnemar_exact(xa[0], xb[0])
            record["ci_low"], record["ci_high"] = _paired_interval(xa[0], xb[0], confidence)
            record.update(p=record["mcnemar"]["p"], tost_p=None, test=MCNEMAR_TEST, scope=SCOPE_MODELS)
        else:
            record["per_seed_mcnemar"] = [{"seed_row": i, **mcnemar_exact(xa[i], xb[i])}
                                          for i in range(min(xa.shape[0], xb.shape[0]))]
            record["scope"] = SCOPE_VARIANTS
            if method == "run-level":
                one_seed = a if xa.shape[0] == 1 else b if xb.shape[0] == 1 else None
                pooled, record["pooled_from"] = pool_for(one_seed) if one_seed else (None, None)
                r = run_level_difference(xa, xb, confidence, smallest_effect=smallest_effect, pooled=pooled)
                record.update(ci_low=float(r["ci_low"]), ci_high=float(r["ci_high"]), p=float(r["p"]),
                              tost_p=float(r["tost_p"]), se_points=float(r["se"]), borrowed=r["borrowed"],
                              df=None if np.isinf(r["df"]) else float(r["df"]), test=RUN_LEVEL_TEST)
            else:
                diff = boot[a] - boot[b]
                record["ci_low"], record["ci_high"] = _percentile_interval(diff, confidence)
                record["p"], record["p_method"] = bootstrap_p(diff)
                record["tost_p"] = max(_one_sided(diff, -smallest_effect, upper=False)[0],
                                       _one_sided(diff, smallest_effect, upper=True)[0])
                record["test"] = BOOTSTRAP_METHOD
        pairs.append(record)

    _adjust(pairs, alpha)
    return {"order": order, "alpha": float(alpha), "confidence": float(confidence), "method": method,
            "smallest_effect": float(smallest_effect), "replicates": replicates,
            "seed": None if seed is None else int(seed),
            "pooled_run_sd": None if pools[None] is None else float(100 * np.sqrt(pools[None][0])),
            "pooled_run_sd_by_group": {g: float(100 * np.sqrt(v[0])) for g, v in pools.items()
                                       if g is not None and v is not None} or None,
            "pairs": pairs}


def find_pair(comparisons: Mapping, a: str, b: str) -> dict:
    """The record for A vs B from `pairwise_comparisons` output, oriented A - B whichever way it was stored."""
    for record in comparisons["pairs"]:
        if (record["a"], record["b"]) == (a, b):
            return dict(record)
        if (record["a"], record["b"]) == (b, a):
            flipped = dict(record, a=a, b=b, seeds_a=record["seeds_b"], seeds_b=record["seeds_a"],
                           diff_points=-record["diff_points"],
                           ci_low=-record["ci_high"], ci_high=-record["ci_low"])
            flipped["answer"] = answer(flipped["outcome"], flipped["diff_points"], flipped["ci_low"],
                                       flipped["ci_high"], flipped["smallest_effect"])
            if record["mcnemar"] is not None:
                m = record["mcnemar"]
                flipped["mcnemar"] = {"b": m["c"], "c": m["b"], "p": m["p"]}
            if record["per_seed_mcnemar"] is not None:
                flipped["per_seed_mcnemar"] = [dict(m, b=m["c"], c=m["b"]) for m in record["per_seed_mcnemar"]]
            return flipped
    raise KeyError(f"no comparison of {a!r} and {b!r} in {comparisons.get('order')}")


def detectable_effect(record: Mapping, alpha: float, power: float = 0.8) -> float:
    """The smallest true difference (points) the record's two-sided test finds with probability `power`."""
    if record.get("se_points") is not None:
        se, df = record["se_points"], record["df"] if record.get("df") is not None else np.inf
    else:
        se, df = (record["ci_high"] - record["ci_low"]) / (2 * _z(record.get("confidence", 0.95))), np.inf
    t = _scipy_stats.t
    return float((t.ppf(1 - alpha / 2, df) + t.ppf(power, df)) * se)


def answer_questions(comparisons: Mapping, questions: Sequence[Mapping], alpha: float | None = None) -> list[dict]:
    """The pre-specified questions ({a, b, ...}: "does A beat B?") as one Holm family of their own; `detectable`:
    the smallest difference found with 80 % power at Holm's first and last step."""
    if alpha is None:
        alpha = comparisons["alpha"]
    records = []
    for q in questions:
        record = find_pair(comparisons, q["a"], q["b"])
        record["p_adjusted_all_pairs"] = record["p_adjusted"]
        record.pop("tost_p_adjusted", None)
        records.append({**q, **record})
    _adjust(records, alpha)
    for record in records:
        record["detectable"] = [detectable_effect(record, alpha / len(records)), detectable_effect(record, alpha)]
    return records


def verdict(summary: Mapping[str, Mapping], comparisons: Mapping, alpha: float | None = None) -> dict:
    """Who is best, or who cannot be told apart from the top variant: `best` only with several seeds and
    significantly better than every other variant."""
    if alpha is None:
        alpha = comparisons["alpha"]
    names = list(summary)
    ranked = sorted(names, key=lambda v: (-summary[v]["mean"], names.index(v)))
    top = ranked[0]
    result = {"top": top, "runner_up": None, "best": None, "tied_with_top": [top], "equivalent_to_top": [],
              "max_gap_points": None, "p_top_vs_runner_up": None, "alpha": float(alpha), "ranking": ranked,
              "single_seed_top": summary[top]["seeds"] < 2,
              "scope": SCOPE_MODELS if summary[top]["seeds"] < 2 else SCOPE_VARIANTS}
    if len(ranked) == 1:
        return result
    runner_up = ranked[1]
    result["runner_up"] = runner_up
    result["p_top_vs_runner_up"] = find_pair(comparisons, top, runner_up)["p_adjusted"]
    gap = None
    for other in ranked[1:]:
        record = find_pair(comparisons, top, other)
        if not record["significant"]:
            result["tied_with_top"].append(other)
            if record["equivalent"]:
                result["equivalent_to_top"].append(other)
            bound = max(abs(record["ci_low"]), abs(record["ci_high"]))
            gap = bound if gap is None else max(gap, bound)
    result["max_gap_points"] = gap
    if len(result["tied_with_top"]) == 1 and not result["single_seed_top"]:
        result["best"] = top
    return result
