"""CIFAR-10H: what ~51 people per image said about the 10,000 CIFAR-10 test images, and how the models compare.

`cifar10h-counts.npy` (jcpeterson/cifar-10h): per test image, in `test_batch` order, how many annotators chose
each class; a run on the first N test images uses the first N rows. The human majority breaks ties towards the
official label, so `disagree` means strictly more people chose another class.
"""

import hashlib
import http.client
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .. import stats
from ..evaluation import read_score_set
from ..files import atomic_path, file_digest, make_read_only, read_table, write_json, write_tsv

FILENAME = "cifar10h-counts.npy"
DEFAULT_SHA256 = "9b36b4550349af56c79083356312eb4af856cc5fd3caf1f669d40b9d0bbb69ff"
LICENSE = "CC BY-NC-SA 4.0"
CITATION = ("Peterson, J. C., Battleday, R. M., Griffiths, T. L., & Russakovsky, O. (2019). Human "
            "uncertainty makes classification more robust. ICCV.")
SOURCE = "https://github.com/jcpeterson/cifar-10h (data/cifar10h-counts.npy)"
NUM_CLASSES = 10
MAX_VOTES = 10**6
EPS = 1e-12
AGREEMENT_EDGES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)
TSV_COLUMNS = ["index", "label", "human_majority", "human_top_share", "entropy", "agreement_with_label",
               "disagree", "unsure", "votes"]
MIN_ALIGNMENT = 0.5  # below this fraction of majority == label, the counts are not for these labels


def verify_counts(path, sha256, remedy: str) -> None:
    """Refuse a counts file whose sha256 is not `sha256`, naming the file, both hashes and `remedy`."""
    got, want = file_digest(path, "sha256"), str(sha256).lower()
    if got != want:
        raise ValueError(f"{path}: sha256 {got}, expected {want}; {remedy}")


def _unreachable(url, error) -> ConnectionError:
    return ConnectionError(
        f"cannot download the CIFAR-10H counts from {url} (config key data.cifar10h.url; "
        f"{type(error).__name__}: {error}); nothing was kept. Without "
        f"internet, put {FILENAME} (sha256 {DEFAULT_SHA256}, from {SOURCE}) in a folder and set the "
        "config key data.cifar10h.root to that folder, or set data.cifar10h.enabled: false to skip the "
        "human-label analysis")


def download_counts(url, sha256, out_path, *, timeout: float = 60.0) -> str:
    """Download `url` to `out_path`, checking its sha256; all or nothing, and never over an existing file:
    "downloaded", or "found" where another run's file took the name first."""
    out_path = Path(out_path)
    want = str(sha256).lower()
    digest = hashlib.sha256()
    try:
        with atomic_path(out_path, replace=False) as tmp:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except (OSError, ValueError, http.client.HTTPException) as error:  # URLError/HTTPError are OSErrors
                raise _unreachable(url, error) from error
            with response, open(tmp, "wb") as fh:
                while True:
                    try:
                        chunk = response.read(1 << 20)
                    except (OSError, http.client.HTTPException) as error:
                        raise _unreachable(url, error) from error
                    if not chunk:
                        break
                    digest.update(chunk)
                    fh.write(chunk)
            got = digest.hexdigest()
            if got != want:
                raise ValueError(f"{out_path}: the file downloaded from {url} has sha256 {got}, expected {want} "
                                 "(config keys data.cifar10h.url, data.cifar10h.sha256); not kept (a changed "
                                 "upstream file or a proxy's error page?)")
    except FileExistsError as error:  # raised only by the link into place: another run's file is there now
        print(f"{error}; this run's download dropped")
        return "found"
    return "downloaded"


def fetch_counts(url, sha256, path, receipt, *, timeout: float = 60.0) -> str:
    """The download rule's job: `path` downloaded where it is missing, never replaced; `receipt` records which."""
    path = Path(path)
    status = "found" if path.exists() else download_counts(url, sha256, path, timeout=timeout)
    if status == "downloaded":
        make_read_only(path)  # what protected() did for the rule's output: a shared file not edited by mistake
    else:
        print(f"{path}: found (downloaded by another run, or put there); kept as it is")
    write_json(receipt, {"data": "CIFAR-10H vote counts", "path": str(path), "url": url, "status": status,
                         "sha256": file_digest(path, "sha256"), "size": path.stat().st_size})
    return status


