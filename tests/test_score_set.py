"""evaluation.read_score_set: the one reader of a set of score files, each checked against the test set."""

import numpy as np
import pytest

from cmpt726.evaluation import read_score_set, read_scores, write_scores

LABELS = np.array([0, 1, 2, 1, 0])
CLASSES = [f"c{k}" for k in range(10)]  # score files have 10 probability columns


def scores(folder, name, labels=LABELS, seed=0):
    probs = np.random.default_rng(seed).dirichlet(np.ones(10), len(labels))
    path = folder / name
    write_scores(path, labels, probs, np.zeros(len(labels)))
    return path, probs


def test_reads_every_file_in_order(tmp_path):
    (a, pa), (b, pb) = scores(tmp_path, "a.tsv", seed=1), scores(tmp_path, "b.tsv", seed=2)
    tables = read_score_set([b, a], LABELS, CLASSES)
    assert [np.abs(t["probs"] - p).max() < 1e-6 for t, p in zip(tables, [pb, pa])] == [True, True]
    assert all(t["label"].tolist() == LABELS.tolist() for t in tables)


@pytest.mark.parametrize("bad, message", [
    (dict(labels=LABELS[:4]), r"b.tsv: 4 rows, expected 5"),
    (dict(labels=np.array([0, 1, 2, 2, 0])), r"b.tsv: labels disagree with test.npz on 1 images \(first: index 3"),
])
def test_refuses_a_file_that_does_not_match_naming_it(tmp_path, bad, message):
    (a, _), (b, _) = scores(tmp_path, "a.tsv"), scores(tmp_path, "b.tsv", **bad)
    with pytest.raises(ValueError, match=message):
        read_score_set([a, b], LABELS, test_set="test.npz")


def test_probability_columns_are_checked_against_the_classes(tmp_path):
    a, _ = scores(tmp_path, "a.tsv")
    with pytest.raises(ValueError, match=r"a.tsv: 10 probability columns, expected 9 \(the classes of the test set"):
        read_score_set([a], LABELS, CLASSES[:9])
    with pytest.raises(ValueError, match="no score files given"):
        read_score_set([], LABELS)


def test_every_readers_argmax_is_the_pred_column_even_at_a_near_tie(tmp_path):
    """Classes 2 float32 steps apart (0.29470298 < 0.29470304), once both written 0.294703: probabilities come
    back exactly (as float32), so argmax is the predicted class 1."""
    near_tie = np.array([0.29470298, 0.29470304, *[(1 - 0.58940602) / 8] * 8], dtype=np.float32)
    probs = np.vstack([near_tie, np.random.default_rng(3).dirichlet(np.ones(10), 4)]).astype(np.float32)
    write_scores(tmp_path / "s.tsv", LABELS, probs, np.zeros(len(LABELS)))
    read = read_scores(tmp_path / "s.tsv")
    assert read["pred"][0] == 1 and np.array_equal(read["probs"].argmax(1), read["pred"])
    assert np.array_equal(read["probs"].astype(np.float32), probs)


def test_a_row_cut_off_mid_line_is_refused_naming_the_file(tmp_path):
    path, _ = scores(tmp_path, "cut.tsv")
    text = path.read_text()
    path.write_text(text[: text.rindex("\t") - 3])  # the last row ends inside a number, as a killed copy leaves it
    with pytest.raises(ValueError, match=r"cut.tsv: not a score file .*delete it to re-evaluate"):
        read_score_set([path], LABELS, CLASSES)
