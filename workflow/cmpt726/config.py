"""Config validation and per-variant settings. Imported by the Snakefile: no torch here."""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import yaml

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
SCHEMA_PATH = SCHEMAS / "config.schema.yaml"

# Removed keys, refused with what replaced them (also under `variants.<name>`).
REMOVED_KEYS = {
    "training.optimizer": "the optimiser is always SGD (set training.lr, momentum, weight_decay)",
    "training.validate_every": "the validation split is scored after every epoch",
    **{f"{block}.onecycle.{key}": "the onecycle schedule runs from lr / 25 to lr / 250000 (torch OneCycleLR's defaults)"
       for block in ("training", "backbone.pretrain", "tuning.settings") for key in ("div_factor", "final_div_factor")},
    "training.seed_quirks": "renamed training.replicate_2019_bugs (the overlay configs/seed-replica.yaml is now "
                            "configs/replica-2019.yaml)",
    **{f"theory.{key}": "the theory questions' settings are the assignment's, fixed in their modules (cmpt726.theory)"
       for key in ("q1", "q2", "q3", "q4", "q5.etas", "q5.tol", "q5.max_iter", "q5.w0", "q5.sgd", "q5.generated")},
}


class ConfigError(ValueError):
    """A bad config value; the message names the key."""


@lru_cache(maxsize=8)
def _schema(schema_path: str):
    """The schema (its file:// URI as $id) and a registry that resolves its $refs (all within the file)."""
    from jsonschema import Draft202012Validator
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    path = Path(schema_path).resolve()
    contents = yaml.safe_load(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(contents)
    schema = _with_overrides({**contents, "$id": path.as_uri()})
    return schema, Registry().with_resource(path.as_uri(), DRAFT202012.create_resource(schema))


def _without_defaults(schema):
    """`schema` with every `default` removed, at every depth."""
    if isinstance(schema, dict):
        return {key: _without_defaults(value) for key, value in schema.items() if key != "default"}
    if isinstance(schema, list):
        return [_without_defaults(item) for item in schema]
    return schema


def _with_overrides(schema: dict) -> dict:
    """Give every object marked `x-overrides: <key>` that key's properties, less their defaults."""
    def complete(node):
        if isinstance(node, dict):
            if "x-overrides" in node:
                source = schema["properties"][node["x-overrides"]]["properties"]
                node["properties"] = {**_without_defaults(copy.deepcopy(source)), **node.get("properties", {})}
            for value in node.values():
                complete(value)
        elif isinstance(node, list):
            for item in node:
                complete(item)

    complete(schema)
    return schema


@lru_cache(maxsize=8)
def _validator(schema_path: str):
    """A Draft 2020-12 validator that also fills defaults (deep copies): one pass validates and completes."""
    from jsonschema import Draft202012Validator, validators

    properties = Draft202012Validator.VALIDATORS["properties"]

    def fill_then_check(validator, subschemas, instance, schema):
        if validator.is_type(instance, "object"):
            for key, sub in subschemas.items():
                if key not in instance and isinstance(sub, dict) and "default" in sub:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from properties(validator, subschemas, instance, schema)

    # An integer is an int: JSON Schema's own checker takes 10.0 as one, and the code would then make paths like
    # seed0.0 or ranges of 10.0.
    integers = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool))
    schema, registry = _schema(schema_path)
    return validators.extend(Draft202012Validator, {"properties": fill_then_check}, type_checker=integers)(
        schema, registry=registry)


def _removed(key: str) -> str | None:
    parts = key.split(".")
    if parts[0] == "variants" and len(parts) > 2:
        parts = ["training", *parts[2:]]
    return REMOVED_KEYS.get(".".join(parts))


def _describe(error) -> list[str]:
    """One line per bad key: `config key a.b: ...`, `unknown config key a.c`, `config key a.d was removed: ...`."""
    path = ".".join(map(str, error.absolute_path))
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        lines = []
        known = sorted(error.schema.get("properties", {}))
        for key in sorted(set(error.instance) - set(known)):
            full = f"{path}.{key}" if path else str(key)
            reason = _removed(full)
            if reason:
                lines.append(f"config key {full} was removed: {reason}")
            else:
                lines.append(f"unknown config key {full}{_suggestion(str(key), known, path)}")
        return lines
    return [f"config key {path or '(top level)'}: {error.message}"]


