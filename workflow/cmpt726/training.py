"""Fine-tuning loop: in-memory uint8 tensors on the device, per-batch normalisation,
index-permutation shuffling, no DataLoader. One loop serves both paths:

* images → FineTuneNet (backbone trains, or a frozen backbone recomputed every step);
* cached 64-d features → the head alone (frozen backbone, computed once by `extract_features`).

With the same seed both paths start from the same head and see the same batches, so
they agree to float tolerance. After every epoch the full training state is saved
beside the checkpoint; a killed job resumes from it and ends with the same weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import models
from .io import atomic_path, write_text

EVAL_BATCH = 1000


# --------------------------------------------------------------------------- devices and inputs
def resolve_device(name: str = "auto") -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config key device: cuda was asked for but torch sees no CUDA device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


class ImageBatches:
    """uint8 (N, 3, 32, 32) on the device → normalised float batches (optionally channels_last).

    `augment`, if given, maps each uint8 batch to an augmented uint8 batch before normalising.
    """

    def __init__(self, images: torch.Tensor, mean, std, channels_last: bool, augment=None):
        self.data = images
        self.augment = augment
        self.mean = torch.tensor(mean, device=images.device).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(std, device=images.device).view(1, 3, 1, 1) * 255.0
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index) -> torch.Tensor:
        x = self.data[index] if self.augment is None else self.augment(self.data[index])
        x = (x.float() - self.mean) / self.std
        return x.contiguous(memory_format=self.memory_format)


class FeatureBatches:
    """Cached float features (N, 64): batches are plain slices."""

    def __init__(self, features: torch.Tensor):
        self.data = features

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index) -> torch.Tensor:
        return self.data[index]


def load_inputs(path, device, normalize: dict, channels_last: bool):
    """A prepared image file or a feature cache → (batches, labels on device, class names)."""
    with np.load(path) as f:
        labels = torch.from_numpy(f["labels"]).to(device)
        classes = [str(c) for c in f["classes"]]
        if "features" in f:
            return FeatureBatches(torch.from_numpy(f["features"]).to(device)), labels, classes
        images = torch.from_numpy(f["images"]).to(device)
    return ImageBatches(images, normalize["mean"], normalize["std"], channels_last), labels, classes


# --------------------------------------------------------------------------- features
@torch.inference_mode()
def extract_features(backbone_state_path, images_path, out_path, normalize: dict, device="auto") -> None:
    """The frozen backbone's 64-d pooled features of every image, computed once (eval mode, fp32)."""
    device = resolve_device(device)
    backbone = models.cifar_resnet20(100)
    backbone.load_state_dict(models.load_backbone_state(backbone_state_path), strict=True)
    backbone.to(device, memory_format=torch.channels_last).eval()  # faster convolutions on CPU and GPU
    batches, labels, classes = load_inputs(images_path, device, normalize, channels_last=True)
    feats = torch.cat([backbone.features(batches[i:i + EVAL_BATCH]) for i in range(0, len(batches), EVAL_BATCH)])
    with atomic_path(out_path, suffix=".npz") as tmp:
        np.savez(tmp, features=feats.float().cpu().numpy(), labels=labels.cpu().numpy(), classes=np.array(classes))
    print(f"features {tuple(feats.shape)} from {images_path}")


# --------------------------------------------------------------------------- evaluation
@torch.inference_mode()
def predict(model, batches, bf16: bool = False) -> torch.Tensor:
    """Logits for every input, in large batches, in eval mode."""
    model.eval()
    device = batches.data.device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        out = [model(batches[i:i + EVAL_BATCH]) for i in range(0, len(batches), EVAL_BATCH)]
    return torch.cat(out).float()


# --------------------------------------------------------------------------- training
def fingerprint(settings: dict, seed: int, inputs) -> str:
    """Identifies a run, so a resume state from another configuration is never used."""
    stamp = [settings, seed] + [(str(p), Path(p).stat().st_size, Path(p).stat().st_mtime_ns) for p in inputs]
    return hashlib.sha256(json.dumps(stamp, sort_keys=True, default=str).encode()).hexdigest()


def _epoch_rows_tsv(history) -> str:
    cols = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"]
    lines = ["\t".join(cols)] + ["\t".join(f"{row[c]:.6g}" if c != "epoch" else str(row[c]) for c in cols)
                                 for row in history]
    return "\n".join(lines) + "\n"