def load_counts(path, n_images: int | None = None) -> np.ndarray:
    """The (N, 10) int64 vote counts, the first `n_images` rows when given; refuses a malformed file, naming it."""
    path = Path(path)
    try:
        counts = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"CIFAR-10H counts missing: {path}") from None
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{path}: not a .npy array ({error})") from error
    if not isinstance(counts, np.ndarray):
        counts.close()
        raise ValueError(f"{path}: an .npz archive, expected a single .npy array of vote counts")
    if counts.ndim != 2 or counts.shape[1] != NUM_CLASSES:
        raise ValueError(f"{path}: shape {counts.shape}, expected (images, {NUM_CLASSES}) vote counts")
    if counts.dtype.kind not in "iu":
        raise ValueError(f"{path}: dtype {counts.dtype}, expected integer vote counts")
    negative = np.flatnonzero((counts < 0).any(1))
    if len(negative):
        raise ValueError(f"{path}: negative counts in {len(negative)} rows (first: row {negative[0]})")
    huge = np.flatnonzero((counts > MAX_VOTES).any(1))
    if len(huge):
        raise ValueError(f"{path}: counts above {MAX_VOTES:,} in {len(huge)} rows (first: row {huge[0]})")
    empty = np.flatnonzero(counts.sum(1) == 0)
    if len(empty):
        raise ValueError(f"{path}: {len(empty)} rows have no votes (first: row {empty[0]})")
    if n_images is not None:
        if len(counts) < n_images:
            raise ValueError(f"{path}: {len(counts)} rows, but the run has {n_images} test images")
        counts = counts[:n_images]
    return counts.astype(np.int64)


def human_distribution(counts) -> np.ndarray:
    counts = np.asarray(counts)
    return counts / counts.sum(1, keepdims=True)


def human_majority(counts, labels=None) -> np.ndarray:
    """The class most people chose; ties go to the official label (when given), then the lowest index."""
    counts = np.asarray(counts)
    majority = counts.argmax(1)
    if labels is not None:
        rows = np.arange(len(counts))
        majority = np.where(counts[rows, labels] == counts.max(1), labels, majority)
    return majority


def entropy_nats(dist) -> np.ndarray:
    dist = np.asarray(dist, dtype=np.float64)
    terms = np.where(dist > 0, dist * np.log(np.where(dist > 0, dist, 1.0)), 0.0)
    return -terms.sum(1)


def human_table(counts, labels, *, unsure_below: float) -> dict[str, np.ndarray]:
    """Per image: votes, distribution, majority, top share, entropy (nats), agreement with the label, disagree,
    unsure (top_share < unsure_below)."""
    counts, labels = np.asarray(counts), np.asarray(labels)
    dist = human_distribution(counts)
    majority = human_majority(counts, labels)
    top_share = dist.max(1)
    return {"index": np.arange(len(counts)), "label": labels, "votes": counts, "distribution": dist,
            "majority": majority, "top_share": top_share, "entropy": entropy_nats(dist),
            "agreement": dist[np.arange(len(counts)), labels], "disagree": majority != labels,
            "unsure": top_share < unsure_below}


def human_summary(table) -> dict:
    return {"n_images": int(len(table["index"])), "n_disagree": int(table["disagree"].sum()),
            "n_unsure": int(table["unsure"].sum()),
            "n_disagree_and_unsure": int((table["disagree"] & table["unsure"]).sum()),
            "mean_agreement_with_label": float(table["agreement"].mean()),
            "mean_entropy_nats": float(table["entropy"].mean()), "mean_votes": float(table["votes"].sum(1).mean())}


