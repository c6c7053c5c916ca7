"""Running a search (config `tuning`, planned by `tuning.py`): one trial of one rung, the ranking, the choice.

Ranking (the choice, and who continues to the next rung): the higher validation accuracy of the
kept epoch (the best epoch with keep: best), then the lower validation loss of that epoch
(`tie_break: val_loss`), then the earlier configuration in the space's order. A trial trains on
the training part of the split and is scored on its validation part only: `finetune.train_variant`,
the loop of every run; the test set is not among its inputs.

Files under results/tuning/<variant>/: rung<r>/trial<k>.json (one trial: its configuration, its
epochs and numbers, its per-epoch history), choice.json (what the twin trains with: the chosen
configuration and epochs), search.json (the choice with its numbers, the rungs, the compute spent)
and trials.tsv (every trial, one row each). A trial's slot k is the configuration's index in rung 0,
and its rank in the previous rung's ranking after that, so that every job is known before any runs.
Kept apart from `tuning.py` (which reads the config) so that a trial's code is only what it runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .io import read_json, write_json, write_tsv

TWIN_SUFFIX = "-tuned"
TRIAL_COLUMNS = ["rung", "slot", "config_index", "config", "epochs", "kept_epoch", "val_acc", "val_loss",
                 "seconds", "continued", "chosen"]


# --------------------------------------------------------------------------- ranking and the choice
def rank(records: list[dict], tie_break: str) -> list[dict]:
    """Best first: higher val_acc, then (tie_break val_loss) lower val_loss, then the earlier configuration."""
    def key(r):
        return (-r["val_acc"], r["val_loss"] if tie_break == "val_loss" else 0.0, r["config_index"])

    return sorted(records, key=key)


def pick_from_previous(previous: list[dict], slot: int, tie_break: str) -> dict:
    """The trial of the previous rung that slot `slot` of this rung continues: its `slot`-th best."""
    ranked = rank(previous, tie_break)
    if slot >= len(ranked):
        raise ValueError(f"slot {slot} of a rung that continues only {len(ranked)} trials")
    return ranked[slot]


def choose(records: list[dict], plan: dict, variant: str) -> tuple[dict, list[dict]]:
    """The choice (the best trial of the last rung) and every trial's row for trials.tsv."""
    last = len(plan["rungs"]) - 1
    final = [r for r in records if r["rung"] == last]
    if len(final) != plan["rungs"][-1]["trials"]:
        raise ValueError(f"{variant}: {len(final)} trials in the last rung, the plan has {plan['rungs'][-1]['trials']}")
    best = rank(final, plan["tie_break"])[0]
    continued = {(r["rung"] - 1, r["continues"]) for r in records if r["rung"] > 0}
    rows = []
    for r in sorted(records, key=lambda r: (r["rung"], r["slot"])):
        rows.append({"rung": r["rung"], "slot": r["slot"], "config_index": r["config_index"],
                     "config": json.dumps(r["config"], sort_keys=True), "epochs": r["epochs"],
                     "kept_epoch": r["kept_epoch"], "val_acc": r["val_acc"], "val_loss": r["val_loss"],
                     "seconds": r["seconds"], "continued": int((r["rung"], r["slot"]) in continued),
                     "chosen": int(r is best)})
    seconds = sum(r["seconds"] for r in records)
    choice = {
        "variant": variant,
        "twin": f"{variant}{TWIN_SUFFIX}",
        "method": plan["method"],
        "selected_by": "validation accuracy of the kept epoch; ties: " +
                       ("lower validation loss, then " if plan["tie_break"] == "val_loss" else "") +
                       "the earlier configuration in the space's order",
        "config": best["config"],
        "config_index": best["config_index"],
        "settings": best["settings"],
        "val_acc": best["val_acc"],
        "val_loss": best["val_loss"],
        "kept_epoch": best["kept_epoch"],
        "epochs": best["epochs"],
        "converged": convergence(best["history"]),
        "rungs": plan["rungs"],
        "configs": len(plan["configs"]),
        "trials": len(records),
        "trial_epochs": sum(r["epochs_run"] for r in records),
        "grid_epochs": len(plan["configs"]) * plan["epochs"],
        "trial_seconds": seconds,
        "device_hours": seconds / 3600,
        "devices": sorted({r["device"] for r in records}),
        "seed": plan["seed"],
    }
    return choice, rows


def convergence(history: list[dict]) -> dict:
    """Whether a run's kept epoch is its last, and how much its validation accuracy rose over the last
    fifth of its epochs (last scored epoch minus the one before that fifth; points)."""
    scored = [(r["epoch"], r["val_acc"]) for r in history if r.get("val_acc") is not None]
    if not scored:
        return {"kept_is_last": None, "last_fifth_rise": None}
    epochs = history[-1]["epoch"]
    start = epochs - max(1, round(epochs / 5))
    before = [acc for epoch, acc in scored if epoch <= start]
    best_epoch = max(scored, key=lambda item: item[1])[0]  # the first best, as keep: best keeps
    return {"kept_is_last": best_epoch == scored[-1][0],
            "last_fifth_rise": scored[-1][1] - before[-1] if before else None}


