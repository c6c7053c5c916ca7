"""Rule summarize_analyses: label errors, the models against CIFAR-10H's people and near-duplicates, as the
report shows them (figures and one numbers.json for sections/analysis.html.j2)."""

import numpy as np

from .. import stats
from ..analysis import label_issues as li
from ..analysis import near_duplicates as nd
from ..analysis.duplicate_check import check_sample_file
from ..data import load_arrays
from ..evaluation import read_score_set
from ..files import read_json, write_json
from ..plotting import plain_text, plt, save_figure
from . import figures

N_SHOWN = 24


def _scores_by_variant(runs, scores, labels, classes, test_set):
    """variant → [read_scores of each seed], in run order, each checked against the test set."""
    out: dict[str, list] = {}
    for (variant, _seed), table in zip(runs, read_score_set(scores, labels, classes, test_set=test_set)):
        out.setdefault(variant, []).append(table)
    return out


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def label_issue_numbers(table: dict, summary: dict, by_variant: dict, labels, focus: str, human_disagree=None,
                        human_majority=None) -> dict:
    """How many suspects, every variant's mistakes against suspects found without it, and the suspects against
    CIFAR-10H's people."""
    suspects = table["index"]
    flagging = set(summary.get("variants") or [])
    loo = summary.get("leave_one_out") or {}
    families = summary.get("families") or {}
    variants = {}
    for name, runs in by_variant.items():
        if families.get(name, name) in loo:
            own = {**loo[families.get(name, name)], "suspects_from": "leave-one-out"}
        elif name in flagging:
            own = {"accuracy": _mean([li.summary(labels, s["probs"], suspects)["accuracy"] for s in runs]),
                   "accuracy_without_suspects": None, "mistakes_suspect_share": None, "mistakes": None,
                   "mistakes_suspect": None, "n_suspects": None,
                   "suspects_from": "circular (the only flagging variant)"}
        else:
            per_seed = [li.summary(labels, s["probs"], suspects) for s in runs]
            own = {key: _mean([p[key] for p in per_seed])
                   for key in ("accuracy", "accuracy_without_suspects", "mistakes", "mistakes_suspect")}
            own.update(n_suspects=int(len(suspects)), suspects_from="all flagging variants (not this one)",
                       mistakes_suspect_share=(100 * own["mistakes_suspect"] / own["mistakes"]
                                               if own["mistakes"] else None))
        variants[name] = own
    overlap = None
    if human_disagree is not None:
        # Do people reject the label more often on a suspect than elsewhere (label problems, not model errors)?
        human_disagree = np.asarray(human_disagree, dtype=bool)
        both = int(human_disagree[suspects].sum()) if len(suspects) else 0
        n_others = len(human_disagree) - len(suspects)
        overlap = {"suspects": int(len(suspects)), "people_disagree": int(human_disagree.sum()), "both": both,
                   "share_suspects": 100.0 * both / len(suspects) if len(suspects) else None,
                   "share_others": 100.0 * (int(human_disagree.sum()) - both) / n_others if n_others else None,
                   "precision_ci": list(stats.wilson_interval(both, len(suspects))) if len(suspects) else None,
                   "suggested_is_majority": None}
        if human_majority is not None and len(suspects):
            hits = int((np.asarray(human_majority)[suspects] == np.asarray(table["suggested"])).sum())
            overlap["suggested_is_majority"] = 100.0 * hits / len(suspects)
    return {"n_suspects": int(len(suspects)), "n_models": summary["n_models"], "filter_by": summary["filter_by"],
            "model_accuracy": summary["model_accuracy"], "flagging_variants": sorted(flagging),
            "focus": variants[focus], "variants": variants, "human_overlap": overlap,
            "top": [{"index": int(i), "given": g, "suggested": s, "confidence": float(c)}
                    for i, g, s, c in zip(suspects[:N_SHOWN], table["given"][:N_SHOWN], table["suggested"][:N_SHOWN],
                                          table["self_confidence"][:N_SHOWN])]}