class Progress:
    """Per-epoch resume state: model, optimiser, every random stream and the history so far.

    Saved after each epoch (atomically) to `path`; `resume()` restores it when its fingerprint
    matches this run, so a killed job continues where it stopped and ends with the same weights.
    """

    def __init__(self, path, stamp: str, model, optimizer, generators: dict, device: torch.device):
        self.path, self.stamp, self.model, self.optimizer = path, stamp, model, optimizer
        self.generators, self.device = generators, device

    def resume(self) -> list[dict]:
        if not self.path or not Path(self.path).exists():
            return []
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as error:  # truncated or not ours: it only saves time, so start over
            print(f"ignoring {self.path}: unreadable ({type(error).__name__}: {error}); starting from epoch 0")
            return []
        if state.get("fingerprint") != self.stamp:
            print(f"ignoring {self.path}: it belongs to another configuration")
            return []
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for name, generator in self.generators.items():
            generator.set_state(state["generators"][name])
        torch.set_rng_state(state["torch_rng"])
        if self.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        print(f"resuming from {self.path} after epoch {state['epoch']}", flush=True)
        return state["history"]

    def save(self, history: list[dict]) -> None:
        if not self.path:
            return
        with atomic_path(self.path, suffix=".pt") as tmp:
            torch.save({"fingerprint": self.stamp, "epoch": len(history), "history": history,
                        "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                        "generators": {name: g.get_state() for name, g in self.generators.items()},
                        "torch_rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None},
                       tmp)

    def finish(self) -> None:
        if self.path:
            Path(self.path).unlink(missing_ok=True)


def run_epoch(net, optimizer, train_x, train_y, test_x, test_y, order, batch_size: int, bf16: bool,
              before_step=None) -> dict:
    """One pass over `order` in batches, then the test set: mean train loss/accuracy, test loss/accuracy.

    `before_step(i)` runs before the i-th optimiser step of the epoch (a learning-rate schedule).
    """
    device = train_y.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for i, start in enumerate(range(0, len(order), batch_size)):
        if before_step is not None:
            before_step(i)
        index = order[start:start + batch_size]
        target = train_y[index]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = net(train_x[index])
        loss = F.cross_entropy(logits.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(index)
        correct += (logits.argmax(1) == target).sum()
    test_logits = predict(net, test_x, bf16)
    return {
        "train_loss": loss_sum.item() / len(order),
        "train_acc": 100.0 * correct.item() / len(order),
        "test_loss": F.cross_entropy(test_logits, test_y).item(),
        "test_acc": 100.0 * (test_logits.argmax(1) == test_y).float().mean().item(),
    }


def train_variant(backbone_path, train_path, test_path, checkpoint_out, epochs_out, settings: dict, seed: int,
                  device: str = "auto", resume_path=None) -> list[dict]:
    """Train one variant with one seed; write its checkpoint and per-epoch metrics."""
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

    stamp = fingerprint(settings, seed, [backbone_path, train_path, test_path])
    print(f"device {device} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})", flush=True)
    progress = Progress(resume_path, stamp, model, optimizer, {"shuffle": shuffle}, device)
    history = progress.resume()

    def set_mode():
        if cached:
            net.train()
        else:
            models.set_train_mode(model, settings["train"], settings["seed_quirks"])

    for epoch in range(len(history), settings["epochs"]):
        tic = time.perf_counter()
        set_mode()
        order = torch.randperm(len(train_x), generator=shuffle).to(device)
        row = {"epoch": epoch + 1, **run_epoch(net, optimizer, train_x, train_y, test_x, test_y, order,
                                               settings["batch_size"], settings["bf16"])}
        row["seconds"] = time.perf_counter() - tic
        history.append(row)
        print(json.dumps(row), flush=True)
        progress.save(history)

    model.cpu()
    with atomic_path(checkpoint_out, suffix=".pt") as tmp:
        torch.save({"head": settings["head"], "train": settings["train"], "seed": seed,
                    "state_dict": model.state_dict()}, tmp)
    write_text(epochs_out, _epoch_rows_tsv(history))
    progress.finish()
    return history


def load_finetuned(checkpoint_path) -> models.FineTuneNet:
    try:
        ckpt = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        model = models.build_finetune_net(None, ckpt["head"], seed=0)
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except Exception as error:
        raise ValueError(f"checkpoint {checkpoint_path} cannot be loaded ({type(error).__name__}: {error}); "
                         "delete it to retrain") from error
    return model
