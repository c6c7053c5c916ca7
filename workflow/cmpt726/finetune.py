"""Fine-tune one variant with one seed: the set-up around `loop.fit`; the test set is never read here."""

import math
import os
import resource

import numpy as np
import torch

from . import augment, models
from .files import atomic_path, read_json, write_json, write_tsv
from .loop import Fit, ResumeState, fingerprint, fit, learning_rate
from . import device as devices
from .runtime import FeatureBatches, load_inputs
from .code_digest import stage_digest

EPOCH_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]


def train_variant(spec: dict, paths: dict, on_epoch=None) -> list[dict]:
    """Train one variant with one seed (rule train_variant's spec and paths); write its per-epoch metrics, and
    its checkpoint and summary where `paths` names them. Returns the per-epoch rows."""
    settings = apply_choice(spec["settings"], paths.get("choice"), spec.get("searched"))
    seed, device = int(spec["seed"]), devices.resolve(spec.get("device", "auto"))
    backbone_path, train_path, split_path = paths["backbone"], paths["train"], paths.get("split")
    torch.use_deterministic_algorithms(device.type == "cpu", warn_only=True)
    backbone_state = models.load_backbone_state(backbone_path)
    model = models.build_finetune_net(backbone_state, settings["head"], seed)
    inputs, labels, _ = load_inputs(train_path, device, settings["normalize"], settings["channels_last"])
    cached = isinstance(inputs, FeatureBatches)
    train, held_out = (inputs, labels), None
    if split_path is not None:
        with np.load(split_path) as split:
            train_idx, val_idx = (torch.from_numpy(split[k]).to(device) for k in ("train", "val"))
        train = (inputs.take(train_idx), labels[train_idx])
        held_out = (inputs.take(val_idx), labels[val_idx])

    params = models.trainable_parameters(model, settings["train"], settings["replicate_2019_bugs"])
    net = model.head if cached else model  # what the batches go through
    net.to(device)
    if settings["channels_last"] and not cached:
        net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(params, lr=settings["lr"], momentum=settings["momentum"],
                                nesterov=settings["nesterov"], weight_decay=settings["weight_decay"])
    lr_at = schedule(settings, math.ceil(len(train[1]) / settings["batch_size"]))
    shuffle = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout's stream: the same in both paths
    augment_rng = torch.Generator(device=device).manual_seed(seed)
    if not cached:
        train[0].augment = augment.from_settings(settings["augment"], augment_rng, settings["normalize"]["mean"])

    def set_train_mode():
        if cached:
            net.train()
        else:
            models.set_train_mode(model, settings["train"], settings["replicate_2019_bugs"])

    print(f"device {device} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); "
          f"{len(train[1])} training images, {0 if held_out is None else len(held_out[1])} held out", flush=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    inputs_used = [backbone_path, train_path] + ([split_path] if split_path is not None else [])
    resume = ResumeState(paths.get("resume"), fingerprint(settings, seed, inputs_used,
                                                          spec.get("code") or stage_digest("train")))
    job = Fit(model=model, net=net, optimizer=optimizer, train=train, held_out=held_out,
              epochs=settings["epochs"], batch_size=settings["batch_size"], shuffle=shuffle, lr_at=lr_at,
              set_train_mode=set_train_mode, bf16=settings["bf16"],
              keep=settings["keep"] if held_out is not None else "last",
              generators={"augment": augment_rng}, resume=resume, on_epoch=on_epoch,
              describe=f"variant {spec.get('variant', '?')}, seed {seed}")
    history = fit(job)

    model.cpu()
    if paths.get("checkpoint") is not None:
        with atomic_path(paths["checkpoint"], suffix=".pt") as tmp:
            torch.save({"head": settings["head"], "train": settings["train"], "seed": seed,
                        "epoch": job.kept_epoch, "state_dict": model.state_dict()}, tmp)
    write_tsv(paths["epochs"], EPOCH_COLUMNS, history)
    if paths.get("summary") is not None:
        write_json(paths["summary"], {**train_summary(history, device, job, images=len(train[1]),
                                                      held_out=0 if held_out is None else len(held_out[1])),
                                      "settings": settings})
    resume.discard()
    return history


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


def train_summary(history: list[dict], device: torch.device, job: Fit, images: int, held_out: int) -> dict:
    """What the run kept and cost: kept epoch, seconds over all epochs (across resumes), peak RSS and CUDA memory."""
    kept = history[job.kept_epoch - 1] if job.kept_epoch else {}
    return {
        "epochs": len(history), "keep": job.keep, "kept_epoch": job.kept_epoch, "kept_val_acc": kept.get("val_acc"),
        "images": images, "validation_images": held_out, "train_seconds": sum(row["seconds"] for row in history),
        "resumed_from_epoch": job.resumed_from,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux reports KiB
        "peak_cuda_mb": (torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None,
        "device": devices.name(device), "threads": torch.get_num_threads(),
    }
