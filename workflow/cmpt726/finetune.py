"""Fine-tune one variant with one seed: the set-up around `loop.fit`, and the checkpoint it leaves.

Two input paths, one loop:
* images → FineTuneNet (the backbone trains, or a frozen backbone is recomputed every step);
* cached 64-d features (`features.extract_features`) → the head alone, on a frozen backbone.
With the same seed both paths start from the same head and see the same batches, so they agree
to float tolerance. The training job records its own time and peak memory (`train_summary`).
"""

from __future__ import annotations

import os
import resource

import torch

from . import models
from .io import atomic_path, write_json, write_tsv
from .loop import Fit, ResumeState, fingerprint, fit
from .runtime import FeatureBatches, device_name, load_inputs, resolve_device

EPOCH_COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"]


def train_variant(backbone_path, train_path, test_path, checkpoint_out, epochs_out, settings: dict, seed: int,
                  device: str = "auto", resume_path=None, summary_out=None) -> list[dict]:
    """Train one variant with one seed; write its checkpoint, per-epoch metrics and (optionally) a summary
    of what the job cost: training seconds over all epochs and peak memory."""
    device = resolve_device(device)
    torch.use_deterministic_algorithms(device.type == "cpu", warn_only=True)
    backbone_state = models.load_backbone_state(backbone_path)
    model = models.build_finetune_net(backbone_state, settings["head"], seed)
    train_x, train_y, _ = load_inputs(train_path, device, settings["normalize"], settings["channels_last"])
    test_x, test_y, _ = load_inputs(test_path, device, settings["normalize"], settings["channels_last"])
    cached = isinstance(train_x, FeatureBatches)
    if cached and settings["train"] != "head":
        raise ValueError(f"{train_path} holds cached features, but train: {settings['train']} needs images")

    params = models.trainable_parameters(model, settings["train"], settings["seed_quirks"])
    net = model.head if cached else model  # what the batches go through
    net.to(device)
    if settings["channels_last"] and not cached:
        net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(params, lr=settings["lr"], momentum=settings["momentum"],
                                weight_decay=settings["weight_decay"])
    shuffle = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout's stream: the same in both paths

    def set_train_mode():
        if cached:
            net.train()
        else:
            models.set_train_mode(model, settings["train"], settings["seed_quirks"])

    print(f"device {device} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})", flush=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    resume = ResumeState(resume_path, fingerprint(settings, seed, [backbone_path, train_path, test_path]))
    history = fit(Fit(model=model, net=net, optimizer=optimizer, train=(train_x, train_y), held_out=(test_x, test_y),
                      epochs=settings["epochs"], batch_size=settings["batch_size"], shuffle=shuffle,
                      set_train_mode=set_train_mode, bf16=settings["bf16"], resume=resume))

    model.cpu()
    with atomic_path(checkpoint_out, suffix=".pt") as tmp:
        torch.save({"head": settings["head"], "train": settings["train"], "seed": seed,
                    "state_dict": model.state_dict()}, tmp)
    write_tsv(epochs_out, EPOCH_COLUMNS, history)
    if summary_out is not None:
        write_json(summary_out, train_summary(history, device))
    resume.discard()
    return history


def train_summary(history: list[dict], device: torch.device) -> dict:
    """What the training job cost, as it measured itself (the report's time and memory columns).

    train_seconds sums the epochs, across resumed runs; peak_rss_mb is this process's high-water
    resident memory; peak_cuda_mb the largest CUDA allocation (None on the CPU).
    """
    return {
        "epochs": len(history),
        "train_seconds": sum(row["seconds"] for row in history),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux reports KiB
        "peak_cuda_mb": (torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None,
        "device": device_name(device),
        "threads": torch.get_num_threads(),
    }


def load_finetuned(checkpoint_path) -> models.FineTuneNet:
    try:
        ckpt = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        model = models.build_finetune_net(None, ckpt["head"], seed=0)
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except Exception as error:
        raise ValueError(f"checkpoint {checkpoint_path} cannot be loaded ({type(error).__name__}: {error}); "
                         "delete it to retrain") from error
    return model
