"""cmpt726.stats on tiny synthetic correctness arrays: intervals, paired tests, Holm, the verdict."""

import json
import math
import runpy

import numpy as np
import pytest
from conftest import REPO
from scipy.stats import binomtest
from scipy.stats import t as t_dist

from cmpt726 import stats
from cmpt726.config import schema_default

# The report's alpha and δ as a run whose config leaves report.* out uses them.
REPORT = {"alpha": schema_default("report.alpha"), "smallest_effect": schema_default("report.smallest_effect")}
Z95 = 1.959963984540054  # the 97.5 % normal quantile


def planted(n: int, rate: float, rng) -> np.ndarray:
    """Exactly round(rate * n) of n images right, at random positions."""
    row = np.zeros(n, dtype=bool)
    row[rng.choice(n, size=round(rate * n), replace=False)] = True
    return row


def test_wilson_closed_form_score_test_and_table():
    # No successes: [0, z^2 / (n + z^2)] (27.75 %).
    assert stats.wilson_interval(0, 10) == (0.0, pytest.approx(100 * Z95**2 / (10 + Z95**2), abs=1e-9))
    # The bounds are the p with |phat - p| / sqrt(p (1 - p) / n) = z; the tabulated 8/10 is 49.0 % .. 94.3 %.
    for bound in stats.wilson_interval(8, 10):
        p = bound / 100
        assert abs(0.8 - p) / math.sqrt(p * (1 - p) / 10) == pytest.approx(Z95, rel=1e-9)
    assert tuple(round(x, 1) for x in stats.wilson_interval(8, 10)) == (49.0, 94.3)


