"""The near-duplicate rule's precision and recall from a sample of pairs judged by eye, drawn from strata of the
pixel distance (`workflow/resources/near_duplicates_checked.json`); recall is an upper bound, as nothing beyond
the last band is counted.
"""

import numpy as np

from ..files import read_json
from ..stats import wilson_interval

VERDICTS = ("same", "different")
RECALL_DRAWS = 20_000


def cohens_kappa(first: list[str], second: list[str]) -> dict:
    """Agreement of two judges' same/different verdicts on the same pairs, with Cohen's kappa."""
    a, b = (np.array([v == "same" for v in verdicts]) for verdicts in (first, second))
    observed = float((a == b).mean())
    expected = float(a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean()))
    kappa = 1.0 if expected == 1 else (observed - expected) / (1 - expected)
    return {"pairs": int(len(a)), "agree": int((a == b).sum()), "observed": 100 * observed, "kappa": kappa,
            "same_first_only": int((a & ~b).sum()), "same_second_only": int((~a & b).sum())}


def recall_interval(flagged: dict, bands: list[dict], seed: int = 0) -> list[float]:
    """95 % interval (percent) of the recall, each stratum's share of copies drawn from its Jeffreys posterior."""
    rng = np.random.default_rng(seed)

    def copies(stratum):
        share = rng.beta(stratum["same"] + 0.5, stratum["checked"] - stratum["same"] + 0.5, RECALL_DRAWS)
        return stratum["population"] * share

    found, lost = copies(flagged), sum(copies(b) for b in bands)
    recall = 100 * found / np.maximum(found + lost, 1e-12)
    return [float(np.percentile(recall, 2.5)), float(np.percentile(recall, 97.5))]


def _share(same: int, n: int) -> dict:
    lo, hi = wilson_interval(same, n)  # percent
    return {"checked": n, "same": same, "share": 100 * same / n, "interval": [lo, hi]}


def strata(table: list[dict], threshold: float, bands) -> dict[str, dict]:
    """A near_duplicates table by stratum: `flagged`, then `band1`, … (unflagged, distance in (lo, hi] × threshold)."""
    out = {"flagged": {"bounds": None, "rows": [r for r in table if r["flagged"]]}}
    for k, (lo, hi) in enumerate(bands, start=1):
        bounds = [lo * threshold, hi * threshold]
        out[f"band{k}"] = {"bounds": bounds, "rows": [r for r in table if not r["flagged"]
                                                       and bounds[0] < r["pixel_distance"] <= bounds[1]]}
    return out


def check_sample(table: list[dict], threshold: float, sample: dict) -> dict:
    """Precision and recall (%) of the flag from `sample` on a run's table, or {"applies": False, "reason"}."""
    for pair in sample["pairs"]:
        for key in ("verdict", "verdict_2"):
            if (key == "verdict" or key in pair) and pair[key] not in VERDICTS:
                raise ValueError(f"near-duplicate sample: pair {pair['test_index']} has {key} {pair[key]!r} "
                                 f"(one of {VERDICTS})")
    if abs(threshold - sample["threshold"]) > 1e-6 * sample["threshold"]:
        return {"applies": False, "reason": f"this run's threshold is {threshold:.4g}, the sample's "
                                            f"{sample['threshold']:.4g} (another data set or analysis.near_duplicates.mad_k)"}
    nearest = {r["index"]: r["train_index"] for r in table}
    differ = sum(nearest.get(p["test_index"]) != p["train_index"] for p in sample["pairs"])
    if differ:
        return {"applies": False, "reason": f"{differ} of the sample's {len(sample['pairs'])} pairs are not this "
                                            "run's nearest pairs (another data set)"}
    checked = {}
    for name, stratum in strata(table, threshold, sample["bands"]).items():
        judged = [p for p in sample["pairs"] if p["stratum"] == name]
        if not judged:
            raise ValueError(f"near-duplicate sample: no pair checked in stratum {name}")
        checked[name] = {"population": len(stratum["rows"]), "bounds": stratum["bounds"],
                         **_share(sum(p["verdict"] == "same" for p in judged), len(judged))}
    flagged = checked["flagged"]
    bands = [s for name, s in checked.items() if name != "flagged"]
    # copies flagged and copies missed in the bands: the estimate, then the low and high ends of the intervals
    found = [flagged["population"] * x / 100 for x in (flagged["share"], *flagged["interval"])]
    lost = [sum(b["population"] * share(b) / 100 for b in bands)
            for share in (lambda b: b["share"], lambda b: b["interval"][0], lambda b: b["interval"][1])]

    def recall(copies: float, missed: float):
        return 100 * copies / (copies + missed) if copies + missed else None

    second = [p for p in sample["pairs"] if "verdict_2" in p]
    if second and len(second) != len(sample["pairs"]):
        raise ValueError(f"near-duplicate sample: {len(second)} of {len(sample['pairs'])} pairs have a verdict_2")
    return {"applies": True, "strata": checked, "precision": flagged,
            "recall": recall(found[0], lost[0]), "recall_interval": recall_interval(flagged, bands),
            "recall_range": [recall(found[1], lost[2]), recall(found[2], lost[1])],
            "judges": sample.get("judges"), "judged": sample.get("judged"),
            "agreement": cohens_kappa([p["verdict"] for p in second], [p["verdict_2"] for p in second])
            if second else None,
            "copies_flagged": found[0], "copies_missed": lost[0],
            "beyond": sample["bands"][-1][1] * threshold,
            "n_pairs": len(sample["pairs"]), "criterion": sample["criterion"], "date": sample["date"]}


def check_sample_file(path, table: list[dict], threshold: float) -> dict:
    """`check_sample` with the sample read from `path`; an edited or broken sample is refused naming the file."""
    try:
        return check_sample(table, threshold, read_json(path))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: not a hand-checked sample ({type(error).__name__}: {error})") from None
