"""A search's ranking and its choice (no torch): who is promoted to the next rung, what the twin trains with."""

import json

from ..files import read_json, write_json, write_tsv

TWIN_SUFFIX = "-tuned"
RECIPE_SUFFIX = "-recipe"  # the twin's recipe at one fixed lr and weight decay (tuning.recipe)
TRIAL_COLUMNS = ["rung", "slot", "config_index", "config", "epochs", "kept_epoch", "val_acc", "val_loss",
                 "seconds", "promoted", "chosen"]


def rank(records: list[dict], tie_break: str) -> list[dict]:
    """Best first: higher val_acc, then (tie_break val_loss) lower val_loss, then the earlier configuration."""
    return sorted(records, key=lambda r: (-r["val_acc"], r["val_loss"] if tie_break == "val_loss" else 0.0,
                                         r["config_index"]))


def pick_from_previous(previous: list[dict], slot: int, tie_break: str) -> dict:
    """The trial of the previous rung that slot `slot` of this rung continues: its `slot`-th best."""
    return rank(previous, tie_break)[slot]


def choose(records: list[dict], plan: dict, variant: str) -> tuple[dict, list[dict]]:
    """The choice (the best trial of the last rung) and every trial's row for trials.tsv."""
    last = len(plan["rungs"]) - 1
    final = [r for r in records if r["rung"] == last]
    if len(final) != plan["rungs"][-1]["trials"]:
        raise ValueError(f"{variant}: {len(final)} trials in the last rung, the plan has {plan['rungs'][-1]['trials']}")
    best = rank(final, plan["tie_break"])[0]
    promoted = {(r["rung"] - 1, r["promoted_from"]) for r in records if r["rung"] > 0}
    rows = [{"rung": r["rung"], "slot": r["slot"], "config_index": r["config_index"],
             "config": json.dumps(r["config"], sort_keys=True), "epochs": r["epochs"],
             "kept_epoch": r["kept_epoch"], "val_acc": r["val_acc"], "val_loss": r["val_loss"],
             "seconds": r["seconds"], "promoted": int((r["rung"], r["slot"]) in promoted), "chosen": int(r is best)}
            for r in sorted(records, key=lambda r: (r["rung"], r["slot"]))]
    seconds = sum(r["seconds"] for r in records)
    choice = {
        "variant": variant, "twin": f"{variant}{TWIN_SUFFIX}", "method": plan["method"],
        "selected_by": "validation accuracy of the kept epoch; ties: " +
                       ("lower validation loss, then " if plan["tie_break"] == "val_loss" else "") +
                       "the earlier configuration in the space's order",
        **{key: best[key] for key in ("config", "config_index", "settings", "val_acc", "val_loss", "kept_epoch",
                                      "epochs")},
        "converged": convergence(best["history"]), "rungs": plan["rungs"], "configs": len(plan["configs"]),
        "trials": len(records), "trial_epochs": sum(r["epochs"] for r in records),
        "grid_epochs": len(plan["configs"]) * plan["epochs"], "trial_seconds": seconds,
        "device_hours": seconds / 3600, "devices": sorted({r["device"] for r in records}), "seed": plan["seed"],
    }
    return choice, rows


def convergence(history: list[dict]) -> dict:
    """Whether a run's kept epoch is its last, and its validation accuracy's rise over the last fifth (points)."""
    scored = [(r["epoch"], r["val_acc"]) for r in history if r.get("val_acc") is not None]
    if not scored:
        return {"kept_is_last": None, "last_fifth_rise": None}
    epochs = history[-1]["epoch"]
    start = epochs - max(1, round(epochs / 5))
    before = [acc for epoch, acc in scored if epoch <= start]
    best_epoch = max(scored, key=lambda item: item[1])[0]  # the first best, as keep: best keeps
    return {"kept_is_last": best_epoch == scored[-1][0],
            "last_fifth_rise": scored[-1][1] - before[-1] if before else None}


def runs_convergence(histories: list[list[dict]]) -> dict:
    """`convergence` over several runs: `kept_last` of `runs` (`scored` on validation), mean `last_fifth_rise`."""
    runs = [convergence(h) for h in histories]
    rises = [r["last_fifth_rise"] for r in runs if r["last_fifth_rise"] is not None]
    return {"kept_last": sum(bool(r["kept_is_last"]) for r in runs), "runs": len(runs),
            "scored": sum(r["kept_is_last"] is not None for r in runs),
            "last_fifth_rise": sum(rises) / len(rises) if rises else None}


# What a twin trains with, and nothing else: the same choice writes the same bytes and retrains no twin.
CHOICE_KEYS = ("variant", "twin", "config", "epochs")


def write_choice(records_paths: list, choice_out, search_out, trials_out, plan: dict, variant: str) -> dict:
    """choice.json (CHOICE_KEYS), search.json (returned) and trials.tsv (every trial)."""
    summary, rows = choose([read_json(p) for p in records_paths], plan, variant)
    write_tsv(trials_out, TRIAL_COLUMNS, rows)
    write_json(search_out, summary)
    write_json(choice_out, {key: summary[key] for key in CHOICE_KEYS})
    return summary