@pytest.mark.parametrize("correct,n,confidence", [(8, 10, 0.95), (8700, 10_000, 0.95), (3, 50, 0.9), (50, 50, 0.99)])
def test_wilson_matches_scipy(correct, n, confidence):
    ci = binomtest(correct, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert stats.wilson_interval(correct, n, confidence) == pytest.approx((100 * ci.low, 100 * ci.high), abs=1e-9)


@pytest.mark.parametrize("correct,n", [(1, 0), (11, 10)])
def test_wilson_refuses_nonsense(correct, n):
    with pytest.raises(ValueError):
        stats.wilson_interval(correct, n)


def test_mcnemar_counts_and_hand_worked_p():
    # A right / B wrong on 5 images, A wrong / B right on 1; exact two-sided p = 2 * P(Bin(6, 1/2) <= 1) = 14/64.
    a = np.array([1, 1, 1, 1, 1, 0, 1, 1, 0, 0], dtype=bool)
    b = np.array([0, 0, 0, 0, 0, 1, 1, 1, 0, 0], dtype=bool)
    result = stats.mcnemar_exact(a, b)
    assert (result["b"], result["c"], result["p"]) == (5, 1, pytest.approx(14 / 64))
    swapped = stats.mcnemar_exact(b, a)
    assert (swapped["b"], swapped["c"], swapped["p"]) == (1, 5, result["p"])
    same = np.array([True, False, True])  # no discordant pairs
    assert stats.mcnemar_exact(same, same.copy()) == {"b": 0, "c": 0, "p": 1.0}


def test_holm_by_hand_and_monotone_never_below_raw():
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; the running max lifts the last.
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert stats.holm([0.2]) == pytest.approx([0.2]) and stats.holm([]) == []
    rng = np.random.default_rng(3)
    for _ in range(50):
        p = rng.random(rng.integers(1, 12)) ** 3
        adjusted = np.array(stats.holm(p))
        assert np.all(np.diff(adjusted[np.argsort(p)]) >= 0)
        assert np.all(adjusted >= p) and np.all(adjusted <= 1)


def test_bootstrap_is_deterministic_under_a_seed():
    rng = np.random.default_rng(0)
    data = {"a": rng.random((3, 300)) < 0.8, "b": rng.random((1, 300)) < 0.7}
    one, two, other = (stats.bootstrap_accuracies(data, replicates=700, seed=s, chunk=200) for s in (5, 5, 6))
    for name in data:
        assert one[name].shape == (700,)
        np.testing.assert_array_equal(one[name], two[name])
        assert not np.array_equal(one[name], other[name])


def test_bootstrap_replicate_equals_a_direct_resample():
    # The count-vector shortcut against one replicate redrawn by hand (chunk=1: replicate r uses draw r).
    rng = np.random.default_rng(1)
    data = {"a": rng.random((3, 50)) < 0.6, "b": rng.random((2, 50)) < 0.5}
    boot = stats.bootstrap_accuracies(data, replicates=4, seed=9, chunk=1)
    image_rng, seed_rng = map(np.random.default_rng, np.random.SeedSequence(9).spawn(2))
    for r in range(4):
        images = image_rng.integers(0, 50, size=(1, 50), dtype=np.int32)[0]
        for name, arr in data.items():
            seeds = seed_rng.integers(0, arr.shape[0], size=(1, arr.shape[0]))[0]
            assert boot[name][r] == pytest.approx(np.mean([100 * arr[s, images].mean() for s in seeds]), abs=1e-9)


def test_bootstrap_resamples_the_same_images_for_every_variant():
    # B is A with 20 right answers made wrong: paired, A - B counts those images drawn (never < 0, ~1 point);
    # unpaired draws would spread several points around 1.
    a = planted(2000, 0.8, np.random.default_rng(13))
    b = a.copy()
    b[np.flatnonzero(a)[:20]] = False
    boot = stats.bootstrap_accuracies({"A": a, "B": b}, replicates=2000, seed=0)
    diff = boot["A"] - boot["B"]
    assert diff.min() >= 0 and np.percentile(diff, 97.5) - np.percentile(diff, 2.5) < 1.5


def test_one_seed_bootstrap_interval_roughly_matches_wilson():
    row = planted(10_000, 0.87, np.random.default_rng(2))
    boot = stats.bootstrap_accuracies({"x": row[None]}, replicates=4000, seed=0)
    low, high = np.percentile(boot["x"], [2.5, 97.5])
    w_low, w_high = stats.wilson_interval(int(row.sum()), 10_000)
    assert abs(low - w_low) < 0.3 and abs(high - w_high) < 0.3


def test_seed_noise_widens_the_two_level_interval():
    # Seeds at 60, 75, 90 % on the same images: only the seed level of the bootstrap sees that uncertainty; an
    # image-only bootstrap of the seeds' mean per image does not.
    rng = np.random.default_rng(4)
    noisy = {"x": np.stack([planted(2000, r, rng) for r in (0.60, 0.75, 0.90)])}
    two = stats.bootstrap_accuracies(noisy, replicates=2000, seed=0)["x"]
    one = stats.bootstrap_means({"x": 100 * noisy["x"].mean(0)}, replicates=2000, seed=0)["x"]
    width_two, width_one = (np.subtract(*np.percentile(x, [97.5, 2.5])) for x in (two, one))
    assert width_two > 3 * width_one
    summary = stats.accuracy_summary(noisy, replicates=2000, seed=0)["x"]  # reports the two-level interval
    assert summary["ci_high"] - summary["ci_low"] == pytest.approx(width_two)


def test_accuracy_summary_fields_and_interval_choice():
    rng = np.random.default_rng(5)
    multi, single = rng.random((3, 400)) < 0.7, rng.random(400) < 0.8  # 1-D: one seed
    summary = stats.accuracy_summary({"multi": multi, "single": single}, replicates=1000, seed=1)
    json.dumps(summary, allow_nan=False)
    m, per_seed = summary["multi"], 100 * multi.mean(1)
    assert (m["seeds"], m["n_images"], m["interval_method"]) == (3, 400, "bootstrap (images × seeds)")
    assert m["per_seed"] == pytest.approx(per_seed.tolist()) and m["mean"] == pytest.approx(per_seed.mean())
    assert m["std"] == pytest.approx(np.std(per_seed, ddof=1)) and m["ci_low"] < m["mean"] < m["ci_high"]
    s = summary["single"]
    assert (s["seeds"], s["std"], s["interval_method"]) == (1, None, "wilson")
    assert (s["ci_low"], s["ci_high"]) == stats.wilson_interval(int(single.sum()), 400)


def test_inputs_must_share_the_test_images():
    with pytest.raises(ValueError, match="images"):
        stats.accuracy_summary({"a": np.ones((1, 10), bool), "b": np.ones((1, 11), bool)})
    with pytest.raises(ValueError, match="boolean"):
        stats.accuracy_summary({"a": np.full((1, 10), 0.5)})


def planted_family(seeds: int, rng) -> dict:
    """A right on 80 %, B on 60 % of the same 2,000 images; C an exact copy of A's scores."""
    a = np.stack([planted(2000, 0.80, rng) for _ in range(seeds)])
    return {"A": a, "B": np.stack([planted(2000, 0.60, rng) for _ in range(seeds)]), "C": a.copy()}


@pytest.mark.parametrize("seeds,test", [(1, "mcnemar exact"), (3, "run-level t (runs + images)")])
def test_planted_difference_is_found_and_a_copy_is_not(seeds, test):
    comparisons = stats.pairwise_comparisons(planted_family(seeds, np.random.default_rng(10 + seeds)),
                                             replicates=2000, seed=0, **REPORT)
    json.dumps(comparisons, allow_nan=False)
    assert len(comparisons["pairs"]) == 3
    ab, copy = stats.find_pair(comparisons, "A", "B"), stats.find_pair(comparisons, "A", "C")
    assert ab["test"] == copy["test"] == test and ab["diff_points"] == pytest.approx(20.0)
    assert 15 < ab["ci_low"] < 20 < ab["ci_high"] < 25 and ab["p_adjusted"] < 0.05 and ab["significant"]
    assert copy["diff_points"] == 0 and copy["ci_low"] <= 0 <= copy["ci_high"] and not copy["significant"]
    if seeds == 1:
        assert copy["p"] == 1.0 and copy["mcnemar"] == {"b": 0, "c": 0, "p": 1.0} and ab["per_seed_mcnemar"] is None
        # One seed each: a statement about two trained networks, never an answer about the variants.
        assert ab["scope"] == copy["scope"] == "two trained models"
        assert ab["outcome"] == "models only" and ab["answer"].startswith("inconclusive")
    else:
        # Per-seed McNemar is recorded: seed i vs seed i of an exact copy never disagrees.
        assert copy["p"] > 0.5 and [m["p"] for m in copy["per_seed_mcnemar"]] == [1.0, 1.0, 1.0]
        assert all(m["p"] < 1e-6 for m in ab["per_seed_mcnemar"])
    raw = [r["p"] for r in comparisons["pairs"]]  # Holm over the family of three pairs
    assert [r["p_adjusted"] for r in comparisons["pairs"]] == pytest.approx(stats.holm(raw))


def test_bootstrap_p_below_its_floor_comes_from_the_normal_approximation():
    # No replicate crosses 0: the rank p's floor 2 / (B + 1) would be pushed above alpha by Holm; the normal
    # approximation goes below it. With enough replicates in the smaller tail the rank form is kept.
    comparisons = stats.pairwise_comparisons(planted_family(3, np.random.default_rng(7)), replicates=999, seed=0,
                                             method="bootstrap", **REPORT)
    ab = stats.find_pair(comparisons, "A", "B")
    assert (ab["test"], ab["p_method"]) == ("bootstrap (images × seeds)", "normal") and ab["p"] < 1e-6
    diff = np.random.default_rng(0).normal(0.3, 1.0, 5000)
    assert stats.bootstrap_p(diff) == (pytest.approx(2 * (1 + np.count_nonzero(diff <= 0)) / 5001), "rank")


def test_bootstrap_with_too_few_replicates_for_holm_still_reaches_significance():
    # 45 pairs, B = 1000: the rank p's floor 2 / (B + 1) times Holm's 45 is above alpha; a 10-point gap must
    # reach significance all the same.
    rng = np.random.default_rng(30)
    data = {f"v{j}": rng.random((3, 1000)) < (0.8 if j == 0 else 0.7) for j in range(10)}
    comparisons = stats.pairwise_comparisons(data, replicates=1000, seed=0, method="bootstrap", **REPORT)
    assert len(comparisons["pairs"]) * 2 / (1000 + 1) > comparisons["alpha"]
    record = stats.find_pair(comparisons, "v0", "v1")
    assert record["p_adjusted"] < 0.05 and record["significant"]


def test_mixed_seed_counts_borrow_the_pooled_run_variance():
    rng = np.random.default_rng(8)
    data = {"one": planted(500, 0.7, rng), "three": rng.random((3, 500)) < 0.7}
    comparisons = stats.pairwise_comparisons(data, **REPORT)
    record = comparisons["pairs"][0]
    assert (record["test"], record["scope"]) == ("run-level t (runs + images)", "variants")
    assert record["borrowed"] and len(record["per_seed_mcnemar"]) == 1
    s2, _, df = stats.run_variance(data["three"])  # two variants: the pool is the 3-seed one's run variance
    assert comparisons["pooled_run_sd"] == pytest.approx(100 * np.sqrt(s2)) and df == 2


def test_find_pair_orientation():
    comparisons = stats.pairwise_comparisons(planted_family(1, np.random.default_rng(12)), **REPORT)
    forward = stats.find_pair(comparisons, "A", "B")
    assert forward["p_adjusted"] >= forward["p"]  # Holm over the whole family, not just this pair
    backward = stats.find_pair(comparisons, "B", "A")
    assert (backward["a"], backward["b"], backward["diff_points"]) == ("B", "A", -forward["diff_points"])
    assert (backward["ci_low"], backward["ci_high"]) == (-forward["ci_high"], -forward["ci_low"])
    assert backward["mcnemar"]["b"] == forward["mcnemar"]["c"] and backward["p_adjusted"] == forward["p_adjusted"]
    with pytest.raises(KeyError):
        stats.find_pair(comparisons, "A", "nobody")


def run_verdict(data):
    summary = stats.accuracy_summary(data, replicates=2000, seed=0)
    comparisons = stats.pairwise_comparisons(data, replicates=2000, seed=0, **REPORT)
    result = stats.verdict(summary, comparisons)
    json.dumps(result, allow_nan=False)
    return result, comparisons


def test_verdict_names_a_clear_winner_only_from_several_seeds():
    rng = np.random.default_rng(20)
    data = {name: rng.random((3, 2000)) < rate for name, rate in [("low", 0.60), ("high", 0.90), ("mid", 0.70)]}
    result, _ = run_verdict(data)
    assert (result["top"], result["runner_up"], result["best"], result["scope"]) == ("high", "mid", "high", "variants")
    assert result["tied_with_top"] == ["high"] and result["max_gap_points"] is None
    assert result["p_top_vs_runner_up"] < 0.05
    # The same gaps from one seed each: the trained models differ, but no variant is named best.
    single, _ = run_verdict({name: runs[:1] for name, runs in data.items()})
    assert single["tied_with_top"] == ["high"] and single["p_top_vs_runner_up"] < 0.05
    assert single["best"] is None and single["single_seed_top"] and single["scope"] == "two trained models"


def test_verdict_ties_near_identical_top_variants():
    rng = np.random.default_rng(21)
    first = planted(2000, 0.80, rng)
    second = first.copy()
    second[np.flatnonzero(first)[:2]] = False  # two images fewer: 80.0 % vs 79.9 %
    result, comparisons = run_verdict({"second": second, "far": planted(2000, 0.60, rng), "first": first})
    assert (result["top"], result["runner_up"], result["best"]) == ("first", "second", None)
    assert result["tied_with_top"] == ["first", "second"]
    record = stats.find_pair(comparisons, "first", "second")
    assert result["max_gap_points"] == max(abs(record["ci_low"]), abs(record["ci_high"]))
    assert result["p_top_vs_runner_up"] == record["p_adjusted"] >= 0.05


def test_verdict_with_three_seeds_and_a_single_variant():
    rng = np.random.default_rng(22)
    data = {name: np.stack([planted(1000, rate, rng) for _ in range(3)]) for name, rate in [("a", 0.85), ("b", 0.70)]}
    assert run_verdict(data)[0]["best"] == "a"
    alone, _ = run_verdict({"a": data["a"]})
    assert (alone["best"], alone["runner_up"], alone["tied_with_top"]) == (None, None, ["a"])


def test_run_level_difference_by_hand():
    # A: runs at 3/4, 2/4, 3/4; B: 1/4, 2/4. Per-run accuracies give the run part, the images the rest.
    a = np.array([[1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1]], dtype=bool)
    b = np.array([[1, 0, 0, 0], [0, 1, 0, 1]], dtype=bool)
    r = stats.run_level_difference(a, b, smallest_effect=5.0)
    acc_a, acc_b = a.mean(1), b.mean(1)
    diff = acc_a.mean() - acc_b.mean()
    pa, pb = a.mean(0), b.mean(0)
    wa, wb = (pa * (1 - pa)).mean() * 3 / 2, (pb * (1 - pb)).mean() * 2 / 1
    v_img = max(0.0, np.var(pa - pb, ddof=1) - wa / 3 - wb / 2) / 4
    ra, rb = np.var(acc_a, ddof=1) / 3, np.var(acc_b, ddof=1) / 2
    se = np.sqrt(ra + rb + v_img)
    df = (ra + rb + v_img) ** 2 / (ra**2 / 2 + rb**2 / 1)
    q = t_dist.ppf(0.975, df)
    tost = max(t_dist.sf((diff + 0.05) / se, df), t_dist.cdf((diff - 0.05) / se, df))
    got = [float(r[k]) for k in ("diff", "se", "df", "p", "ci_low", "ci_high", "tost_p")]
    assert got == pytest.approx([100 * diff, 100 * se, df, 2 * t_dist.sf(abs(diff) / se, df),
                                 100 * (diff - q * se), 100 * (diff + q * se), tost])
    with pytest.raises(ValueError, match="pooled"):
        stats.run_level_difference(a[:1], b[:1], smallest_effect=REPORT["smallest_effect"])
    # Two seeds at 0 % and 100 %: t with one df reaches far past what a difference of accuracies can be.
    wild = stats.run_level_difference(np.array([[1, 1, 1, 1], [0, 0, 0, 0]]), np.array([[0, 0, 0, 1], [1, 1, 1, 0]]),
                                      smallest_effect=REPORT["smallest_effect"])
    assert (float(wild["ci_low"]), float(wild["ci_high"])) == (-100.0, 100.0)


def test_run_level_test_holds_its_level_where_seed_zero_mcnemar_does_not():
    # 400 pairs of equal variants (2,000 images, 3 runs, a run-wide shift): the run-level test says "different"
    # about 5 % of the time; seed-0 McNemar read as a claim about the variants far more often.
    # The simulator the recorded rates of experiments/benchmarks/run_level_calibration.py come from.
    bench, rng = runpy.run_path(REPO / "experiments/benchmarks/run_level_calibration.py"), np.random.default_rng(40)

    def rejected(a, b):
        return np.mean(stats.run_level_difference(a, b, smallest_effect=REPORT["smallest_effect"])["p"] < 0.05)

    a, b = bench["simulate"](rng, 400, 3, 3, 0.0, S=10.0, tau=0.15, n=2000)
    false_positive = rejected(a, b)
    assert false_positive <= 0.09  # 5 % +- 2.2 % (2 standard errors of 400 draws), plus slack
    assert np.mean(bench["mcnemar_p"](a, b) < 0.05) > 2 * false_positive
    a, b = bench["simulate"](rng, 200, 3, 3, 3.0, S=10.0, tau=0.15, n=2000)
    assert rejected(a, b) > 0.9  # a difference of 3 points is found nearly always
    exact = [stats.mcnemar_exact(a[i, 0], b[i, 0])["p"] for i in range(3)]
    assert bench["mcnemar_p"](a[:3], b[:3]) == pytest.approx(exact)  # the benchmark's McNemar is the package's


def test_three_answers_for_the_prespecified_questions():
    rng = np.random.default_rng(50)
    n = 20_000
    ease = rng.random(n) < 0.8  # runs of a variant agree on most images, as trained networks do

    def runs(k, flip=0.01):
        return ease ^ (rng.random((k, n)) < flip)

    data = {"base": runs(3), "better": rng.random((3, n)) < 0.9,  # 10 points more: yes
            "same": runs(3),  # same procedure: within 0.5 points
            "noisy": np.stack([rng.random(n) < 0.70, rng.random(n) < 0.88])}  # 2 runs far apart: inconclusive
    comparisons = stats.pairwise_comparisons(data, alpha=REPORT["alpha"], smallest_effect=0.5)
    questions = [{"a": "better", "b": "base", "asks": "better?"}, {"a": "same", "b": "base", "asks": "same?"},
                 {"a": "noisy", "b": "base", "asks": "noisy?"}, {"a": "base", "b": "better", "asks": "reverse?"}]
    answers = {q["asks"]: q for q in stats.answer_questions(comparisons, questions)}
    json.dumps(answers, allow_nan=False)
    assert (answers["better?"]["answer"], answers["better?"]["outcome"]) == ("yes", "difference")
    assert answers["reverse?"]["answer"] == "no, the opposite"
    assert answers["same?"]["answer"] == "no difference larger than 0.5 points"
    noisy = answers["noisy?"]
    assert noisy["outcome"] == "inconclusive" and (noisy["ci_low"] < -0.5 or noisy["ci_high"] > 0.5)
    assert noisy["answer"] == f"inconclusive: [{noisy['ci_low']:+.2f}, {noisy['ci_high']:+.2f}]"
    raw = [answers[q["asks"]]["p"] for q in questions]  # Holm over the four questions only, not the six pairs
    assert [answers[q["asks"]]["p_adjusted"] for q in questions] == pytest.approx(stats.holm(raw))
    assert all(a["p_adjusted_all_pairs"] >= a["p_adjusted"] for a in answers.values())


def test_ranking_intervals_separate_a_real_gap_and_not_a_tiny_one():
    # Per-image cross-entropies: "b" is "a" shifted by 0.001 nats plus noise, "c" is 0.3 nats worse.
    rng = np.random.default_rng(60)
    a = rng.exponential(0.5, 3000)
    values = {"b": a + 0.001 + rng.normal(0, 0.05, 3000), "a": a, "c": a + 0.3}
    ranking = stats.ranking_intervals(values, replicates=1000)
    json.dumps(ranking, allow_nan=False)
    assert ranking["order"][-1] == "c" and "c" not in ranking["tied_with_lowest"]
    assert ranking["order"][1] in ("a", "b") and ranking["order"][1] in ranking["tied_with_lowest"]
    row = ranking["rows"]["c"]
    assert row["diff_to_lowest"] == pytest.approx(values["c"].mean() - values[ranking["lowest"]].mean())
    assert row["diff_ci_low"] < row["diff_to_lowest"] < row["diff_ci_high"]
    # Paired: the same image draws for every name, so a constant shift has a zero-width difference interval.
    boot = stats.bootstrap_means({"a": a, "c": a + 0.3}, replicates=200)
    np.testing.assert_allclose(boot["c"] - boot["a"], 0.3)
