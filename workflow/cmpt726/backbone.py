"""The CIFAR-100 ResNet-20 backbone: the published weights, or a local state_dict."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from .io import atomic_path
from .models import load_backbone_state


def _save_checked(source_path, out_path) -> None:
    state = load_backbone_state(source_path)  # strict load into CifarResNet-20, or a clear error
    with atomic_path(out_path, suffix=".pt") as tmp:
        torch.save(state, tmp)
    print(f"backbone: {len(state)} tensors from {source_path} (strict CifarResNet-20 load)")


def download_backbone(url: str, out_path) -> None:
    """torch.hub download with its hash check: the hex suffix of the file name is a sha256 prefix."""
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / Path(url).name
        try:
            torch.hub.download_url_to_file(url, str(dest), hash_prefix=_hash_prefix(url), progress=False)
        except RuntimeError as error:
            raise RuntimeError(f"backbone.url {url}: {error}") from error
        except OSError as error:
            raise OSError(f"backbone.url {url} cannot be downloaded ({error}); offline, set backbone.source: path "
                          "(or pretrain) in config.yaml") from error
        _save_checked(dest, out_path)


def _hash_prefix(url: str) -> str | None:
    """torch.hub's convention: name-<sha256 prefix>.pth."""
    stem = Path(url).name.split(".")[0]
    suffix = stem.rsplit("-", 1)[-1] if "-" in stem else ""
    return suffix if len(suffix) >= 8 and all(c in "0123456789abcdef" for c in suffix) else None


def import_backbone(path, out_path) -> None:
    _save_checked(path, out_path)
