"""Data augmentation as batched tensor operations on the device (no per-image Python loop).

Each transform maps a uint8 batch (B, C, H, W) to an augmented uint8 batch of the same shape,
drawing from its own torch.Generator, so a fixed seed gives the same augmentation and a resumed
run continues the same random stream (the generator's state is part of the resume state).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class RandomCropFlip:
    """A random H×W crop of the image zero-padded by `padding` on each side, mirrored left-right with
    probability ½ when `flip`. One gather, on x's device; the result has channels_last strides."""

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
