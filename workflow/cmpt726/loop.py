"""The epoch loop shared by fine-tuning and pretraining, with a resume state saved after every epoch (so a killed
job ends with the same weights) and a non-finite loss failing the run at once (`Diverged`).
"""

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from .files import atomic_path
from .runtime import predict

# torch OneCycleLR's defaults: start at lr / 25, end at that / 10,000.
ONECYCLE_DIV, ONECYCLE_FINAL_DIV = 25, 10_000
RESUME_KEYS = {"fingerprint", "epoch", "history", "model", "optimizer", "generators", "torch_rng", "cuda_rng", "best"}


class Diverged(FloatingPointError):
    """A non-finite loss: the run is failed, nothing of it kept."""


def fingerprint(settings: dict, seed: int, inputs, code: str) -> str:
    """Identifies a run, so that a resume state of other settings, inputs or code (`code`) is never used."""
    stamp = [settings, seed, code] + [(str(p), Path(p).stat().st_size, Path(p).stat().st_mtime_ns) for p in inputs]
    return hashlib.sha256(json.dumps(stamp, sort_keys=True, default=str).encode()).hexdigest()


def learning_rate(cfg: dict, step: int, steps_per_epoch: int) -> float:
    """The learning rate of optimiser step `step` (0-based) of the whole run under cfg["schedule"]."""
    epochs, lr = cfg["epochs"], cfg["lr"]
    if cfg["schedule"] == "cosine":
        t = min(step / max(1, epochs * steps_per_epoch), 1.0)
        return cfg["eta_min"] + (lr - cfg["eta_min"]) * (1 + math.cos(math.pi * t)) / 2
    if cfg["schedule"] == "step":
        epoch = step // steps_per_epoch
        passed = sum(epoch >= round(m * epochs) for m in cfg["milestones"])
        return lr * cfg["gamma"] ** passed
    if cfg["schedule"] == "onecycle":
        total, start = epochs * steps_per_epoch, lr / ONECYCLE_DIV
        final = start / ONECYCLE_FINAL_DIV
        warm = max(1, round(cfg["onecycle"]["warmup"] * total))
        if step < warm:
            return start + (lr - start) * step / warm
        t = (step - warm) / max(1, total - 1 - warm)
        return final + (lr - final) * (1 + math.cos(math.pi * min(t, 1.0))) / 2
    raise ValueError(f"config key backbone.pretrain.schedule: unknown {cfg['schedule']!r} (cosine | step | onecycle)")


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each batch of `n` images; a last batch of one image joins the one before (BatchNorm)."""
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def train_epoch(net, optimizer, batches, labels, order, *, batch_size: int, bf16: bool = False,
                before_step: Callable[[int], None] | None = None) -> dict:
    """One pass over `order` in batches: mean training loss and accuracy (%); `before_step(i)` before step i."""
    device = labels.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for i, (start, stop) in enumerate(batch_bounds(len(order), batch_size)):
        if before_step is not None:
            before_step(i)
        index = order[start:stop]
        target = labels[index]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = net(batches[index])
        loss = F.cross_entropy(logits.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(index)  # summed on the device: no sync per step
        correct += (logits.argmax(1) == target).sum()
    return {"train_loss": loss_sum.item() / len(order), "train_acc": 100.0 * correct.item() / len(order)}


def evaluate(net, batches, labels, *, bf16: bool = False) -> dict:
    """Mean cross-entropy and accuracy (%) of `net` on every input, in eval mode."""
    logits = predict(net, batches, bf16)
    return {"loss": F.cross_entropy(logits, labels).item(),
            "acc": 100.0 * (logits.argmax(1) == labels).float().mean().item()}


@dataclass
class ResumeState:
    """The file a run saves after each epoch and a rerun restarts from (path None: none; `stamp`: fingerprint)."""

    path: Path | str | None
    stamp: str

    def load(self) -> dict | None:
        """The saved state if it is readable and belongs to this run, else None (saying why)."""
        if not self.path or not Path(self.path).exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            missing = RESUME_KEYS - set(state) if isinstance(state, dict) else RESUME_KEYS
            if missing:
                raise ValueError(f"not a resume state (missing {sorted(missing)})")
        except Exception as error:  # truncated, foreign or unsafe: it only saves time, so start over
            print(f"ignoring {self.path}: unreadable ({type(error).__name__}: {error}); starting from epoch 0")
            return None
        if state["fingerprint"] != self.stamp:
            print(f"ignoring {self.path}: it belongs to another configuration, other inputs or other code; "
                  "starting from epoch 0")
            return None
        return state

    def save(self, history: list[dict], model, optimizer, generators: dict, device: torch.device,
             best: dict) -> None:
        if not self.path:
            return
        state = {"fingerprint": self.stamp, "epoch": len(history), "history": history, "best": best,
                 "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "generators": {name: g.get_state() for name, g in generators.items()},
                 "torch_rng": torch.get_rng_state(),
                 "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
        with atomic_path(self.path, suffix=".pt") as tmp:
            torch.save(state, tmp)

    def discard(self) -> None:
        if self.path:
            Path(self.path).unlink(missing_ok=True)


def _restore(state: dict, model, optimizer, generators: dict, device: torch.device) -> list[dict]:
    """Put the saved model, optimiser and random streams back; the epochs run so far."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    for name, generator in generators.items():
        generator.set_state(state["generators"][name])
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and state["cuda_rng"] is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    return list(state["history"])


