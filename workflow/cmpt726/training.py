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
    backbone.to(device).eval()
    batches, labels, classes = load_inputs(images_path, device, normalize, channels_last=False)
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
    history: list[dict] = []
    start_epoch = 0

    stamp = fingerprint(settings, seed, [backbone_path, train_path, test_path])
    print(f"device {device} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})", flush=True)
    if resume_path and Path(resume_path).exists():
        try:
            state = torch.load(resume_path, map_location="cpu", weights_only=False)
        except Exception as error:  # truncated or not ours: it only saves time, so start over
            state = {}
            print(f"ignoring {resume_path}: unreadable ({type(error).__name__}: {error}); training from epoch 0")
        if state.get("fingerprint") == stamp:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            shuffle.set_state(state["shuffle_rng"])
            torch.set_rng_state(state["torch_rng"])
            if device.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"], device)
            history, start_epoch = state["history"], state["epoch"]
            print(f"resuming from {resume_path} after epoch {start_epoch}")
        elif state:
            print(f"ignoring {resume_path}: it belongs to another configuration")

    bf16 = settings["bf16"]
    batch_size = settings["batch_size"]
    for epoch in range(start_epoch, settings["epochs"]):
        tic = time.perf_counter()
        if cached:
            net.train()
        else:
            models.set_train_mode(model, settings["train"], settings["seed_quirks"])
        order = torch.randperm(len(train_x), generator=shuffle).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        for start in range(0, len(order), batch_size):
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
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_sum.item() / len(order),
            "train_acc": 100.0 * correct.item() / len(order),
            "test_loss": F.cross_entropy(test_logits, test_y).item(),
            "test_acc": 100.0 * (test_logits.argmax(1) == test_y).float().mean().item(),
            "seconds": time.perf_counter() - tic,
        }
        history.append(row)
        print(json.dumps(row), flush=True)
        if resume_path:
            with atomic_path(resume_path, suffix=".pt") as tmp:
                torch.save({"fingerprint": stamp, "epoch": epoch + 1, "history": history,
                            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "shuffle_rng": shuffle.get_state(), "torch_rng": torch.get_rng_state(),
                            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None},
                           tmp)

    model.cpu()
    with atomic_path(checkpoint_out, suffix=".pt") as tmp:
        torch.save({"head": settings["head"], "train": settings["train"], "seed": seed,
                    "state_dict": model.state_dict()}, tmp)
    write_text(epochs_out, _epoch_rows_tsv(history))
    if resume_path:
        Path(resume_path).unlink(missing_ok=True)
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