def check_alignment(counts, labels, path) -> None:
    """Refuse counts that cannot belong to these labels (another order or another file)."""
    agree = float(np.mean(human_majority(counts, labels) == labels))
    if agree < MIN_ALIGNMENT:
        raise ValueError(f"{path}: the human majority matches the official label on only {100 * agree:.1f}% "
                         f"of the {len(labels)} images (the real file: 99.2%); these counts are not in "
                         "test_batch order or not CIFAR-10H")


def image_cross_entropy(human_dist, probs, eps: float = EPS) -> np.ndarray:
    """Per image −Σ_k h_k log max(p_k, eps), in nats."""
    h = np.asarray(human_dist, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    return -(h * np.log(np.clip(p, eps, None))).sum(1)


def cross_entropy(human_dist, probs, eps: float = EPS) -> float:
    """Mean over images of −Σ_k h_k log max(p_k, eps), in nats."""
    return float(image_cross_entropy(human_dist, probs, eps).mean())


def confidence_bins(human_value, probs, labels, edges=AGREEMENT_EDGES) -> dict[str, list]:
    """Per bin of `human_value` ([lo, hi), the last closed): count, mean human value, mean confidence, mean
    probability of the label, accuracy (%); None for an empty bin."""
    value = np.asarray(human_value, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    edges = [float(e) for e in edges]
    which = np.searchsorted(edges, value, side="right") - 1
    which[value == edges[-1]] = len(edges) - 2
    rows = np.arange(len(labels))
    confidence, p_label, right = probs.max(1), probs[rows, labels], probs.argmax(1) == labels
    out = {"lo": edges[:-1], "hi": edges[1:], "n": [], "mean_human": [], "mean_confidence": [],
           "mean_prob_label": [], "accuracy": []}
    for b in range(len(edges) - 1):
        mask = which == b
        n = int(mask.sum())
        out["n"].append(n)
        for key, values, scale in [("mean_human", value, 1.0), ("mean_confidence", confidence, 1.0),
                                   ("mean_prob_label", p_label, 1.0), ("accuracy", right, 100.0)]:
            out[key].append(float(scale * values[mask].mean()) if n else None)
    return out


def model_vs_humans(counts, probs, labels, *, eps: float = EPS) -> dict:
    """One model against the people: accuracy and accuracy_vs_majority (%), cross_entropy (nats), and `bins` by
    human agreement with the label."""
    counts, labels, probs = np.asarray(counts), np.asarray(labels), np.asarray(probs, dtype=np.float64)
    dist = human_distribution(counts)
    pred = probs.argmax(1)
    value = dist[np.arange(len(labels)), labels]
    return {"accuracy": float(100.0 * np.mean(pred == labels)),
            "accuracy_vs_majority": float(100.0 * np.mean(pred == human_majority(counts, labels))),
            "cross_entropy": cross_entropy(dist, probs, eps),
            "bins": {"by": "agreement", **confidence_bins(value, probs, labels)}}


def write_human_table(counts_path, labels, out_tsv, classes, *, unsure_below: float) -> dict:
    """The per-image TSV (TSV_COLUMNS); returns the counts and means."""
    labels = np.asarray(labels)
    classes = [str(c) for c in classes]
    counts = load_counts(counts_path, len(labels))
    check_alignment(counts, labels, counts_path)
    table = human_table(counts, labels, unsure_below=unsure_below)
    write_tsv(out_tsv, TSV_COLUMNS, ([i, classes[table["label"][i]], classes[table["majority"][i]],
                                      float(table["top_share"][i]), float(table["entropy"][i]),
                                      float(table["agreement"][i]), int(table["disagree"][i]), int(table["unsure"][i]),
                                      ",".join(str(v) for v in table["votes"][i])] for i in range(len(labels))))
    return {**human_summary(table), "unsure_below": unsure_below, "entropy_unit": "nats",
            "source": SOURCE, "license": LICENSE, "citation": CITATION}


def read_human_table(path) -> dict[str, np.ndarray]:
    """A per-image TSV back as arrays (label/human_majority as names, votes (N, 10)); refuses a wrong header."""
    path = Path(path)
    rows = read_table(path, TSV_COLUMNS)
    kinds = (np.int64, str, str, np.float64, np.float64, np.float64, np.int64, np.int64)
    try:
        cols = list(zip(*rows)) if rows else [()] * len(TSV_COLUMNS)
        table = {name: np.array(col, dtype=kind) for name, col, kind in zip(TSV_COLUMNS, cols, kinds)}
        table["disagree"], table["unsure"] = table["disagree"].astype(bool), table["unsure"].astype(bool)
        votes = [[int(v) for v in c.split(",")] for c in cols[8]]
        table["votes"] = np.array(votes, dtype=np.int64).reshape(-1, NUM_CLASSES)
        return table
    except (ValueError, IndexError) as error:
        raise ValueError(f"{path}: malformed row ({error})") from error


def _mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = float(np.mean(values))
    return mean, (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def human_metrics(counts_path, scores: Mapping, labels, *, test_set="the test set", unsure_below: float,
                  replicates: int = 2000) -> dict:
    """Per variant (`scores`: variant name → its score files, one per seed) the models against people, and a
    ranking by per-image cross-entropy."""
    labels = np.asarray(labels)
    groups = {str(name): [str(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
              for name, paths in scores.items()}
    every = [p for paths in groups.values() for p in paths]
    read = dict(zip(every, read_score_set(every, labels, test_set=test_set)))
    counts = load_counts(counts_path, len(labels))
    check_alignment(counts, labels, counts_path)
    variants = {}
    per_image: dict[str, list] = {}
    for name, paths in groups.items():
        seeds = [{"path": path, **model_vs_humans(counts, read[path]["probs"], labels)} for path in paths]
        per_image[name] = [image_cross_entropy(human_distribution(counts), read[path]["probs"]) for path in paths]
        entry = {"seeds": [{k: v for k, v in m.items() if k != "bins"} for m in seeds]}
        for key in ("accuracy", "accuracy_vs_majority", "cross_entropy"):
            entry[key], entry[key + "_std"] = _mean_std([m[key] for m in seeds])
        bins = dict(seeds[0]["bins"])
        for key in ("mean_confidence", "mean_prob_label", "accuracy"):
            bins[key] = [_mean_std([m["bins"][key][b] for m in seeds])[0] for b in range(len(bins["n"]))]
        entry["bins"] = bins
        variants[name] = entry
    table = human_table(counts, labels, unsure_below=unsure_below)
    return {
        "humans": human_summary(table),
        "settings": {"eps": EPS, "entropy_unit": "nats", "cross_entropy_unit": "nats", "by": "agreement",
                     "edges": [float(e) for e in AGREEMENT_EDGES], "unsure_below": unsure_below,
                     "counts": str(counts_path), "source": SOURCE, "license": LICENSE, "citation": CITATION},
        "variants": variants,
        "cross_entropy_ranking": stats.ranking_intervals({k: np.mean(v, axis=0) for k, v in per_image.items()},
                                                         replicates=replicates),
    }


def write_human_labels(counts_path, test_images, runs, scores, out_tsv, out_metrics, *,
                       unsure_below: float, sha256: str | None = None) -> dict:
    """Rule human_labels: `write_human_table` and `human_metrics` (`runs`: the (variant, seed) of `scores`)."""
    from ..data import load_arrays

    if sha256 is not None:
        verify_counts(counts_path, sha256, "not CIFAR-10H's counts (set data.cifar10h.verify: false to read "
                                           "another counts file)")

    _, labels, classes = load_arrays(test_images)
    summary = write_human_table(counts_path, labels, out_tsv, classes, unsure_below=unsure_below)
    by_variant: dict[str, list] = {}
    for (variant, _seed), path in zip(runs, scores):
        by_variant.setdefault(variant, []).append(path)
    metrics = human_metrics(counts_path, by_variant, labels, unsure_below=unsure_below, test_set=test_images)
    write_json(out_metrics, metrics)
    print(f"{summary['n_images']} images: people disagree with the label on {summary['n_disagree']}, "
          f"are unsure on {summary['n_unsure']}; {len(by_variant)} variants scored against them")
    return metrics
