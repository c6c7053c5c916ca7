"""The frozen backbone's 64-d pooled features of every image, cached for head-only variants."""

import numpy as np
import torch

from . import models
from .files import atomic_path
from . import device as devices
from .runtime import EVAL_BATCH, load_inputs


@torch.inference_mode()
def extract_features(backbone_state_path, images_path, out_path, normalize: dict, device="auto") -> None:
    """Features of every image of `images_path` (eval mode, fp32) → an .npz with features, labels, classes."""
    device = devices.resolve(device)
    backbone = models.cifar_resnet20(100)
    backbone.load_state_dict(models.load_backbone_state(backbone_state_path), strict=True)
    backbone.to(device, memory_format=torch.channels_last).eval()  # faster convolutions on CPU and GPU
    batches, labels, classes = load_inputs(images_path, device, normalize, channels_last=True)
    feats = torch.cat([backbone.features(batches[i:i + EVAL_BATCH]) for i in range(0, len(batches), EVAL_BATCH)])
    with atomic_path(out_path, suffix=".npz") as tmp:
        np.savez(tmp, features=feats.float().cpu().numpy(), labels=labels.cpu().numpy(), classes=np.array(classes))
    print(f"features {tuple(feats.shape)} from {images_path}")
