"""What the report may claim: a one-seed variant borrows the run variance of its own training mode."""

from __future__ import annotations

import numpy as np
import pytest

from cmpt726 import stats


def runs(rng, seeds: int, spread: float, n: int = 4000, accuracy: float = 0.8) -> np.ndarray:
    """(seeds, n) correctness whose run accuracies spread by about `spread` (share): a run-wide shift per seed."""
    shifts = rng.normal(0.0, spread, (seeds, 1))
    return rng.random((seeds, n)) < accuracy + shifts


def test_a_one_seed_variant_borrows_the_run_variance_of_its_own_mode():
    rng = np.random.default_rng(0)
    correct = {"full": runs(rng, 1, 0.02), "full_b": runs(rng, 3, 0.02), "full_c": runs(rng, 3, 0.02),
               **{f"head{i}": runs(rng, 3, 0.001) for i in range(4)}}
    modes = {name: "heads" if name.startswith("head") else "full network" for name in correct}
    mixed = stats.pairwise_comparisons(correct, alpha=0.05, smallest_effect=0.5)
    by_mode = stats.pairwise_comparisons(correct, alpha=0.05, smallest_effect=0.5, groups=modes)
    pair, mixed_pair = (stats.find_pair(c, "full", "full_b") for c in (by_mode, mixed))
    assert pair["borrowed"] and pair["pooled_from"] == "full network" and mixed_pair["pooled_from"] == "all"
    # the heads' small spread no longer shrinks the full-network variant's interval
    assert pair["se_points"] > 1.3 * mixed_pair["se_points"]
    full_sd = by_mode["pooled_run_sd_by_group"]["full network"]
    assert full_sd > 3 * by_mode["pooled_run_sd_by_group"]["heads"]
    assert mixed["pooled_run_sd"] == by_mode["pooled_run_sd"] < full_sd
    assert mixed["pooled_run_sd_by_group"] is None
    # pairs of multi-seed variants borrow nothing
    assert stats.find_pair(by_mode, "full_b", "head0")["pooled_from"] is None


def test_a_mode_without_a_multi_seed_variant_borrows_from_all():
    rng = np.random.default_rng(1)
    correct = {"full": runs(rng, 1, 0.02), "head": runs(rng, 3, 0.01), "head_b": runs(rng, 2, 0.01)}
    groups = {"full": "full network", "head": "heads", "head_b": "heads"}
    pair = stats.find_pair(stats.pairwise_comparisons(correct, alpha=0.05, smallest_effect=0.5, groups=groups),
                           "full", "head")
    assert pair["borrowed"] and pair["pooled_from"] == "all"


@pytest.mark.parametrize("k", [2, 3])
def test_run_variance_of_a_batch_is_each_data_sets_own(k):
    rng = np.random.default_rng(k)
    batch = np.stack([runs(rng, k, 0.02, n=500) for _ in range(4)])
    s2, w, df = stats.run_variance(batch)
    assert s2.shape == w.shape == (4,) and df == k - 1
    for i in range(4):
        assert stats.run_variance(batch[i]) == pytest.approx((s2[i], w[i], k - 1))


def test_a_tuned_twin_is_left_out_with_its_variant():
    """The images flagged without a variant leave out its whole family: its tuned twin shares its errors."""
    from cmpt726.analysis import label_issues as li
    from cmpt726.report.summarize_analyses import label_issue_numbers

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400)

    def probs():
        p = rng.random((len(labels), 10))
        p[np.arange(len(labels)), labels] += 4 * rng.random(len(labels))
        return p / p.sum(1, keepdims=True)

    probs_list = [probs() for _ in range(3)]
    loo = li.leave_one_out(labels, probs_list, ["a", "a", "b"], filter_by="prune_by_noise_rate")
    assert set(loo) == {"a", "b"} and (loo["a"]["runs"], loo["a"]["models"]) == (2, 1)
    table = li.find_suspects(labels, probs_list, filter_by="prune_by_noise_rate")
    summary = {"variants": ["a", "a-tuned", "b"], "families": {"a": "a", "a-tuned": "a", "b": "b"},
               "leave_one_out": loo, "n_models": 3, "filter_by": "prune_by_noise_rate",
               "model_accuracy": {"min": 0.0, "max": 0.0}}
    by_variant = {"a": [{"probs": probs_list[0]}], "a-tuned": [{"probs": probs_list[1]}],
                  "b": [{"probs": probs_list[2]}]}
    numbers = label_issue_numbers(table, summary, by_variant, labels, "a-tuned")
    assert numbers["variants"]["a-tuned"] == {**loo["a"], "suspects_from": "leave-one-out"}
    assert numbers["variants"]["b"] == {**loo["b"], "suspects_from": "leave-one-out"}


def test_each_question_states_the_effect_it_could_detect():
    from scipy import stats as sps

    rng = np.random.default_rng(2)
    correct = {"a": runs(rng, 3, 0.003), "b": runs(rng, 3, 0.003), "c": runs(rng, 1, 0.003), "d": runs(rng, 1, 0.003)}
    pairs = stats.pairwise_comparisons(correct, alpha=0.05, smallest_effect=0.5)
    asked = stats.answer_questions(pairs, [{"a": "a", "b": "b"}, {"a": "c", "b": "d"}])
    run_level, models = asked
    se, df = run_level["se_points"], run_level["df"]
    assert run_level["detectable"] == pytest.approx(
        [(sps.t.ppf(1 - 0.0125, df) + sps.t.ppf(0.8, df)) * se, (sps.t.ppf(0.975, df) + sps.t.ppf(0.8, df)) * se])
    # McNemar's: from its normal interval
    half = (models["ci_high"] - models["ci_low"]) / 2
    assert models["detectable"][1] == pytest.approx((1.959964 + 0.841621) * half / 1.959964, rel=1e-4)
    assert all(q["detectable"][0] > q["detectable"][1] > 0 for q in asked)


