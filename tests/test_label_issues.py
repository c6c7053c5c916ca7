"""cleanlab suspects on tiny synthetic score files: flipped labels of easy images come first."""

from functools import partial

import numpy as np
import pytest
from conftest import CLASSES
from scipy.special import softmax

from cmpt726.analysis import label_issues
from cmpt726.analysis.label_issues import (TSV_COLUMNS, combine_probs, find_suspects, leave_one_out, read_label_issues,
                                           summary)
from cmpt726.config import schema_default
from cmpt726.evaluation import read_score_set, write_scores
from cmpt726.report.summarize_analyses import label_issue_numbers

# A run's setting (the schema's default): the functions take it as an argument.
FILTER_BY = schema_default("analysis.label_issues.filter_by")
write_label_issues = partial(label_issues.write_label_issues, filter_by=FILTER_BY)

FLIPPED = np.array([3, 41, 77, 150, 188])  # easy images whose given label we corrupt
HARD = np.arange(100, 130)                 # images the models find ambiguous (between two classes)
CONFUSING = np.array([20, 60, 170])        # right labels the models confidently get wrong (p(label) ~ 0.1)


def synthetic(n_models=3, n=200, seed=0):
    """True labels, given labels (FLIPPED changed), each model's probabilities: confident and right on easy images,
    torn between the true class and a neighbour on HARD ones, confidently wrong on CONFUSING ones; own noise each."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 10
    given = truth.copy()
    given[FLIPPED] = (truth[FLIPPED] + 1 + rng.integers(0, 9, len(FLIPPED))) % 10
    assert np.all(given[FLIPPED] != truth[FLIPPED])
    probs = []
    for _ in range(n_models):
        logits = rng.normal(0, 0.5, (n, 10))
        logits[np.arange(n), truth] += 6.0
        hard_other = (truth[HARD] + 1) % 10
        logits[HARD, truth[HARD]] -= 4.8
        logits[HARD, hard_other] += 1.0
        logits[CONFUSING, (truth[CONFUSING] + 2) % 10] += 8.2
        probs.append(softmax(logits, axis=1))
    return truth, given, probs


def write_set(folder, given, probs_list):
    paths = [folder / f"scores_{m}.tsv" for m in range(len(probs_list))]
    for path, probs in zip(paths, probs_list):
        write_scores(path, given, probs, -np.log(probs[np.arange(len(given)), given]))
    return paths


def test_combine_probs_is_the_mean_and_checks_shapes():
    a, b = np.array([[0.2, 0.8]]), np.array([[0.6, 0.4]])
    assert np.allclose(combine_probs([a, b]), [[0.4, 0.6]])
    with pytest.raises(ValueError, match="model 1"):
        combine_probs([a, np.ones((2, 2)) / 2])
    with pytest.raises(ValueError, match="no probabilities"):
        combine_probs([])


def test_flipped_easy_images_rank_first():
    truth, given, probs = synthetic()
    table = find_suspects(given, probs, filter_by=FILTER_BY)
    top = table["index"][: len(FLIPPED)]
    assert set(top) == set(FLIPPED), table["index"]
    assert list(table["rank"][: len(FLIPPED)]) == [1, 2, 3, 4, 5]
    # the confidently mispredicted images are suspects too, but ranked after the flipped ones
    assert set(CONFUSING) <= set(table["index"][len(FLIPPED):])
    assert set(table["index"]) <= set(FLIPPED) | set(CONFUSING) | set(HARD)
    assert np.all(np.diff(table["self_confidence"]) >= 0)
    # prune_by_noise_rate flags only some of the ambiguous images the mean model gets wrong
    # ("predicted_neq_given" would flag them all)
    hard_wrong = HARD[combine_probs(probs)[HARD].argmax(1) != given[HARD]]
    assert len(hard_wrong) >= 5
    assert len(set(table["index"]) & set(HARD)) < len(hard_wrong)
    first = {i: k for k, i in enumerate(table["index"])}
    for i in FLIPPED:
        k = first[i]
        assert table["given"][k] == given[i]
        assert table["suggested"][k] == truth[i]  # cleanlab's suspects have suggested != given
        assert table["models_wrong"][k] == 3 and table["models"][k] == 3
    # with the clean labels the flipped images are not suspects
    clean = find_suspects(truth, probs, filter_by=FILTER_BY)
    assert not set(clean["index"]) & set(FLIPPED)


def test_summary_hand_computed():
    labels = np.array([0, 1, 2, 3])
    probs = np.eye(4)[[0, 2, 2, 0]]          # wrong on images 1 and 3
    s = summary(labels, probs, [1])
    assert s == {"n_images": 4, "n_suspects": 1, "mistakes": 2, "mistakes_suspect": 1,
                 "accuracy": 50.0, "accuracy_without_suspects": pytest.approx(100 * 2 / 3)}
    assert summary(labels, probs, [])["accuracy_without_suspects"] == 50.0
    assert summary(labels, probs, [0, 1, 2, 3])["accuracy_without_suspects"] is None
    with pytest.raises(ValueError, match="0..3"):
        summary(labels, probs, [4])


def test_tsv_round_trip(tmp_path):
    _, given, probs = synthetic()
    paths = write_set(tmp_path, given, probs)
    out = tmp_path / "out" / "label_issues.tsv"
    result = write_label_issues(paths, out, CLASSES, given, summary_json=tmp_path / "out" / "summary.json")

    labels, read_probs = given, [s["probs"] for s in read_score_set(paths, given)]
    expected = find_suspects(labels, read_probs, filter_by=FILTER_BY)
    header = out.read_text().splitlines()[0].split("\t")
    assert header == TSV_COLUMNS
    back = read_label_issues(out, CLASSES)
    for key in TSV_COLUMNS:
        if key == "self_confidence":
            assert np.allclose(back[key], expected[key], rtol=1e-5)
        else:
            assert np.array_equal(back[key], expected[key]), key
    named = read_label_issues(out)
    assert list(named["given"][:1]) == [CLASSES[expected["given"][0]]]

    assert result["n_suspects"] == len(expected["index"]) and result["n_models"] == 3
    accuracies = [100 * (p.argmax(1) == labels).mean() for p in read_probs]
    assert result["model_accuracy"] == pytest.approx({"min": min(accuracies), "max": max(accuracies)})
    assert min(accuracies) < max(accuracies)  # the models differ, so min and max are told apart
    assert result["reference"] == str(paths[0])
    ref = summary(labels, read_probs[0], expected["index"])
    assert {k: result[k] for k in ref} == ref
    assert (tmp_path / "out" / "summary.json").exists()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def test_mismatched_labels_name_the_file(tmp_path):
    _, given, probs = synthetic(n_models=2)
    a, b = write_set(tmp_path, given, probs)
    other = given.copy()
    other[7] = (other[7] + 1) % 10
    write_scores(b, other, probs[1], np.zeros(len(other)))
    out = tmp_path / "label_issues.tsv"
    with pytest.raises(ValueError, match=f"{b}: labels disagree with test.npz on 1 images .first: index 7"):
        write_label_issues([a, b], out, CLASSES, given, test_set="test.npz")
    assert not out.exists()
    assert list(tmp_path.glob(".*")) == []


def test_wrong_number_of_class_names_refused(tmp_path):
    _, given, probs = synthetic(n_models=1)
    paths = write_set(tmp_path, given, probs)
    with pytest.raises(ValueError, match="10 probability columns"):
        write_label_issues(paths, tmp_path / "x.tsv", CLASSES[:9], given)
    assert not (tmp_path / "x.tsv").exists()


def test_reference_outside_the_set_must_share_labels(tmp_path):
    _, given, probs = synthetic(n_models=2)
    a, b = write_set(tmp_path, given, probs)
    result = write_label_issues([a], tmp_path / "li.tsv", CLASSES, given, reference=b)
    assert result["reference"] == str(b) and result["n_models"] == 1
    other = given.copy()
    other[0] = (other[0] + 1) % 10
    write_scores(b, other, probs[1], np.zeros(len(other)))
    with pytest.raises(ValueError, match=str(b)):
        write_label_issues([a], tmp_path / "li2.tsv", CLASSES, given, reference=b)
    assert not (tmp_path / "li2.tsv").exists()


def test_report_compares_human_disagreement_on_suspects_with_the_rest(tmp_path):
    """The share of suspects people relabel against that of the other images (planted: people reject the label on
    every flipped image and one other)."""
    truth, given, probs = synthetic()
    paths = write_set(tmp_path, given, probs)
    result = write_label_issues(paths, tmp_path / "li.tsv", CLASSES, given)
    table = read_label_issues(tmp_path / "li.tsv", CLASSES)
    assert set(FLIPPED) <= set(table["index"])
    disagree = np.zeros(len(given), dtype=bool)
    disagree[FLIPPED] = True
    other = next(i for i in range(len(given)) if i not in set(table["index"]))
    disagree[other] = True
    by_variant = {"v": [{"probs": p} for p in probs]}
    numbers = label_issue_numbers(table, result, by_variant, given, "v", disagree)
    n_suspects = len(table["index"])
    overlap = numbers["human_overlap"]
    assert overlap["both"] == len(FLIPPED) and overlap["people_disagree"] == len(FLIPPED) + 1
    assert overlap["share_suspects"] == pytest.approx(100 * len(FLIPPED) / n_suspects)
    assert overlap["share_others"] == pytest.approx(100 / (len(given) - n_suspects))
    assert numbers["model_accuracy"] == result["model_accuracy"]
    # Precision against the people, with its Wilson interval (5 of the suspects).
    low, high = overlap["precision_ci"]
    assert low < overlap["share_suspects"] < high
    # How often the people's majority picks the models' suggestion: at least on every flipped image.
    with_majority = label_issue_numbers(table, result, by_variant, given, "v", disagree, truth)["human_overlap"]
    suggested_right = int((truth[table["index"]] == table["suggested"]).sum())
    assert with_majority["suggested_is_majority"] == pytest.approx(100 * suggested_right / n_suspects)
    assert suggested_right >= len(FLIPPED)


def test_each_flagging_variant_is_judged_against_suspects_found_without_it(tmp_path):
    """Leave one variant out: its mistakes counted against cleanlab's list from the other variants' runs. The planted
    errors are found without any one variant, so mistakes on them still count."""
    truth, given, probs = synthetic(n_models=4)
    variants = ["a", "a", "b", "c"]  # a has two seeds
    result = write_label_issues(write_set(tmp_path, given, probs), tmp_path / "li.tsv", CLASSES, given,
                                variants=variants)
    loo = result["leave_one_out"]
    assert result["variants"] == ["a", "b", "c"] and set(loo) == {"a", "b", "c"}
    without_a = find_suspects(given, probs[2:], filter_by=FILTER_BY)["index"]
    assert set(FLIPPED) <= set(without_a)
    own = [summary(given, p, without_a) for p in probs[:2]]
    assert loo["a"]["n_suspects"] == len(without_a) and loo["a"]["models"] == 2 and loo["a"]["runs"] == 2
    for key in ("mistakes", "mistakes_suspect", "accuracy", "accuracy_without_suspects"):
        assert loo["a"][key] == pytest.approx(np.mean([o[key] for o in own]))
    for name in "abc":
        assert loo[name]["mistakes_suspect"] >= len(FLIPPED)  # real label errors survive leaving it out
    # One flagging variant: nothing is left to flag without it.
    assert leave_one_out(given, probs[:2], ["a", "a"], filter_by=FILTER_BY) == {}
    with pytest.raises(ValueError, match="variant names"):
        leave_one_out(given, probs, ["a"], filter_by=FILTER_BY)


def test_report_uses_the_leave_one_out_numbers_and_gives_none_when_circular(tmp_path):
    truth, given, probs = synthetic(n_models=3)
    paths = write_set(tmp_path, given, probs)
    by_variant = {"a": [{"probs": probs[0]}], "b": [{"probs": probs[1]}], "outsider": [{"probs": probs[2]}]}
    result = write_label_issues(paths[:2], tmp_path / "li.tsv", CLASSES, given, variants=["a", "b"])
    table = read_label_issues(tmp_path / "li.tsv", CLASSES)
    numbers = label_issue_numbers(table, result, by_variant, given, "a")
    assert numbers["focus"] == numbers["variants"]["a"]
    assert numbers["variants"]["a"]["suspects_from"] == "leave-one-out"
    loo_a = result["leave_one_out"]["a"]
    assert numbers["variants"]["a"]["accuracy_without_suspects"] == loo_a["accuracy_without_suspects"]
    # A variant that did not flag is set against the full list, which never saw it.
    full = summary(given, probs[2], table["index"])
    outsider = numbers["variants"]["outsider"]
    assert outsider["accuracy_without_suspects"] == pytest.approx(full["accuracy_without_suspects"])
    # The only flagging variant: its numbers would follow by construction, so there are none.
    alone = write_label_issues(paths[:1], tmp_path / "li1.tsv", CLASSES, given, variants=["a"])
    numbers = label_issue_numbers(read_label_issues(tmp_path / "li1.tsv", CLASSES), alone, by_variant, given, "a")
    assert numbers["focus"]["accuracy_without_suspects"] is None
    assert numbers["focus"]["suspects_from"].startswith("circular")
