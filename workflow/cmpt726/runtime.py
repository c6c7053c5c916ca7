"""Where a job runs and what its tensors are: the device, in-memory inputs as batches, and prediction.

Images stay uint8 (N, 3, 32, 32) on the device and are normalised per batch; cached features are
plain float slices. No DataLoader: a batch is one index into a tensor that already lives on the device.
"""

from __future__ import annotations

import copy
import platform

import numpy as np
import torch

EVAL_BATCH = 1000


def resolve_device(name: str = "auto", say=print) -> torch.device:
    """The torch device of config `device` (auto, cuda or cpu); says in the job's log which one it took and
    why, so that a job that fell back to the CPU (e.g. on a node whose driver is too old) is seen at once."""
    available = torch.cuda.is_available()
    if name == "cuda" and not available:
        raise RuntimeError("config key device: cuda was asked for but torch sees no CUDA device "
                           f"({_no_cuda_reason()}); use device: auto or cpu")
    if name == "auto":
        name = "cuda" if available else "cpu"
        why = "torch sees a CUDA device" if available else _no_cuda_reason()
        say(f"device: auto took {name} ({why})")
        if not available and torch.version.cuda:
            say(f"WARNING: this torch is a CUDA {torch.version.cuda} build but sees no usable GPU: "
                "this job runs on the CPU. On a GPU node, check the NVIDIA driver (>= 580 for CUDA 13).")
    else:
        say(f"device: {name} (config key device)")
    return torch.device(name)


def _no_cuda_reason() -> str:
    """Why torch sees no CUDA device: a CPU-only build, no driver, or a driver it cannot use."""
    if not torch.version.cuda:
        return "this torch build has no CUDA"
    try:
        count = torch.cuda.device_count()
    except RuntimeError as error:  # e.g. a driver too old for this build
        return f"CUDA unusable: {error}"
    return "no NVIDIA GPU is visible" if count == 0 else "CUDA is not available to torch"


def device_name(device: torch.device) -> str:
    """What ran the job, for the report's provenance: the GPU's name, else the CPU's model name."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        model = ""
    return f"{device.type}: {model or platform.processor() or platform.machine()}"


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

    def take(self, index) -> "ImageBatches":
        """The images at `index` (a copy), with the same normalisation and no augmentation."""
        part = copy.copy(self)
        part.data, part.augment = self.data[index], None
        return part


class FeatureBatches:
    """Cached float features (N, 64): batches are plain slices."""

    def __init__(self, features: torch.Tensor):
        self.data = features

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index) -> torch.Tensor:
        return self.data[index]

    def take(self, index) -> "FeatureBatches":
        return FeatureBatches(self.data[index])


def load_inputs(path, device, normalize: dict, channels_last: bool):
    """A prepared image file or a feature cache → (batches, labels on device, class names)."""
    with np.load(path) as f:
        labels = torch.from_numpy(f["labels"]).to(device)
        classes = [str(c) for c in f["classes"]]
        if "features" in f:
            return FeatureBatches(torch.from_numpy(f["features"]).to(device)), labels, classes
        images = torch.from_numpy(f["images"]).to(device)
    return ImageBatches(images, normalize["mean"], normalize["std"], channels_last), labels, classes


@torch.inference_mode()
def predict(model, batches, bf16: bool = False) -> torch.Tensor:
    """Logits for every input, in large batches, in eval mode."""
    model.eval()
    device = batches.data.device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        out = [model(batches[i:i + EVAL_BATCH]) for i in range(0, len(batches), EVAL_BATCH)]
    return torch.cat(out).float()