@dataclass
class Fit:
    """What `fit` trains and how: `model` is saved, `net` is what the batches go through (maybe the head alone)."""

    model: torch.nn.Module
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    train: tuple            # (batches, labels)
    held_out: tuple | None  # (batches, labels) scored after every epoch, or None
    epochs: int
    batch_size: int
    shuffle: torch.Generator
    set_train_mode: Callable[[], None]
    bf16: bool = False
    held_out_name: str = "val"  # its columns: val_loss, val_acc (test_… when pretraining)
    keep: str = "last"          # "best": end with the weights of the best held-out accuracy
    lr_at: Callable[[int], float] | None = None   # optimiser step of the whole run → learning rate
    generators: dict = field(default_factory=dict)  # other random streams to save (augmentation)
    resume: ResumeState | None = None
    on_epoch: Callable[[dict], None] | None = None
    name: str = "training"
    describe: str = ""                # what a failure names, e.g. "variant all, seed 0"
    resumed_from: int | None = None   # set by fit: the epoch a saved state continued from
    kept_epoch: int | None = None     # set by fit: the epoch whose weights the model ends with


def fit(job: Fit) -> list[dict]:
    """Train for `job.epochs` (continuing a saved run): one row per epoch; the model ends with the kept epoch's."""
    train_x, train_y = job.train
    device = train_y.device
    generators = {"shuffle": job.shuffle, **job.generators}
    saved = job.resume.load() if job.resume else None
    history = _restore(saved, job.model, job.optimizer, generators, device) if saved else []
    best = saved["best"] if saved else {"epoch": None, "acc": None, "model": None}
    if saved:
        job.resumed_from = saved["epoch"]
        print(f"resuming from {job.resume.path} after epoch {saved['epoch']}", flush=True)
    n = len(train_x)
    steps_per_epoch = len(batch_bounds(n, job.batch_size))
    loss_key, acc_key = f"{job.held_out_name}_loss", f"{job.held_out_name}_acc"
    this_run = []
    for epoch in range(len(history), job.epochs):
        tic = time.perf_counter()
        job.set_train_mode()
        order = torch.randperm(n, generator=job.shuffle).to(device)
        row = {"epoch": epoch + 1}
        before_step = None
        if job.lr_at is not None:
            row["lr"] = job.lr_at(epoch * steps_per_epoch)

            def before_step(i, first=epoch * steps_per_epoch):
                for group in job.optimizer.param_groups:
                    group["lr"] = job.lr_at(first + i)

        row.update(train_epoch(job.net, job.optimizer, train_x, train_y, order, batch_size=job.batch_size,
                               bf16=job.bf16, before_step=before_step))
        _check_finite(job, epoch + 1, "training", row["train_loss"])
        row.update({loss_key: None, acc_key: None})
        if job.held_out is not None:
            scored = evaluate(job.net, *job.held_out, bf16=job.bf16)
            _check_finite(job, epoch + 1, job.held_out_name, scored["loss"])
            row.update({loss_key: scored["loss"], acc_key: scored["acc"]})
            if job.keep == "best" and (best["acc"] is None or scored["acc"] > best["acc"]):  # ties: the earlier
                best = {"epoch": epoch + 1, "acc": scored["acc"],
                        "model": {k: v.detach().clone() for k, v in job.model.state_dict().items()}}
        row["seconds"] = time.perf_counter() - tic
        history.append(row)
        this_run.append(row["seconds"])
        print(progress_line(job.name, row, job.epochs, this_run, job.held_out_name), flush=True)
        if job.resume:
            job.resume.save(history, job.model, job.optimizer, generators, device, best)
        if job.on_epoch is not None:
            job.on_epoch(row)
    if job.keep == "best" and best["model"] is not None:
        job.model.load_state_dict(best["model"])
        job.kept_epoch = best["epoch"]
    else:
        job.kept_epoch = len(history)
    return history


def _check_finite(job: Fit, epoch: int, which: str, loss: float) -> None:
    """Fail the job at once on a non-finite loss, before its state is saved or kept as the best."""
    if math.isfinite(loss):
        return
    lr = job.optimizer.param_groups[0]["lr"]
    raise Diverged(diverged_message(job.name, job.describe, which, loss, epoch, lr)
                   + "; nothing was kept (lower the learning rate)")


def diverged_message(name: str, describe: str, which: str, loss: float, epoch: int, lr: float) -> str:
    """How a non-finite loss is named, for a lone run and for a member of a stack alike."""
    return (f"{name}{' of ' + describe if describe else ''} diverged: {which} loss {loss} in epoch {epoch} at "
            f"learning rate {lr:g}")


def progress_line(name: str, row: dict, epochs: int, seconds: list[float], held_out: str = "val") -> str:
    """`training epoch 3/10: train loss …, acc … | val loss …, acc … | 12.3 s/epoch, ETA 1 min 26 s`."""
    eta = (epochs - row["epoch"]) * sum(seconds) / len(seconds)
    lr = f", lr {row['lr']:.4g}" if "lr" in row else ""
    scored = (f" | {held_out} loss {row[held_out + '_loss']:.4f}, acc {row[held_out + '_acc']:.2f}%"
              if row.get(held_out + "_acc") is not None else "")
    return (f"{name} epoch {row['epoch']}/{epochs}: train loss {row['train_loss']:.4f}, acc {row['train_acc']:.2f}%"
            f"{lr}{scored} | {row['seconds']:.1f} s/epoch, ETA {_duration(eta)}")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
