"""analysis.duplicate_check: the near-duplicate flag's precision and recall from a hand-checked sample."""

import json

import pytest
from conftest import REPO

from cmpt726.analysis.duplicate_check import check_sample, check_sample_file

THRESHOLD = 0.5
BANDS = [[1.0, 1.2], [1.2, 1.4]]  # (0.5, 0.6] and (0.6, 0.7]


def table():
    """100 test images: 10 flagged (d 0.3), 20 in band 1 (d 0.55), 30 in band 2 (d 0.65), 40 beyond (d 1.0)."""
    rows, i = [], 0
    for n, d in [(10, 0.3), (20, 0.55), (30, 0.65), (40, 1.0)]:
        for _ in range(n):
            rows.append({"index": i, "train_index": 1000 + i, "pixel_distance": d, "flagged": int(d <= THRESHOLD)})
            i += 1
    return rows


def sample(verdicts: dict, threshold=THRESHOLD):
    """Pairs from each stratum's first images: verdicts = stratum → (checked, same)."""
    first = {"flagged": 0, "band1": 10, "band2": 30}
    pairs = []
    for stratum, (checked, same) in verdicts.items():
        for k in range(checked):
            i = first[stratum] + k
            pairs.append({"test_index": i, "train_index": 1000 + i, "stratum": stratum,
                          "verdict": "same" if k < same else "different"})
    return {"threshold": threshold, "bands": BANDS, "pairs": pairs, "criterion": "same photograph",
            "date": "2026-12-04"}


def test_precision_and_recall_follow_from_the_strata():
    """All 5 checked flagged pairs are copies; half of band 1 (10 of 20 images) and a fifth of band 2 (6 of 30):
    10 copies flagged, 16 missed, recall 10 / 26."""
    r = check_sample(table(), THRESHOLD, sample({"flagged": (5, 5), "band1": (4, 2), "band2": (5, 1)}))
    assert r["applies"]
    assert r["precision"]["share"] == 100 and r["precision"]["checked"] == 5
    assert [r["strata"][s]["population"] for s in ("flagged", "band1", "band2")] == [10, 20, 30]
    assert r["strata"]["band1"]["bounds"] == pytest.approx([0.5, 0.6])
    assert r["copies_flagged"] == pytest.approx(10) and r["copies_missed"] == pytest.approx(16)
    assert r["recall"] == pytest.approx(100 * 10 / 26)
    low, high = r["recall_range"]
    assert low < r["recall"] < high and r["beyond"] == pytest.approx(0.7)
    assert r["precision"]["interval"][0] < 100 == r["precision"]["interval"][1]


def test_a_run_with_other_pairs_or_threshold_is_not_measured_by_the_sample():
    rows = table()
    rows[3]["train_index"] = 7  # another data set pairs test image 3 with another training image
    other_pairs = check_sample(rows, THRESHOLD, sample({"flagged": (5, 5), "band1": (2, 1), "band2": (2, 1)}))
    assert other_pairs == {"applies": False, "reason": "1 of the sample's 9 pairs are not this run's nearest pairs "
                                                       "(another data set)"}
    other_threshold = check_sample(table(), 0.6, sample({"flagged": (5, 5), "band1": (2, 1), "band2": (2, 1)}))
    assert not other_threshold["applies"] and "threshold is 0.6, the sample's 0.5" in other_threshold["reason"]


def test_a_verdict_other_than_same_or_different_is_refused():
    bad = sample({"flagged": (2, 2), "band1": (1, 0), "band2": (1, 0)})
    bad["pairs"][0]["verdict"] = "maybe"
    with pytest.raises(ValueError, match="verdict 'maybe'"):
        check_sample(table(), THRESHOLD, bad)


def test_the_recorded_sample_is_well_formed():
    """The sample shipped with the workflow: every stratum checked, verdicts in the two words, pairs unique."""
    recorded = json.loads((REPO / "workflow/resources/near_duplicates_checked.json").read_text())
    strata = {p["stratum"] for p in recorded["pairs"]}
    assert strata == {"flagged", *(f"band{k}" for k in range(1, len(recorded["bands"]) + 1))}
    assert {p["verdict"] for p in recorded["pairs"]} <= {"same", "different"}
    assert len({p["test_index"] for p in recorded["pairs"]}) == len(recorded["pairs"])


@pytest.mark.parametrize("edit, match", [
    (lambda s: s.pop("bands"), "checked.json: not a hand-checked sample"),                         # a key gone
    (lambda s: s["pairs"][0].update(verdict="maybe"), "checked.json: not a hand-checked sample"),  # verdict edited
    (lambda s: s["pairs"][1].pop("stratum"), "checked.json: not a hand-checked sample"),           # a pair cut short
    (None, "checked.json"),                                                          # not JSON: cut off mid-write
])
def test_an_edited_sample_file_is_refused_naming_it(tmp_path, edit, match):
    data = sample({"flagged": (2, 2), "band1": (1, 0), "band2": (1, 0)})
    if edit:
        edit(data)
    path = tmp_path / "checked.json"
    path.write_text(json.dumps(data) if edit else '{"threshold": 0.5, "pairs": [')
    with pytest.raises(ValueError, match=match):
        check_sample_file(path, table(), THRESHOLD)
