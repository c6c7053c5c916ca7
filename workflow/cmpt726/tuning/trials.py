"""Running a search: one trial of one rung, through `finetune.train_variant`, scored on validation only.

Slot k is the configuration's index in rung 0, later its rank in the previous rung, so every job is known early.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..files import read_json, write_json
from ..finetune import train_variant
from .choice import pick_from_previous, write_choice


def run_trial(backbone, train, split, record_out, epochs_out, state_out, plan: dict, rung: int, slot: int,
              device: str = "auto", previous: list | None = None, previous_states: list | None = None) -> dict:
    """One trial of one rung: train (rung 0) or continue a configuration, write its record; its resume state
    stays in `state_out` for the next rung."""
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
    if rung and summary["resumed_from_epoch"] != done_before:  # the saved state was not taken up
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


def search(backbone, train, split, folder, plan: dict, device: str = "auto") -> dict:
    """The whole search of one variant in this process, rung by rung, with the files the rules write."""
    folder = Path(folder)
    records = []
    for rung, spec in enumerate(plan["rungs"]):
        before = [folder / f"rung{rung - 1}" / f"trial{k}" for k in range(plan["rungs"][rung - 1]["trials"])]
        previous = [f"{b}.json" for b in before] if rung else None
        states = [f"{b}.state.pt" for b in before] if rung else None
        for slot in range(spec["trials"]):
            base = folder / f"rung{rung}" / f"trial{slot}"
            base.parent.mkdir(parents=True, exist_ok=True)
            records.append(run_trial(backbone, train, split, f"{base}.json", f"{base}.epochs.tsv", f"{base}.state.pt",
                                     plan, rung, slot, device, previous, states))
    return write_choice([folder / f"rung{r['rung']}" / f"trial{r['slot']}.json" for r in records],
                        folder / "choice.json", folder / "search.json", folder / "trials.tsv", plan, str(folder.name))


