"""Data augmentation as batched tensor operations on the device: uint8 batch → uint8 batch, from its own generator."""

import torch
import torch.nn.functional as F


class RandomCropFlip:
    """A random crop of the image zero-padded by `padding`, mirrored with probability ½ when `flip` (one gather)."""

    def __init__(self, padding: int, flip: bool, generator: torch.Generator):
        self.padding = int(padding)
        self.flip = bool(flip)
        self.generator = generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        p, dev, g = self.padding, x.device, self.generator
        padded = F.pad(x, (p, p, p, p)) if p else x
        dy = torch.randint(0, 2 * p + 1, (b, 1), generator=g, device=dev)
        dx = torch.randint(0, 2 * p + 1, (b, 1), generator=g, device=dev)
        cols = torch.arange(w, device=dev).expand(b, w)
        if self.flip:
            mirrored = torch.rand(b, 1, generator=g, device=dev) < 0.5
            cols = torch.where(mirrored, w - 1 - cols, cols)
        rows = dy + torch.arange(h, device=dev)  # (B, H)
        cols = dx + cols  # (B, W)
        nhwc = padded.permute(0, 2, 3, 1)
        out = nhwc[torch.arange(b, device=dev)[:, None, None], rows[:, :, None], cols[:, None, :]]
        return out.permute(0, 3, 1, 2)


class Cutout:
    """Cutout (DeVries & Taylor 2017): a size×size square at a random centre, clipped, painted with the mean pixel."""

    def __init__(self, size: int, generator: torch.Generator, fill=(0, 0, 0)):
        self.size = int(size)
        self.generator = generator
        self.fill = tuple(int(round(v)) for v in fill)
        self._fills = {}  # (dtype, device) → the fill tensor, built once: a host-to-device copy a step would sync

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        dev, g, half = x.device, self.generator, self.size // 2
        cy = torch.randint(0, h, (b, 1, 1), generator=g, device=dev)
        cx = torch.randint(0, w, (b, 1, 1), generator=g, device=dev)
        ys = torch.arange(h, device=dev).view(1, h, 1)
        xs = torch.arange(w, device=dev).view(1, 1, w)
        inside = (ys >= cy - half) & (ys < cy - half + self.size) & (xs >= cx - half) & (xs < cx - half + self.size)
        fill = self._fills.get((x.dtype, dev))
        if fill is None:
            fill = self._fills[x.dtype, dev] = torch.tensor(self.fill, dtype=x.dtype, device=dev).view(1, c, 1, 1)
        return torch.where(inside[:, None], fill, x)


class Compose:
    def __init__(self, *transforms):
        self.transforms = transforms

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for transform in self.transforms:
            x = transform(x)
        return x


def from_settings(augment: dict, generator: torch.Generator, mean) -> Compose | None:
    """config training.augment ({crop, flip, cutout}) → the batch transform, or None when it does nothing."""
    steps = []
    if augment["crop"] or augment["flip"]:
        steps.append(RandomCropFlip(augment["crop"], augment["flip"], generator))
    if augment["cutout"]:
        steps.append(Cutout(augment["cutout"], generator, fill=[255 * m for m in mean]))
    return Compose(*steps) if steps else None
