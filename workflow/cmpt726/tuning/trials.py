"""Running a search: one trial of one rung, through `finetune.train_variant`, scored on validation only.

Every trial is a complete run whose schedule spans its rung's epochs, so a short rung does not favour the
configurations whose learning rate is still small (short-horizon bias, Wu et al. 2018).
"""

from pathlib import Path

from ..files import read_json, write_json
from ..finetune import train_variant
from .choice import pick_from_previous, write_choice


def trial_settings(plan: dict, index: int, rung: int) -> dict:
    """Configuration `index`'s settings trained for rung `rung`'s epochs: the whole schedule fits the rung."""
    return {**plan["settings"][index], "epochs": plan["rungs"][rung]["epochs"]}


def run_trial(spec: dict, paths: dict) -> dict:
    """One trial (rule tuning_trial): slot k of rung 0 is configuration k, of a later rung the previous one's k-th."""
    plan, rung, slot = spec["plan"], int(spec["rung"]), int(spec["slot"])
    promoted_from = None
    if rung == 0:
        index = slot
    else:
        parent = pick_from_previous([read_json(path) for path in paths["previous"]], slot, plan["tie_break"])
        index, promoted_from = parent["config_index"], parent["slot"]
    settings = trial_settings(plan, index, rung)
    summary_path = Path(str(paths["record"]) + ".summary.tmp")
    history = train_variant({"seed": plan["seed"], "settings": settings, "device": spec.get("device", "auto"),
                             "variant": f"{spec.get('variant', '?')} trial {rung}.{slot}"},
                            {"backbone": paths["backbone"], "train": paths["train"], "split": paths["split"],
                             "epochs": paths["epochs"], "summary": summary_path, "resume": paths.get("resume")})
    summary = read_json(summary_path)
    summary_path.unlink()
    kept = history[summary["kept_epoch"] - 1]
    record = {"rung": rung, "slot": slot, "config_index": index, "config": plan["configs"][index],
              "promoted_from": promoted_from, "settings": settings, "epochs": settings["epochs"],
              "kept_epoch": summary["kept_epoch"], "val_acc": kept["val_acc"], "val_loss": kept["val_loss"],
              "seconds": sum(r["seconds"] for r in history), "device": summary["device"], "history": history}
    write_json(paths["record"], record)
    return record


def search(backbone, train, split, folder, plan: dict, device: str = "auto") -> dict:
    """The whole search of one variant in this process, rung by rung, with the files the rules write."""
    folder = Path(folder)
    records = []
    for rung, spec in enumerate(plan["rungs"]):
        previous = [folder / f"rung{rung - 1}" / f"trial{k}.json" for k in range(plan["rungs"][rung - 1]["trials"])] \
            if rung else None
        for slot in range(spec["trials"]):
            base = folder / f"rung{rung}" / f"trial{slot}"
            base.parent.mkdir(parents=True, exist_ok=True)
            records.append(run_trial({"plan": plan, "rung": rung, "slot": slot, "device": device},
                                     {"backbone": backbone, "train": train, "split": split, "previous": previous,
                                      "record": f"{base}.json", "epochs": f"{base}.epochs.tsv"}))
    return write_choice([folder / f"rung{r['rung']}" / f"trial{r['slot']}.json" for r in records],
                        folder / "choice.json", folder / "search.json", folder / "trials.tsv", plan, str(folder.name))