# --------------------------------------------------------------------------- one trial (torch)
def run_trial(backbone, train, split, record_out, epochs_out, state_out, plan: dict, rung: int, slot: int,
              device: str = "auto", previous: list | None = None, previous_states: list | None = None) -> dict:
    """One trial of one rung: train (rung 0) or continue (later rungs) a configuration on the training
    part of the split, score it on the validation part, write its record; its resume state stays in
    `state_out` for the next rung. Trials run `finetune.train_variant`: the loop of every run."""
    from .finetune import train_variant

    epochs = plan["rungs"][rung]["epochs"]
    if rung == 0:
        index, continues = slot, None
    else:
        records = [read_json(path) for path in previous]
        parent = pick_from_previous(records, slot, plan["tie_break"])
        index, continues = parent["config_index"], parent["slot"]
        shutil.copyfile(previous_states[parent["slot"]], state_out)
    settings = plan["settings"][index]
    summary_path = Path(str(record_out) + ".summary.tmp")
    history = train_variant(backbone, train, None, epochs_out, settings, seed=plan["seed"], device=device,
                            resume_path=state_out, summary_out=summary_path, split_path=split,
                            stop_after=epochs, keep_resume=True)
    summary = read_json(summary_path)
    summary_path.unlink()
    done_before = plan["rungs"][rung - 1]["epochs"] if rung else 0
    if rung and summary["resumed_from_epoch"] != done_before:
        # the saved state was not taken up (another configuration or other inputs): trained from scratch
        raise ValueError(f"{record_out}: did not continue {previous[parent['slot']]} from its saved state "
                         f"{previous_states[parent['slot']]}; rerun the previous rung")
    kept = history[summary["kept_epoch"] - 1]
    record = {"rung": rung, "slot": slot, "config_index": index, "config": plan["configs"][index],
              "continues": continues, "settings": settings, "epochs": epochs, "epochs_run": epochs - done_before,
              "kept_epoch": summary["kept_epoch"], "val_acc": kept["val_acc"], "val_loss": kept["val_loss"],
              "seconds": sum(r["seconds"] for r in history[done_before:]), "device": summary["device"],
              "history": history}
    write_json(record_out, record)
    return record


# What a twin trains with, and nothing else: a search rerun that chooses the same writes the same bytes, and
# Snakemake (which compares an updated input's checksum with the one it recorded) then retrains no twin.
CHOICE_KEYS = ("variant", "twin", "config", "epochs")


def write_choice(records_paths: list, choice_out, search_out, trials_out, plan: dict, variant: str) -> dict:
    """choice.json (CHOICE_KEYS), search.json (the choice with its numbers, the rungs and the compute) and
    trials.tsv (every trial). Returns search.json's dict."""
    summary, rows = choose([read_json(p) for p in records_paths], plan, variant)
    write_tsv(trials_out, TRIAL_COLUMNS, rows)
    write_json(search_out, summary)
    write_json(choice_out, {key: summary[key] for key in CHOICE_KEYS})
    return summary


def search(backbone, train, split, folder, plan: dict, device: str = "auto") -> dict:
    """The whole search of one variant in this process, rung by rung, with the files the rules write
    (the benchmark's way to compare halving with the grid)."""
    folder = Path(folder)
    records = []
    for rung, spec in enumerate(plan["rungs"]):
        previous = [folder / f"rung{rung - 1}" / f"trial{k}.json" for k in range(plan["rungs"][rung - 1]["trials"])] \
            if rung else None
        states = [folder / f"rung{rung - 1}" / f"trial{k}.state.pt" for k in range(plan["rungs"][rung - 1]["trials"])] \
            if rung else None
        for slot in range(spec["trials"]):
            base = folder / f"rung{rung}" / f"trial{slot}"
            base.parent.mkdir(parents=True, exist_ok=True)
            records.append(run_trial(backbone, train, split, f"{base}.json", f"{base}.epochs.tsv", f"{base}.state.pt",
                                     plan, rung, slot, device, previous, states))
    return write_choice([folder / f"rung{r['rung']}" / f"trial{r['slot']}.json" for r in records],
                        folder / "choice.json", folder / "search.json", folder / "trials.tsv", plan, str(folder.name))


def with_choice(settings: dict, choice_path) -> dict:
    """A tuned twin's settings (tuning.enabled): its own, with the searched keys its variant's search chose
    on the validation split (results/tuning/<variant>/choice.json, `search.write_choice`) over them;
    `settings` as they are without a choice file (a variant that is not a twin)."""
    if choice_path is None:
        return settings
    choice = read_json(choice_path)
    if choice["epochs"] != settings["epochs"]:
        raise ValueError(f"{choice_path}: chosen for {choice['epochs']} epochs, but the twin trains "
                         f"{settings['epochs']}; rerun its tuning")
    return {**settings, **choice["config"]}
