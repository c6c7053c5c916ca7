"""Pretrain the backbone, `models.cifar_resnet20(100)`, on CIFAR-100 (config `backbone.pretrain`: by default
the recipe of chenyaofo/pytorch-cifar-models' training log). Writes a plain state_dict, epochs TSV and summary.
"""

import time

import torch

from . import models
from .augment import RandomCropFlip
from .files import atomic_path, write_json, write_tsv
from .loop import Fit, ResumeState, batch_bounds, fingerprint, fit, learning_rate
from . import device as devices
from .runtime import load_inputs
from .code_digest import stage_digest

# The loop's test_acc is the CIFAR-100 top-1 here.
EPOCH_COLUMNS = ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_top1", "seconds"]


def pretrain(train_path, test_path, backbone_out, epochs_out, summary_out, cfg: dict, device: str = "auto",
             resume_path=None, on_epoch=None, code: str | None = None) -> dict:
    """Train cifar_resnet20(100) on the prepared CIFAR-100 arrays with `cfg`, resumable from `resume_path`."""
    tic_total = time.perf_counter()
    device = devices.resolve(device)
    torch.use_deterministic_algorithms(device.type == "cpu", warn_only=True)
    seed = int(cfg["seed"])
    channels_last = cfg["channels_last"]

    train_x, train_y, _ = load_inputs(train_path, device, cfg["normalize"], channels_last)
    test_x, test_y, _ = load_inputs(test_path, device, cfg["normalize"], channels_last)
    augment_rng = torch.Generator(device=device).manual_seed(seed)
    train_x.augment = RandomCropFlip(cfg["crop_padding"], cfg["flip"], augment_rng)

    torch.manual_seed(seed)
    model = models.cifar_resnet20(100).to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                                nesterov=cfg["nesterov"], weight_decay=cfg["weight_decay"])
    n, batch_size = len(train_x), cfg["batch_size"]
    steps_per_epoch = len(batch_bounds(n, batch_size))
    resume = ResumeState(resume_path, fingerprint(cfg, seed, [train_path, test_path], code or stage_digest("pretrain")))

    print(f"pretraining ResNet-20 on {n} images, {steps_per_epoch} steps/epoch, device {devices.name(device)} "
          f"({torch.get_num_threads()} threads), schedule {cfg['schedule']}, {cfg['epochs']} epochs", flush=True)
    job = Fit(model=model, net=model, optimizer=optimizer, train=(train_x, train_y), held_out=(test_x, test_y),
              epochs=cfg["epochs"], batch_size=batch_size, shuffle=torch.Generator().manual_seed(seed),
              set_train_mode=model.train, bf16=bool(cfg["bf16"]),
              lr_at=lambda step: learning_rate(cfg, step, steps_per_epoch),
              generators={"augment": augment_rng}, resume=resume, on_epoch=on_epoch, name="pretraining",
              describe=f"backbone.pretrain (seed {seed})", held_out_name="test")
    history = fit(job)
    history = [{**row, "test_top1": row["test_acc"]} for row in history]

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(backbone_out, suffix=".pt") as tmp:
        torch.save(state, tmp)
        models.load_backbone_state(tmp)  # the published file's contract: strict load into cifar_resnet20(100)
    write_tsv(epochs_out, EPOCH_COLUMNS, history)
    summary = {
        "final_top1": history[-1]["test_top1"] if history else None,
        "final_test_loss": history[-1]["test_loss"] if history else None,
        "best_top1": max((r["test_top1"] for r in history), default=None),
        "published_top1": cfg["published_top1"], "epochs": cfg["epochs"], "schedule": cfg["schedule"],
        "train_seconds": sum(r["seconds"] for r in history),  # all epochs, across resumed runs
        "wall_seconds_this_run": time.perf_counter() - tic_total, "resumed_from_epoch": job.resumed_from,
        "device": devices.name(device), "threads": torch.get_num_threads(),
        "images": {"train": n, "test": len(test_x)}, "settings": cfg,
    }
    write_json(summary_out, summary)
    resume.discard()
    print(f"final CIFAR-100 test top-1 {summary['final_top1']:.2f}% (published {cfg['published_top1']}%), "
          f"{summary['train_seconds']:.0f} s of training", flush=True)
    return summary
