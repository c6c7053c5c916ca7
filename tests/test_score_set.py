"""evaluation.read_score_set: the one reader of a set of score files, each checked against the test set."""

from __future__ import annotations

import numpy as np
import pytest

from cmpt726.evaluation import read_score_set, write_scores

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
    a, _ = scores(tmp_path, "a.tsv")
    b, _ = scores(tmp_path, "b.tsv", **bad)
    with pytest.raises(ValueError, match=message):
        read_score_set([a, b], LABELS, test_set="test.npz")


def test_probability_columns_are_checked_against_the_classes(tmp_path):
    a, _ = scores(tmp_path, "a.tsv")
    with pytest.raises(ValueError, match=r"a.tsv: 10 probability columns, expected 9 \(the classes of the test set"):
        read_score_set([a], LABELS, CLASSES[:9])
    with pytest.raises(ValueError, match="no score files given"):
        read_score_set([], LABELS)