def human_numbers(metrics: dict, table: dict) -> dict:
    """The people (how many images they disagree or are unsure on) and every variant against them."""
    variants = {name: {k: v[k] for k in ("accuracy", "accuracy_std", "accuracy_vs_majority", "accuracy_vs_majority_std",
                                        "cross_entropy", "cross_entropy_std")}
                for name, v in metrics["variants"].items()}
    ranked = sorted(variants, key=lambda n: variants[n]["cross_entropy"])
    return {"humans": metrics["humans"], "settings": metrics["settings"], "variants": variants,
            "lowest_cross_entropy": ranked[0], "highest_cross_entropy": ranked[-1],
            "ranking": metrics.get("cross_entropy_ranking"),  # paired intervals: a 0.001-nat lead is no ranking
            "disagree_examples": [int(i) for i in table["index"][table["disagree"]][:N_SHOWN]]}


EASE_BINS = 10


def matched_accuracy(hit, flagged, ease, bins: int = EASE_BINS) -> float | None:
    """The accuracy (%) the flagged images would have if only as easy as `ease` says (others of the same bin)."""
    hit = np.asarray(hit, dtype=np.float64)
    flagged = np.asarray(flagged, dtype=bool)
    ease = np.asarray(ease, dtype=np.float64)
    other = ~flagged
    if not flagged.any() or not other.any():
        return None
    edges = np.quantile(ease[other], np.linspace(0, 1, bins + 1)[1:-1])
    which = np.searchsorted(edges, ease, side="right")
    per_image = hit.reshape(-1, len(flagged)).mean(0)
    counts = np.bincount(which[other], minlength=bins)
    sums = np.bincount(which[other], weights=per_image[other], minlength=bins)
    expected = (sums / np.maximum(counts, 1))[which[flagged]]
    usable = counts[which[flagged]] > 0
    return float(100 * expected[usable].mean()) if usable.any() else None


def duplicate_numbers(table: list[dict], summary: dict, by_variant: dict, labels,
                      ease_variant: str | None = None) -> dict:
    """The flagged pairs and, per variant, accuracy on flagged against other and equally easy test images."""
    flagged = np.array([bool(r["flagged"]) for r in table])
    n_flagged = int(flagged.sum())
    ease = None
    if ease_variant is not None and ease_variant in by_variant:
        ease = np.mean([s["probs"][np.arange(len(labels)), labels] for s in by_variant[ease_variant]], axis=0)
    variants = {}
    for name, runs in by_variant.items():
        hit = np.stack([s["pred"] == labels for s in runs])
        on, off = (100 * hit[:, flagged].mean() if n_flagged else None), 100 * hit[:, ~flagged].mean()
        interval = stats.wilson_interval(round(on / 100 * n_flagged), n_flagged) if n_flagged else (None, None)
        matched = matched_accuracy(hit, flagged, ease) if ease is not None else None
        variants[name] = {"flagged": on, "other": off, "difference": None if on is None else on - off,
                          "flagged_ci": list(interval), "matched": matched,
                          "beyond_ease": None if matched is None or on is None else on - matched}
    pairs = sorted((r for r in table if r["flagged"]), key=lambda r: r["pixel_distance"])
    return {**{k: summary[k] for k in ("threshold", "rule", "n_test", "n_train", "n_flagged",
                                        "n_flagged_other_label", "n_flagged_feature_agrees")},
            "k": summary.get("k"), "seconds": summary["seconds"], "variants": variants,
            "ease_variant": ease_variant if ease is not None else None, "ease_bins": EASE_BINS,
            "shown": [{"index": int(r["index"]), "train_index": int(r["train_index"]),
                       "distance": float(r["pixel_distance"])} for r in pairs[:N_SHOWN]]}


def plot_suspects(images, top: list[dict], path) -> None:
    """The images whose label the models reject most firmly."""
    figures.plot_image_grid([[(images[s["index"]], f"#{s['index']}  {s['given']} →\n{s['suggested']}  "
                                                   f"(p {s['confidence']:.2f})", "#7a4a00")] for s in top],
                            "Labels the models reject: given label → the models' suggestion (mean probability of the "
                            "given label)", path, "no suspects")


