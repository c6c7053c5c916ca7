"""Evaluate a fine-tuned checkpoint on the test set; owns the score file (`index, label, pred, loss, p0 … p9`)."""

import numpy as np

from .files import read_json, write_json, write_tsv

SCORE_COLUMNS = ["index", "label", "pred", "loss"] + [f"p{k}" for k in range(10)]


def evaluate_variant(checkpoint_path, test_path, scores_out, metrics_out, normalize: dict,
                     channels_last: bool = False, device: str = "auto") -> dict:
    import torch
    import torch.nn.functional as F

    from .models import load_finetuned
    from . import device as devices
    from .runtime import FeatureBatches, load_inputs, predict

    device = devices.resolve(device)
    model = load_finetuned(checkpoint_path)
    batches, labels, classes = load_inputs(test_path, device, normalize, channels_last)
    net = model.head if isinstance(batches, FeatureBatches) else model
    net.to(device)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    logits = predict(net, batches)
    probs = torch.softmax(logits, 1).float().cpu().numpy()
    losses = F.cross_entropy(logits, labels, reduction="none").cpu().numpy()
    labels = labels.cpu().numpy()
    write_scores(scores_out, labels, probs, losses)
    metrics = summarize(labels, probs, classes)
    metrics["test_loss"] = float(losses.mean())
    metrics["device"] = devices.name(device)
    write_json(metrics_out, metrics)
    print(f"accuracy {metrics['accuracy']:.2f}% on {len(labels)} test images")
    return metrics


def write_scores(path, labels: np.ndarray, probs: np.ndarray, losses: np.ndarray) -> None:
    """The score file; float32 probabilities with 9 significant digits, so every reader's argmax is `pred`."""
    probs = np.asarray(probs, dtype=np.float32)
    pred = probs.argmax(1)
    rows = ([i, y, p, loss, *(f"{float(q):.9g}" for q in row)]
            for i, (y, p, loss, row) in enumerate(zip(labels, pred, losses, probs)))
    write_tsv(path, SCORE_COLUMNS, rows)


def summarize(labels: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict:
    pred = probs.argmax(1)
    k = probs.shape[1]
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    support = confusion.sum(1)
    per_class = np.where(support > 0, 100.0 * np.diag(confusion) / np.maximum(support, 1), np.nan)
    return {"n": int(len(labels)), "accuracy": float(100.0 * (pred == labels).mean()), "classes": classes,
            "per_class_accuracy": {c: (None if np.isnan(a) else float(a)) for c, a in zip(classes, per_class)},
            "confusion": confusion.tolist()}


def read_metrics(path) -> dict:
    """A metrics file read back, held to what `summarize` writes; else ValueError naming the file and the field."""
    metrics = read_json(path)

    def percent(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100

    try:
        per_class, confusion = metrics["per_class_accuracy"], metrics["confusion"]
        problems = [name for name, ok in [
            ("accuracy", percent(metrics["accuracy"])),
            ("per_class_accuracy", isinstance(per_class, dict)
             and all(v is None or percent(v) for v in per_class.values())),
            ("confusion", isinstance(confusion, list) and all(
                isinstance(row, list) and len(row) == len(confusion)
                and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in row) for row in confusion)),
        ] if not ok]
    except (KeyError, TypeError) as error:
        problems = [f"missing or malformed ({error})"]
    if problems:
        raise ValueError(f"{path}: field {', '.join(problems)} out of range; delete it to re-evaluate")
    return metrics


def read_scores(path, expected_rows: int | None = None):
    """Load a score file, refusing one that is malformed or has missing rows (naming the file)."""
    with open(path) as fh:
        header = fh.readline().rstrip("\n").split("\t")
    if header != SCORE_COLUMNS:
        raise ValueError(f"{path}: header {header} is not {SCORE_COLUMNS}")
    try:
        table = np.loadtxt(path, delimiter="\t", skiprows=1, ndmin=2)
    except ValueError as error:  # a row cut off or edited by hand: numpy's message alone names no file
        raise ValueError(f"{path}: not a score file ({error}); delete it to re-evaluate") from None
    if table.shape[1] != len(SCORE_COLUMNS):
        raise ValueError(f"{path}: rows have {table.shape[1]} columns, expected {len(SCORE_COLUMNS)}")
    if expected_rows is not None and len(table) != expected_rows:
        raise ValueError(f"{path}: {len(table)} rows, expected {expected_rows} (one per test image); "
                         "delete it to re-evaluate")
    index = table[:, 0].astype(int)
    if not np.array_equal(index, np.arange(len(table))):
        raise ValueError(f"{path}: the index column is not 0..{len(table) - 1} in order (missing rows?)")
    probs, loss = table[:, 4:], table[:, 3]
    for name, bad in [("p0..p9", ~np.isfinite(probs).all(1) | (probs < 0).any(1) | (probs > 1).any(1)),
                      ("loss", ~np.isfinite(loss) | (loss < 0)),
                      ("label", (table[:, 1] < 0) | (table[:, 1] >= probs.shape[1]) | (table[:, 1] % 1 != 0)),
                      ("pred", (table[:, 2] < 0) | (table[:, 2] >= probs.shape[1]) | (table[:, 2] % 1 != 0))]:
        if bad.any():  # a file read back is held to what evaluation writes: finite probabilities, classes 0-9
            raise ValueError(f"{path}: column {name} out of range in {int(bad.sum())} rows (first: image "
                             f"{int(np.flatnonzero(bad)[0])}); delete it to re-evaluate")
    return {"index": index, "label": table[:, 1].astype(int), "pred": table[:, 2].astype(int),
            "loss": loss, "probs": probs}


def read_score_set(paths, labels, classes=None, *, test_set="the test set") -> list[dict]:
    """Every score file of a set of runs, in order, each checked against the test set's labels and `classes`."""
    labels = np.asarray(labels)
    paths = list(paths)
    if not paths:
        raise ValueError(f"no score files given for {test_set}")
    columns = None if classes is None else len(classes)
    out = []
    for path in paths:
        scores = read_scores(path, expected_rows=len(labels))
        differ = np.flatnonzero(scores["label"] != labels)
        if len(differ):
            i = int(differ[0])
            raise ValueError(f"{path}: labels disagree with {test_set} on {len(differ)} images (first: index {i}, "
                             f"{scores['label'][i]} here, {labels[i]} there); re-evaluate the variant")
        if columns is None:
            columns = scores["probs"].shape[1]
        if scores["probs"].shape[1] != columns:
            raise ValueError(f"{path}: {scores['probs'].shape[1]} probability columns, expected {columns}"
                             + ("" if classes is None else f" (the classes of {test_set}: {list(classes)})"))
        out.append(scores)
    return out