def test_a_question_asked_of_twins_is_worded_from_what_they_ran():
    from cmpt726.report.compare_variants import tuned_against_fixed

    rng = np.random.default_rng(3)
    base = {"train": "head", "head": "linear", "augment": "none", "lr": 0.001, "weight_decay": 0.0, "batch_size": 32}
    rows = [{**base, "name": "head", "epochs": 10}, {**base, "name": "head_1ep", "epochs": 1},
            {**base, "name": "head_l2", "epochs": 10, "weight_decay": 0.001},
            {**base, "name": "head-tuned", "epochs": 15, "lr": 0.1, "batch_size": 128},
            {**base, "name": "head_1ep-tuned", "epochs": 1, "lr": 0.1, "batch_size": 128},
            {**base, "name": "head_l2-tuned", "epochs": 15, "lr": 0.1, "batch_size": 128, "weight_decay": 0.001}]
    correct = {r["name"]: runs(rng, 3, 0.003) for r in rows}
    summary = stats.accuracy_summary(correct, replicates=200, seed=0)
    for r in rows:
        r.update(accuracy=summary[r["name"]]["mean"], ci_low=0.0, ci_high=100.0, seeds=3)
    pairs = stats.pairwise_comparisons(correct, alpha=0.05, smallest_effect=0.5)
    asked = [{"a": "head", "b": "head_1ep", "asks": "Do 10 epochs beat 1?"},
             {"a": "head_l2", "b": "head", "asks": "Does L2 help?"}]
    twins = {f"{v}-tuned": v for v in ("head", "head_1ep", "head_l2")}
    settings = {r["name"]: {"train": "head"} for r in rows}
    tuned = tuned_against_fixed(twins, rows, correct, summary, pairs, asked, 0.05, 0.5, settings)
    words = {(q["a"], q["b"]): q["asks"] for q in tuned["comparisons"]["asked"]}
    assert words[("head-tuned", "head_1ep-tuned")] == \
        "Does head-tuned beat head_1ep-tuned? (asked above as “Do 10 epochs beat 1?”)"
    assert words[("head_l2-tuned", "head-tuned")] == "Does L2 help?"  # they differ as the variants do


def test_a_contrast_of_two_variants_is_the_run_level_difference():
    rng = np.random.default_rng(4)
    a, b = runs(rng, 3, 0.01), runs(rng, 2, 0.01)
    contrast = stats.run_level_contrast([a, b], [1, -1])
    diff = stats.run_level_difference(a, b, smallest_effect=0.5)
    for key in ("diff", "se", "df", "ci_low", "ci_high", "p"):
        assert contrast[key] == pytest.approx(float(diff[key]), rel=1e-9), key


def test_the_interaction_of_two_settings_is_a_difference_of_differences():
    """(A' − B') − (A − B): a planted interaction is found, none where the setting shifts both alike."""
    rng = np.random.default_rng(5)
    base = runs(rng, 3, 0.005, accuracy=0.7)
    same = [runs(rng, 3, 0.005, accuracy=p) for p in (0.72, 0.7, 0.77, 0.75)]  # both +5 points with the setting
    crossed = [runs(rng, 3, 0.005, accuracy=p) for p in (0.72, 0.7, 0.80, 0.75)]  # +3 points more for A'
    weights = [-1, 1, 1, -1]  # (A' − B') − (A − B) with arrays A, B, A', B'
    none = stats.run_level_contrast(same, weights)
    found = stats.run_level_contrast(crossed, weights)
    assert none["p"] > 0.05 and none["ci_low"] < 0 < none["ci_high"]
    assert found["p"] < 0.05 and found["ci_low"] > 0 and found["diff"] == pytest.approx(3, abs=1.5)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        stats.run_level_contrast([base, base[:1]], [1, -1])


def test_the_near_duplicate_sample_records_two_judges_and_their_agreement():
    from cmpt726.analysis import duplicate_check as dc

    agreement = dc.cohens_kappa(["same"] * 6 + ["different"] * 4, ["same"] * 5 + ["different"] * 5)
    # observed 0.9, expected 0.6·0.5 + 0.4·0.5 = 0.5: kappa 0.8
    assert agreement["kappa"] == pytest.approx(0.8) and (agreement["same_first_only"], agreement["agree"]) == (1, 9)
    flagged = {"population": 100, "checked": 30, "same": 30}
    bands = [{"population": 400, "checked": 20, "same": 10}]
    low, high = dc.recall_interval(flagged, bands)
    point = 100 * 100 / (100 + 200)
    assert low < point < high and 20 < low and high < 50
    # the judging recorded with the workflow: both judges named, every pair judged twice
    from cmpt726.files import read_json
    from conftest import REPO

    sample = read_json(REPO / "workflow/resources/near_duplicates_checked.json")
    assert len(sample["judges"]) == 2 and all(sample["judges"])
    assert all(p["verdict_2"] in dc.VERDICTS for p in sample["pairs"])
