"""Fine-tune one variant with one seed: the set-up around `loop.fit`; the test set is never read here."""

import copy
import math
import os
import resource
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from . import augment, models
from .files import atomic_path, read_json, write_json, write_tsv
from .loop import Diverged, Fit, ResumeState, fingerprint, fit, learning_rate
from .stacked import fit_stacked
from . import device as devices
from .runtime import FeatureBatches, load_inputs
from .code_digest import stage_digest

EPOCH_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]


def train_variant(spec: dict, paths: dict, on_epoch=None) -> list[dict]:
    """Train one variant with one seed (rule train_variant's spec and paths); write its per-epoch metrics, and
    its checkpoint and summary where `paths` names them. Returns the per-epoch rows."""
    settings = apply_choice(spec["settings"], paths.get("choice"), spec.get("searched"))
    seed, device = int(spec["seed"]), devices.resolve(spec.get("device", "auto"))
    data = load_training_data(settings, device, paths)
    run = make_run(settings, seed, device, models.load_backbone_state(paths["backbone"]), data)
    optimizer = torch.optim.SGD(run.params, lr=settings["lr"], momentum=settings["momentum"],
                                nesterov=settings["nesterov"], weight_decay=settings["weight_decay"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    resume = ResumeState(paths.get("resume"), fingerprint(settings, seed, data.inputs_used,
                                                          spec.get("code") or stage_digest("train")))
    job = Fit(model=run.model, net=run.net, optimizer=optimizer, train=run.train, held_out=data.held_out,
              epochs=settings["epochs"], batch_size=settings["batch_size"], shuffle=run.shuffle,
              lr_at=schedule(settings, math.ceil(len(data.train[1]) / settings["batch_size"])),
              set_train_mode=run.set_train_mode, bf16=settings["bf16"],
              keep=settings["keep"] if data.held_out is not None else "last",
              generators={"augment": run.augment_rng}, resume=resume, on_epoch=on_epoch,
              describe=f"variant {spec.get('variant', '?')}, seed {seed}")
    history = fit(job)
    save_run(run, history, job.kept_epoch, paths,
             train_summary(history, device, data, job.keep, job.kept_epoch, job.resumed_from))
    resume.discard()
    return history


def train_seeds(spec: dict, paths: dict) -> list[list[dict]]:
    """Every seed of one variant as one stacked model in this process (rule train_seeds, on CUDA): for seed k of
    spec["seeds"], the files train_variant writes, at the k-th path of paths["checkpoint"], ["epochs"] and
    ["summary"]. A seed that diverged fails the job, naming it, after the others have trained to the end."""
    settings = apply_choice(spec["settings"], paths.get("choice"), spec.get("searched"))
    seeds, device = [int(seed) for seed in spec["seeds"]], devices.resolve(spec.get("device", "auto"))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(spec.get("cudnn_benchmark"))
        torch.cuda.reset_peak_memory_stats(device)
    data = load_training_data(settings, device, paths)
    backbone_state = models.load_backbone_state(paths["backbone"])
    runs = [make_run(settings, seed, device, backbone_state, data) for seed in seeds]
    lr_at = schedule(settings, math.ceil(len(data.train[1]) / settings["batch_size"]))
    histories, kept, diverged = fit_stacked(runs, data.held_out, [lr_at] * len(runs),
                                            capture=bool(spec.get("cuda_graph")) and device.type == "cuda",
                                            describe=f"variant {spec.get('variant', '?')}")
    keep = settings["keep"] if data.held_out is not None else "last"
    for k, run in enumerate(runs):
        if k not in diverged:
            one = {name: paths[name][k] for name in ("checkpoint", "epochs", "summary")}
            save_run(run, histories[k], kept[k], one, {**train_summary(histories[k], device, data, keep, kept[k]),
                                                       "stacked_seeds": seeds})
    if diverged:
        raise Diverged("; ".join(diverged.values()) + "; the other seeds trained to the end (lower the learning rate)")
    return histories


@dataclass
class TrainingData:
    """What every seed of a variant trains on: the training part, the held-out part (or None), as batches."""

    train: tuple       # (batches, labels) on the device
    held_out: tuple | None
    cached: bool       # features of the frozen backbone, not images: only the head runs
    inputs_used: list  # the files read, for the resume fingerprint


def load_training_data(settings: dict, device: torch.device, paths: dict) -> TrainingData:
    """The training file on `device`, split by paths["split"] when there is one."""
    torch.use_deterministic_algorithms(device.type == "cpu", warn_only=True)
    inputs, labels, _ = load_inputs(paths["train"], device, settings["normalize"], settings["channels_last"])
    train, held_out, split_path = (inputs, labels), None, paths.get("split")
    if split_path is not None:
        with np.load(split_path) as split:
            train_idx, val_idx = (torch.from_numpy(split[k]).to(device) for k in ("train", "val"))
        train = (inputs.take(train_idx), labels[train_idx])
        held_out = (inputs.take(val_idx), labels[val_idx])
    print(f"device {device} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); "
          f"{len(train[1])} training images, {0 if held_out is None else len(held_out[1])} held out", flush=True)
    return TrainingData(train, held_out, isinstance(inputs, FeatureBatches),
                        [paths["backbone"], paths["train"]] + ([split_path] if split_path is not None else []))


@dataclass
class Run:
    """One seed's model, the parameters it trains, its batches and random streams: ready to fit, alone or stacked."""

    seed: int
    settings: dict
    model: models.FineTuneNet
    net: torch.nn.Module  # what the batches go through: the model, or its head on cached features
    params: list
    train: tuple          # (batches augmented from this run's own stream, labels)
    shuffle: torch.Generator
    augment_rng: torch.Generator
    set_train_mode: Callable[[], None]


def make_run(settings: dict, seed: int, device: torch.device, backbone_state: dict, data: TrainingData) -> Run:
    """Seed `seed`'s model (head initialised from the seed) and streams: the shuffle, the augmentation and dropout's
    (the global torch stream, seeded last)."""
    model = models.build_finetune_net(backbone_state, settings["head"], seed)
    params = models.trainable_parameters(model, settings["train"], settings["replicate_2019_bugs"])
    net = model.head if data.cached else model
    net.to(device)
    if settings["channels_last"] and not data.cached:
        net.to(memory_format=torch.channels_last)
    shuffle = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout's stream: the same in both paths
    augment_rng = torch.Generator(device=device).manual_seed(seed)
    batches = copy.copy(data.train[0])  # this run's own augmentation over the shared images
    if not data.cached:
        batches.augment = augment.from_settings(settings["augment"], augment_rng, settings["normalize"]["mean"])

    def set_train_mode():
        if data.cached:
            net.train()
        else:
            models.set_train_mode(model, settings["train"], settings["replicate_2019_bugs"])

    return Run(seed, settings, model, net, params, (batches, data.train[1]), shuffle, augment_rng, set_train_mode)


def save_run(run: Run, history: list[dict], kept_epoch: int, paths: dict, summary: dict) -> None:
    """The checkpoint (the kept epoch's weights), the per-epoch table and the summary, where `paths` names them."""
    run.model.cpu()
    if paths.get("checkpoint") is not None:
        with atomic_path(paths["checkpoint"], suffix=".pt") as tmp:
            torch.save({"head": run.settings["head"], "train": run.settings["train"], "seed": run.seed,
                        "epoch": kept_epoch, "state_dict": run.model.state_dict()}, tmp)
    write_tsv(paths["epochs"], EPOCH_COLUMNS, history)
    if paths.get("summary") is not None:
        write_json(paths["summary"], {**summary, "settings": run.settings})


def apply_choice(settings: dict, choice_path, searched: list | None = None) -> dict:
    """`settings` with a tuned twin's choice over them; a choice that is not one of the `searched` is refused."""
    if choice_path is None:
        return settings
    try:
        choice = read_json(choice_path)
        config, epochs = choice["config"], choice["epochs"]
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ValueError(f"{choice_path}: not a choice file ({type(error).__name__}: {error}); rerun its tuning")
    if searched is not None and config not in searched:
        raise ValueError(f"{choice_path}: field config {config} is not one of the {len(searched)} configurations "
                         "its search tried; rerun its tuning")
    if epochs != settings["epochs"]:
        raise ValueError(f"{choice_path}: chosen for {choice['epochs']} epochs, but the twin trains "
                         f"{settings['epochs']}; rerun its tuning")
    return {**settings, **choice["config"]}


def schedule(settings: dict, steps_per_epoch: int):
    """training.schedule as the loop's `lr_at` (step → learning rate); None for constant (the lr never reset)."""
    if settings["schedule"] == "constant":
        return None
    shape = {"epochs": settings["epochs"], "lr": settings["lr"], "schedule": settings["schedule"],
             "eta_min": 0.0, "onecycle": settings["onecycle"]}
    return lambda step: learning_rate(shape, step, steps_per_epoch)


def train_summary(history: list[dict], device: torch.device, data: TrainingData, keep: str, kept_epoch: int | None,
                  resumed_from: int | None = None) -> dict:
    """What the run kept and cost: kept epoch, seconds over all epochs (across resumes; a stacked run's share of
    the stack's), peak RSS and CUDA memory."""
    kept = history[kept_epoch - 1] if kept_epoch else {}
    return {
        "epochs": len(history), "keep": keep, "kept_epoch": kept_epoch, "kept_val_acc": kept.get("val_acc"),
        "images": len(data.train[1]), "validation_images": 0 if data.held_out is None else len(data.held_out[1]),
        "train_seconds": sum(row["seconds"] for row in history), "resumed_from_epoch": resumed_from,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux reports KiB
        "peak_cuda_mb": (torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None,
        "device": devices.name(device), "threads": torch.get_num_threads(),
    }
