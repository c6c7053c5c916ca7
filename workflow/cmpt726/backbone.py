"""The CIFAR-100 ResNet-20 backbone (published or local), checked by a strict load and saved as a plain state_dict."""

import tempfile
import urllib.error

import torch

from .files import atomic_path, download_timeout
from .models import check_backbone_state, load_backbone_state


def _save(state: dict, out_path, source) -> None:
    with atomic_path(out_path, suffix=".pt") as tmp:
        torch.save(state, tmp)
    print(f"backbone: {len(state)} tensors from {source} (strict CifarResNet-20 load)")


def download_backbone(url: str, out_path) -> None:
    """torch.hub's download with its hash check (name-<sha256 prefix>.pth), into a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with download_timeout():
                state = torch.hub.load_state_dict_from_url(url, model_dir=tmp, map_location="cpu", progress=False,
                                                           check_hash=True, weights_only=True)
        except (urllib.error.URLError, OSError) as error:
            raise OSError(f"backbone.url {url} cannot be downloaded ({error}); offline, set backbone.source: path "
                          "(or pretrain) in config.yaml") from error
        except RuntimeError as error:  # torch.hub: "invalid hash value (expected …, got …)"
            raise RuntimeError(f"backbone.url {url}: {error}") from error
        except Exception as error:  # downloaded whole, but not a torch file that loads safely
            raise ValueError(f"backbone.url {url} is not a readable state_dict ({type(error).__name__}: {error})") \
                from error
    _save(check_backbone_state(state, f"backbone.url {url}"), out_path, url)


def import_backbone(path, out_path) -> None:
    _save(load_backbone_state(path), out_path, path)