def closest(name: str, known) -> str | None:
    """The known name closest to `name` (case and typos, or one a prefix of the other), if any."""
    lowered = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6) or \
        [k for k in lowered if name.lower().startswith(k) or k.startswith(name.lower())][:1]
    return lowered[close[0]] if close else None


def _suggestion(key: str, known: list[str], path: str) -> str:
    """'; did you mean a.seeds?' for the closest known key at that level, else the keys there."""
    if match := closest(key, known):
        return f"; did you mean {f'{path}.' if path else ''}{match}?"
    return f" (known keys here: {', '.join(known)})" if known else ""


def fill_and_check(instance: dict, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Validate `instance` against the schema file, filling every default in place; ConfigError names every bad key."""
    errors = sorted(_validator(str(schema_path)).iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = [line for error in errors for line in _describe(error)]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    return instance


def validate_config(config: dict, schema_path: str | Path = SCHEMA_PATH, command_line: Mapping | None = None) -> None:
    """The Snakefile's one check of `config` (in place): typed `--config` values, defaults, errors, cross keys.

    `command_line` is what `--config` set: Snakemake hands nested values over as strings, so they are
    typed by the schema (`typed`) and merged again. The `tuning` checks run in `specs.make_plan`.
    """
    if command_line:
        _merge(config, typed(command_line, schema_path))
    fill_and_check(config, schema_path)
    drop_null_variants(config)
    check_numbers(config)
    check_cross_keys(config)


def schema_default(key: str, schema_path: str | Path = SCHEMA_PATH):
    """The schema's default of a dotted config key (e.g. "analysis.near_duplicates.mad_k")."""
    schema, _ = _schema(str(schema_path))
    node = schema
    for part in key.split("."):
        node = node["properties"][part]
    return copy.deepcopy(node["default"])


_NULL_WORDS = {"", "~", "null", "Null", "NULL"}


def _json_type(value) -> str:
    for name, kind in (("null", type(None)), ("boolean", bool), ("integer", int), ("number", float),
                       ("string", str), ("array", list), ("object", dict)):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _accepted_types(schema: dict) -> set[str] | None:
    """The JSON types a schema accepts (None: any). `integer` is added where `number` is accepted."""
    if "type" in schema:
        types = {schema["type"]} if isinstance(schema["type"], str) else set(schema["type"])
    elif "enum" in schema:
        types = {_json_type(v) for v in schema["enum"]}
    else:
        return None
    return types | {"integer"} if "number" in types else types  # JSON: an integer is a number


def _resolve(schema, resolver):
    """Follow $ref until a schema that says what it is."""
    while isinstance(schema, dict) and "$ref" in schema:
        resolved = resolver.lookup(schema["$ref"])
        schema, resolver = resolved.contents, resolved.resolver
    return schema, resolver


def _from_string(text: str, schema: dict, resolver):
    types = _accepted_types(schema)
    if types is None:
        return text
    if "null" in types and text.strip() in _NULL_WORDS:  # how YAML spells null: no other way on the command line
        return None
    if "string" in types:
        return text
    for parse in (int, float) if "number" in types else (int,) if "integer" in types else ():
        try:
            value = parse(text)
        except ValueError:
            continue
        if math.isfinite(value):  # no nan or inf: they would slip past minimum and maximum
            return value
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if _json_type(parsed) in types:
        return _typed(parsed, schema, resolver)
    return text  # left as it came: the schema pass refuses it, naming the key


def _typed(value, schema, resolver):
    schema, resolver = _resolve(schema, resolver)
    if not isinstance(schema, dict):
        return value
    if isinstance(value, str):
        return _from_string(value, schema, resolver)
    if isinstance(value, Mapping):
        known, extra = schema.get("properties", {}), schema.get("additionalProperties")
        return {key: _typed(item, known.get(key, extra), resolver) if key in known or isinstance(extra, dict)
                else copy.deepcopy(item) for key, item in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_typed(item, schema["items"], resolver) for item in value]
    return copy.deepcopy(value)


def typed(values: Mapping, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """`values` (e.g. what `--config` set) with every string converted to the type the schema asks for at its
    key; a string that does not convert is left for the schema pass to refuse."""
    schema, registry = _schema(str(schema_path))
    return _typed(dict(values), schema, registry.resolver(base_uri=schema["$id"]))


def _merge(config: dict, overrides: Mapping) -> None:
    """Snakemake's merge of `--config` into the config files: dicts key by key, anything else replaced."""
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(config.get(key), dict):
            _merge(config[key], value)
        else:
            config[key] = value


def drop_null_variants(config: dict) -> None:
    """`variants: {name: null}` in an overlay removes that variant of config.yaml."""
    dropped = [name for name, value in config["variants"].items() if value is None]
    for name in dropped:
        del config["variants"][name]
    if not config["variants"]:
        raise ConfigError(f"config key variants: every variant is null ({', '.join(dropped)}); at least one must stay")


SEED_LIMIT = 2**63  # torch and numpy seed generators take a signed 64-bit integer
CIFAR10_CLASSES = 10


def _numbers(value, key: str = ""):
    """(dotted key, value) of every number in a config, at any depth (list items as key.i)."""
    if isinstance(value, Mapping):
        for name, item in value.items():
            yield from _numbers(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _numbers(item, f"{key}.{i}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield key, value


def _is_seed(key: str) -> bool:
    parts = key.split(".")
    return parts[-1] == "seed" or parts[-1].endswith("_seed") or (len(parts) > 1 and parts[-2] == "seeds")


FLOAT32_MAX = 3.4028234e38  # tensors hold the settings as float32: a larger number becomes inf
CIFAR10_TRAIN = 50_000


def check_numbers(config: dict) -> None:
    """Finite numbers only (.nan and .inf slip past minimum/maximum) that float32 tensors can hold, integers where
    integers are meant, seeds in 0 <= seed < 2**63, and the sizes the later rules need."""
    for key, value in _numbers(config):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config key {key}: {value} is not a finite number")
        if _is_seed(key) and isinstance(value, int):
            if not 0 <= value < SEED_LIMIT:
                raise ConfigError(f"config key {key}: seed {value} must lie in 0 <= seed < 2**63")
        elif abs(value) > FLOAT32_MAX:
            shown = f"{value:.3g}" if isinstance(value, float) else f"{str(value)[:12]}… ({len(str(value))} digits)"
            raise ConfigError(f"config key {key}: {shown} is beyond the float32 range of tensors (|x| <= 3.4e38)")
    for split, n in config["data"]["subset"].items():
        if n is not None and n < CIFAR10_CLASSES:
            raise ConfigError(f"config key data.subset.{split}: {n} images cannot hold the {CIFAR10_CLASSES} "
                              f"classes that the per-class results and cleanlab need (at least {CIFAR10_CLASSES})")
    for name in config["variants"]:
        check_sizes(config, resolve_variant(config, name), lambda key: _variant_key(config, name, key))


def check_sizes(config: dict, settings: dict, key_of) -> None:
    """The sizes one training run needs: a validation split that leaves at least a batch and every class to train
    on, and no BatchNorm head on batches of one. key_of(setting) names the key that set it."""
    images = config["data"]["subset"]["train"] or CIFAR10_TRAIN
    left = images - settings["validation"]
    if settings["validation"] and left < max(CIFAR10_CLASSES, settings["batch_size"]):
        raise ConfigError(f"config key {key_of('validation')}: {settings['validation']} validation images leave "
                          f"{left} of the {images} training images, fewer than a batch ({settings['batch_size']}) "
                          f"or the {CIFAR10_CLASSES} classes")
    if settings["head"]["batchnorm"] and settings["head"]["hidden"] and settings["batch_size"] < 2:
        raise ConfigError(f"config key {key_of('batch_size')}: a head with batchnorm needs batches of at least 2 "
                          "images")


def _variant_key(config: dict, name: str, key: str) -> str:
    """The key that set a variant's setting: variants.<name>.<key> when the variant overrides it."""
    return f"variants.{name}.{key}" if key in (config["variants"][name] or {}) else f"training.{key}"


def check_cross_keys(config: dict) -> None:
    backbone = config["backbone"]
    if backbone["source"] == "path" and not backbone.get("path"):
        raise ConfigError("config key backbone.path: must name a state_dict file when backbone.source is path")
    for i, name in enumerate(config["analysis"]["label_issues"]["variants"] or []):
        if name not in config["variants"]:
            raise ConfigError(f"config key analysis.label_issues.variants.{i}: {name!r} is not one of the variants "
                              f"{sorted(config['variants'])}")
    gallery = config.get("report", {}).get("gallery_variant")
    if gallery is not None and gallery not in config["variants"]:
        raise ConfigError(f"config key report.gallery_variant: {gallery!r} is not one of the variants "
                          f"{sorted(config['variants'])}")


def unknown_name_warnings(config: dict, shipped: dict) -> list[str]:
    """Variants the shipped config.yaml lacks (a misspelling would train silently), with the closest name, and
    report.comparisons about variants this run lacks."""
    def guess(name: str, known) -> str:
        return f" (did you mean {match}?)" if (match := closest(name, known)) else ""

    shipped_names = shipped.get("variants") or {}
    warnings = [f"variant {name} is not in the shipped config.yaml{guess(name, shipped_names)}: it is planned as "
                "a new variant" for name in config["variants"] if shipped_names and name not in shipped_names]
    for i, question in enumerate(config["report"]["comparisons"]):
        for side in ("a", "b"):
            if question[side] not in config["variants"]:
                warnings.append(f"config key report.comparisons.{i}.{side}: {question[side]!r} is not one of this "
                                f"run's variants{guess(question[side], config['variants'])}: the question is skipped")
    return warnings


def resolve_variant(config: dict, name: str) -> dict:
    """`training` overridden by the variant's keys (head, augment and onecycle key by key); `seeds` left out."""
    if name not in config["variants"]:
        raise ConfigError(f"unknown variant {name!r}; config key variants has {sorted(config['variants'])}")
    settings = copy.deepcopy(config["training"])
    overrides = config["variants"][name] or {}
    for key, value in overrides.items():
        if key in ("head", "augment", "onecycle"):
            settings[key] = {**settings[key], **value}
        elif key != "seeds":
            settings[key] = copy.deepcopy(value)
    return canonical(settings)


def variant_seeds(config: dict, name: str) -> list[int]:
    """The seeds a variant trains with: its own `seeds`, else the top-level ones."""
    return list((config["variants"][name] or {}).get("seeds", config["seeds"]))


def uses_cached_features(settings: dict) -> bool:
    """Whether a head-only run trains on cached features: no augmentation, no drifting 2019 statistics."""
    augmenting = any(settings["augment"][k] for k in ("crop", "flip", "cutout"))
    return (settings["train"] == "head" and settings["cache_features"] and not settings["replicate_2019_bugs"]
            and not augmenting)


def normalization_key(normalize: dict) -> str:
    """Short stable name of a normalisation, so feature caches differ when it does."""
    blob = json.dumps({"mean": normalize["mean"], "std": normalize["std"]}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


def canonical(value):
    """`value` with every mapping's keys sorted, recursively: a rule param's repr changes only with a value."""
    if isinstance(value, Mapping):
        return {key: canonical(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def shipped_config(path: str | Path) -> dict:
    """The shipped config.yaml, validated and filled like a run's; {} when there is none."""
    if not Path(path).is_file():
        return {}
    config = fill_and_check(yaml.safe_load(Path(path).read_text()))
    drop_null_variants(config)
    return config


def _leaves(config: Mapping, prefix: str = "") -> dict:
    """Dotted key → value; a variant and reference_accuracy stay one leaf, an empty mapping is none."""
    leaves = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and not value and prefix != "variants.":
            continue
        if isinstance(value, Mapping) and prefix != "variants." and path != "reference_accuracy":
            leaves.update(_leaves(value, f"{path}."))
        else:
            leaves[path] = value
    return leaves


def _compact(value) -> str:
    if value is _MISSING:
        return "–"
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, allow_unicode=True).strip()
    return text.removesuffix("...").strip()


_MISSING = object()
SCHEDULING_KEYS = ("threads_per_job", "gpu_jobs_per_device")  # how jobs run, not what they compute


def config_changes(config: Mapping, shipped: Mapping) -> list[dict]:
    """Keys whose value differs from the shipped config.yaml, sorted: [{key, value, shipped}] as short text."""
    ours, theirs = _leaves(config), _leaves(shipped)
    return [{"key": key, "value": _compact(ours.get(key, _MISSING)), "shipped": _compact(theirs.get(key, _MISSING))}
            for key in sorted(set(ours) | set(theirs))
            if key not in SCHEDULING_KEYS and ours.get(key, _MISSING) != theirs.get(key, _MISSING)]
