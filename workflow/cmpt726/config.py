"""Config validation and per-variant settings. Imported by the Snakefile: no torch here."""

from __future__ import annotations

import copy
import hashlib
import json


class ConfigError(ValueError):
    """A bad config value; the message names the key."""


def _key_path(error) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) or "(top level)"


def _describe(error) -> str:
    path = _key_path(error)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        keys = ", ".join(f"{path}.{k}" if path != "(top level)" else k for k in extra)
        return f"unknown config key {keys}"
    return f"config key {path}: {error.message}"


def validate_config(config: dict, schema_path: str) -> None:
    """snakemake.utils.validate (fills defaults), with errors that name the key, then cross-key checks."""
    import jsonschema
    import yaml
    from snakemake.utils import validate

    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(_describe(e) for e in errors))
    validate(config, str(schema_path), set_default=True)
    check_cross_keys(config)
    from .theory import theory_settings

    try:  # questions 1-5 have a schema of their own (workflow/schemas/theory.schema.yaml)
        config["theory"] = theory_settings(config.get("theory"))
    except ValueError as error:
        raise ConfigError(f"invalid configuration: config key {error}") from None


def check_cross_keys(config: dict) -> None:
    backbone = config["backbone"]
    if backbone["source"] == "path" and not backbone.get("path"):
        raise ConfigError("config key backbone.path: must name a state_dict file when backbone.source is path")
    gallery = config.get("report", {}).get("gallery_variant")
    if gallery is not None and gallery not in config["variants"]:
        raise ConfigError(f"config key report.gallery_variant: {gallery!r} is not one of the variants "
                          f"{sorted(config['variants'])}")


def resolve_variant(config: dict, name: str) -> dict:
    """`training` defaults overridden by the variant's keys (the head dict merges key by key)."""
    if name not in config["variants"]:
        raise ConfigError(f"unknown variant {name!r}; config key variants has {sorted(config['variants'])}")
    settings = copy.deepcopy(config["training"])
    overrides = config["variants"][name] or {}
    for key, value in overrides.items():
        if key == "head":
            settings["head"] = {**settings["head"], **value}
        else:
            settings[key] = copy.deepcopy(value)
    return dict(sorted(settings.items()))


def uses_cached_features(settings: dict) -> bool:
    """A frozen backbone in eval mode computes the same features every epoch: compute them once."""
    return settings["train"] == "head" and settings["cache_features"] and not settings["seed_quirks"]


def normalization_key(normalize: dict) -> str:
    """Short stable name of a normalisation, so feature caches differ when it does."""
    blob = json.dumps({"mean": normalize["mean"], "std": normalize["std"]}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def gpus_per_job(device: str, nvidia_present=None) -> int:
    """The `gpu` resource a feature/training/evaluation job claims: 1 when it will run on CUDA.

    Decided without importing torch (the Snakefile stays light): `auto` claims a GPU when the
    machine shows an NVIDIA driver. On a CPU-only machine the jobs claim none, so the local
    profile's gpu=1 limit does not run them one at a time while cores sit idle.
    """
    if device in ("cpu", "cuda"):
        return int(device == "cuda")
    if nvidia_present is None:
        import shutil
        from pathlib import Path

        nvidia_present = Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi") is not None
    return int(bool(nvidia_present))
