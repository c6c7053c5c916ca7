"""A job's in-memory inputs as batches (uint8 images normalised per batch, or cached features), and prediction."""

import copy

import numpy as np
import torch

EVAL_BATCH = 1000


class ImageBatches:
    """uint8 (N, 3, 32, 32) on the device → normalised float batches; `augment` maps uint8 batches first."""

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
