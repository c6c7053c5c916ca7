"""A hand-checked sample of the near-duplicate rule (analysis.near_duplicates) on a finished run, for its precision
and recall: no published list of CIFAR-10's train-test near-duplicates can be fetched here.

    .venv/bin/python experiments/near-duplicate-sample/near_duplicates_check.py sample RUN SHEETS_DIR
    .venv/bin/python experiments/near-duplicate-sample/near_duplicates_check.py record RUN SHEETS_DIR/to-check.tsv
    .venv/bin/python experiments/near-duplicate-sample/near_duplicates_check.py score RUN workflow/resources/near_duplicates_checked.json

`sample` draws pairs (test image, its nearest training image by the rule's pixel distance) from strata of that
distance: flagged (≤ the run's threshold) and three bands above it. It writes the pairs, shuffled and numbered,
as image sheets (no distance, no stratum and no label on them, so the judging is blind) and a TSV to fill in:
`verdict` is `same` (the same photograph, however shifted, cropped, rescaled or recoloured) or `different`.
`record` turns the filled TSV into the sample the workflow reads (workflow/resources/near_duplicates_checked.json,
with the run's threshold and the bands); `score` prints what `cmpt726.analysis.duplicate_check.check_sample` makes
of it on a run, as the report does: precision of the flag, the share of copies per band, the recall they imply.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow"))
from cmpt726.analysis.near_duplicates import read_near_duplicates  # noqa: E402
from cmpt726.analysis.duplicate_check import check_sample, strata  # noqa: E402
from cmpt726.files import read_json, write_json  # noqa: E402

RESOURCE = Path(__file__).resolve().parents[2] / "workflow/resources/near_duplicates_checked.json"

BANDS = [(1.0, 1.155), (1.155, 1.32), (1.32, 1.485)]  # multiples of the threshold: 0.606 → 0.70, 0.80, 0.90
SAMPLE = {"flagged": 30, "band1": 20, "band2": 20, "band3": 20}
COLUMNS = ["pair", "test_index", "train_index", "pixel_distance", "stratum", "verdict"]


def sample(run: Path, sheets: Path, seed: int = 0) -> None:
    from cmpt726.report.figures import plot_image_grid

    rows = read_near_duplicates(run / "results/analysis/near_duplicates.tsv")
    threshold = read_json(run / "results/analysis/near_duplicates.json")["threshold"]
    rng = np.random.default_rng(seed)
    drawn = []
    for name, stratum in strata(rows, threshold, BANDS).items():
        members = stratum["rows"]
        pick = rng.choice(len(members), size=min(SAMPLE[name], len(members)), replace=False)
        drawn += [{**members[i], "stratum": name} for i in sorted(pick)]
    order = rng.permutation(len(drawn))
    drawn = [drawn[i] for i in order]
    train = np.load(run / "results/data/cifar10/train.npz")["images"]
    test = np.load(run / "results/data/cifar10/test.npz")["images"]
    sheets.mkdir(parents=True, exist_ok=True)
    per_sheet = 25
    for s in range(math.ceil(len(drawn) / per_sheet)):
        group = drawn[s * per_sheet:(s + 1) * per_sheet]
        tiles = [[(test[r["index"]], f"pair {s * per_sheet + j + 1}: test", "black"),
                  (train[r["train_index"]], "train", "black")] for j, r in enumerate(group)]
        plot_image_grid(tiles, f"sheet {s + 1}", sheets / f"sheet{s + 1}.png", empty="", cols=10, cell=(1.3, 1.45))
    with open(sheets / "to-check.tsv", "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(COLUMNS)
        for j, r in enumerate(drawn, start=1):
            w.writerow([j, r["index"], r["train_index"], f"{r['pixel_distance']:.6g}", r["stratum"], ""])
    print(f"{len(drawn)} pairs on {math.ceil(len(drawn) / per_sheet)} sheets in {sheets} (threshold {threshold:.4g})")


def record(run: Path, filled: Path, out: Path = RESOURCE) -> None:
    threshold = read_json(run / "results/analysis/near_duplicates.json")["threshold"]
    with open(filled, newline="") as fh:
        judged = list(csv.DictReader(fh, delimiter="\t"))
    pairs = [{"test_index": int(j["test_index"]), "train_index": int(j["train_index"]),
              "pixel_distance": float(j["pixel_distance"]), "stratum": j["stratum"], "verdict": j["verdict"]}
             for j in judged]
    write_json(out, {"data": "the official CIFAR-10 (python batches), analysis.near_duplicates with mad_k 8",
                     "threshold": threshold, "bands": [list(b) for b in BANDS],
                     "criterion": "same: the same photograph, however shifted, cropped, rescaled, recoloured or "
                                  "re-framed; different: anything else, however alike",
                     "judged": "by eye on sheets of pairs numbered at random, without distance, stratum or label",
                     "date": date.today().isoformat(), "pairs": pairs})
    print(f"{len(pairs)} pairs written to {out}")


def cifar10_images(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) uint8 (n, 3, 32, 32) images from the official python batches in `folder`."""
    import pickle

    def batch(name):
        with open(folder / name, "rb") as fh:
            return pickle.load(fh, encoding="bytes")[b"data"].reshape(-1, 3, 32, 32)

    return np.concatenate([batch(f"data_batch_{k}") for k in range(1, 6)]), batch("test_batch")