@plain_text
def plot_humans(metrics: dict, path) -> None:
    """Model confidence against human agreement, and every variant's cross-entropy against the people's votes."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.25, 1]})
    colors = plt.get_cmap("tab10")
    variants = metrics["variants"]
    for i, (name, v) in enumerate(variants.items()):
        bins = v["bins"]
        x = bins["mean_human"]
        keep = [j for j, value in enumerate(x) if value is not None and bins["mean_confidence"][j] is not None]
        left.plot([x[j] for j in keep], [bins["mean_confidence"][j] for j in keep], marker="o", markersize=3.5,
                  color=colors(i % 10), label=name, lw=1.4)
    left.plot([0, 1], [0, 1], "--", color="#444", lw=1, label="confidence = agreement")
    left.set(xlabel="people choosing the official label (share, bin mean)", ylabel="model's top probability (mean)",
             title="Model confidence against human agreement", xlim=(0, 1.02), ylim=(0, 1.02))
    left.grid(alpha=0.3)
    left.legend(fontsize=7, loc="lower right")
    order = sorted(variants, key=lambda n: variants[n]["cross_entropy"])
    ce = [variants[n]["cross_entropy"] for n in order]
    err = [variants[n]["cross_entropy_std"] or 0 for n in order]
    right.barh(range(len(order)), ce, xerr=err, color="#1f77b4", capsize=2)
    right.set_yticks(range(len(order)), order, fontsize=8)
    right.invert_yaxis()
    right.set(xlabel="cross-entropy against the people's votes (nats)", title="Fit to human uncertainty")
    right.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def plot_duplicates(test_images, train_images, test_labels, train_labels, classes, shown: list[dict], path) -> None:
    """Flagged pairs side by side: the test image and its nearest training image, with their labels."""
    figures.plot_image_grid(
        [[(test_images[p["index"]], f"test #{p['index']}\n{classes[test_labels[p['index']]]}", "#222"),
          (train_images[p["train_index"]], f"train #{p['train_index']}\n{classes[train_labels[p['train_index']]]}"
                                           f"  d {p['distance']:.2f}", "#555")] for p in shown[:N_SHOWN]],
        "Test images with a near-duplicate in the training set (left) and that training image (right)", path,
        "no near-duplicates", cols=8, cell=(1.3, 1.7))


@plain_text
def analysis_outputs(spec: dict, paths: dict) -> dict:
    """Rule summarize_analyses: the figures suspects, humans, duplicates, and numbers.json."""
    test_x, labels, classes = load_arrays(paths["test"])
    train_x, train_labels, _ = load_arrays(paths["train"])
    q6 = read_json(paths["q6"])
    by_variant = _scores_by_variant([tuple(r) for r in spec["runs"]], paths["scores"], labels, classes, paths["test"])
    focus = q6["focus"]

    human_table = None
    humans = None
    if paths.get("human_labels") is not None:
        from ..analysis.human_labels import read_human_table

        human_table = read_human_table(paths["human_labels"])
        human_metrics = read_json(paths["human_metrics"])
        humans = human_numbers(human_metrics, human_table)
        plot_humans(human_metrics, paths["humans"])
    else:
        fig, ax = plt.subplots(figsize=(6, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "CIFAR-10H is off (data.cifar10h.enabled: false)", ha="center", va="center")
        save_figure(fig, paths["humans"])

    issues = label_issue_numbers(li.read_label_issues(paths["label_issues"]), read_json(paths["label_issues_summary"]),
                                 by_variant, labels, focus,
                                 None if human_table is None else human_table["disagree"],
                                 None if human_table is None else human_table["human_majority"])
    # The ease control's reference: the first variant trained on frozen features (train: head), if any.
    ease_variant = next((r["name"] for r in q6.get("rows", []) if r.get("train") == "head"), None)
    duplicate_table = nd.read_near_duplicates(paths["near_duplicates"])
    duplicate_summary = read_json(paths["near_duplicates_summary"])
    duplicates = duplicate_numbers(duplicate_table, duplicate_summary, by_variant, labels, ease_variant)
    duplicates["check"] = None if paths.get("duplicate_sample") is None else \
        check_sample_file(paths["duplicate_sample"], duplicate_table, duplicate_summary["threshold"])
    plot_suspects(test_x, issues["top"], paths["suspects"])
    plot_duplicates(test_x, train_x, labels, train_labels, classes, duplicates["shown"], paths["duplicates"])
    numbers = {"focus": focus, "seed": q6["seed"], "n_test": int(len(labels)), "variants": list(by_variant),
               "label_issues": issues, "humans": humans, "near_duplicates": duplicates}
    write_json(paths["numbers"], numbers)
    return numbers
