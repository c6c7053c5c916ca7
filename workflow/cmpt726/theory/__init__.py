"""Theory questions 1-5: one module per question, each with a `write_qN` entry point.

This package init stays light (no torch, no matplotlib): the rule file imports
`theory_settings` while Snakemake builds the DAG.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "theory.schema.yaml"


@lru_cache(maxsize=4)
def _load_schema(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _fill(value, schema: dict, where: str):
    """Return `value` with the defaults of `schema` filled in, recursively through objects."""
    if schema.get("type") != "object" or not isinstance(value, dict):
        return value
    properties = schema.get("properties", {})
    unknown = sorted(set(value) - set(properties))
    if unknown and schema.get("additionalProperties") is False:
        # A typo would otherwise silently fall back to a default.
        raise ValueError(f"unknown key(s) in {where}: {', '.join(unknown)}")
    filled = dict(value)
    for key, sub in properties.items():
        if key not in filled:
            if "default" not in sub:
                continue
            filled[key] = copy.deepcopy(sub["default"])
        filled[key] = _fill(filled[key], sub, f"{where}.{key}")
    return filled


def theory_settings(theory_config: dict | None, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """The `theory` config with every default of theory.schema.yaml filled in, validated.

    `theory_config` may be None or {} (YAML `theory:` with nothing under it).
    Raises ValueError naming the key on unknown keys and on values the schema rejects.
    """
    schema = _load_schema(str(schema_path))
    filled = _fill(copy.deepcopy(theory_config or {}), schema, "theory")
    validator = _validator(str(schema_path))
    if validator is not None:
        errors = sorted(validator.iter_errors(filled), key=lambda e: [str(p) for p in e.absolute_path])
        if errors:
            # Name the key: jsonschema's own message does not say where the bad value is.
            raise ValueError("; ".join(
                f"theory.{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors))
    return filled


@lru_cache(maxsize=4)
def _validator(path: str):
    """One compiled validator per schema: the rule file calls theory_settings once per rule."""
    try:
        import jsonschema
    except ImportError:  # validation is a convenience; the top-level schema checks again
        return None
    schema = _load_schema(path)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)