def second_sheets(batches: Path, sheets: Path, seed: int = 1) -> None:
    """Blind sheets of the recorded sample for a second, independent judging: the pairs in a new random order,
    numbered only; the key (pair → test and training index) in a file apart, the sheet to fill holding only
    the pair numbers."""
    from cmpt726.report.figures import plot_image_grid

    pairs = read_json(RESOURCE)["pairs"]
    order = np.random.default_rng(seed).permutation(len(pairs))
    train, test = cifar10_images(batches)
    sheets.mkdir(parents=True, exist_ok=True)
    per_sheet = 15
    for s in range(math.ceil(len(order) / per_sheet)):
        group = order[s * per_sheet:(s + 1) * per_sheet]
        tiles = [[(test[pairs[i]["test_index"]], f"pair {s * per_sheet + j + 1}", "black"),
                  (train[pairs[i]["train_index"]], "", "black")] for j, i in enumerate(group)]
        plot_image_grid(tiles, f"sheet {s + 1}", sheets / f"sheet{s + 1}.png", empty="", cols=6, cell=(2.2, 2.4))
    with open(sheets / "key.tsv", "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["pair", "test_index", "train_index"])
        for j, i in enumerate(order, start=1):
            w.writerow([j, pairs[i]["test_index"], pairs[i]["train_index"]])
    with open(sheets / "to-judge.tsv", "w", newline="") as fh:
        fh.write("pair\tverdict\n" + "".join(f"{j}\t\n" for j in range(1, len(order) + 1)))
    print(f"{len(order)} pairs on {math.ceil(len(order) / per_sheet)} sheets in {sheets}")


def record_second(sheets: Path, judge: str, out: Path = RESOURCE) -> None:
    """The second judging (sheets/to-judge.tsv filled, sheets/key.tsv) into the resource: `verdict_2` per pair
    and who judged in `judges`."""
    with open(sheets / "key.tsv", newline="") as fh:
        key = {int(r["pair"]): (int(r["test_index"]), int(r["train_index"])) for r in csv.DictReader(fh, delimiter="\t")}
    with open(sheets / "to-judge.tsv", newline="") as fh:
        verdicts = {key[int(r["pair"])]: r["verdict"].strip() for r in csv.DictReader(fh, delimiter="\t")}
    sample = read_json(out)
    for pair in sample["pairs"]:
        pair["verdict_2"] = verdicts[pair["test_index"], pair["train_index"]]
    sample["judges"] = [sample.get("judges", [None])[0] or sample.pop("judged_by", None), judge]
    write_json(out, sample)
    print(f"second verdicts of {len(verdicts)} pairs written to {out}")


def score(run: Path, sample_json: Path) -> dict:
    rows = read_near_duplicates(run / "results/analysis/near_duplicates.tsv")
    threshold = read_json(run / "results/analysis/near_duplicates.json")["threshold"]
    return check_sample(rows, threshold, read_json(sample_json))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["sample", "record", "score", "second-sheets", "record-second"])
    ap.add_argument("run", type=Path, help="a finished run folder; second-sheets: the cifar-10-batches-py folder; "
                                           "record-second: the sheets folder")
    ap.add_argument("path", type=Path, nargs="?", help="sample: sheets folder; record: the filled TSV; score: the "
                                                        "sample JSON; second-sheets: sheets folder")
    ap.add_argument("--judge", help="record-second: who judged, and how")
    ap.add_argument("--out", type=Path, default=RESOURCE, help="record: where the sample goes (default: the workflow's)")
    a = ap.parse_args(argv)
    if a.mode == "second-sheets":
        second_sheets(a.run, a.path)
        return
    if a.mode == "record-second":
        record_second(a.run, a.judge)
        return
    if a.mode == "sample":
        sample(a.run, a.path)
        return
    if a.mode == "record":
        record(a.run, a.path, a.out)
        return
    r = score(a.run, a.path)
    if not r["applies"]:
        print(f"the sample does not apply: {r['reason']}")
        return
    for name, st in r["strata"].items():
        where = "flagged" if st["bounds"] is None else f"({st['bounds'][0]:.3f}, {st['bounds'][1]:.3f}]"
        print(f"{name:8s} {where:17s} population {st['population']:5d}  checked {st['checked']:3d}  "
              f"same {st['same']:3d}  share {st['share']:5.1f} % [{st['interval'][0]:.1f}, {st['interval'][1]:.1f}]")
    p, lo, hi = r["precision"], *r["recall_range"]
    print(f"precision of the flag: {p['share']:.1f} % [{p['interval'][0]:.1f}, {p['interval'][1]:.1f}]")
    print(f"recall: {r['recall']:.1f} % (range {lo:.1f}–{hi:.1f} % from the strata's intervals): "
          f"{r['copies_flagged']:.0f} copies flagged, about {r['copies_missed']:.0f} missed up to distance "
          f"{r['beyond']:.3f}; copies beyond it are not counted, so this is an upper bound")

if __name__ == "__main__":
    main()
