"""Each tuned variant `v`'s search (no torch): its twin `v-tuned` trains with `tuning.settings` and the
`tuning.space` values chosen on the validation split, by successive halving or one grid rung (docs/tuning.md).
"""

import copy
import itertools

from ..config import ConfigError, _variant_key, canonical, check_sizes, resolve_variant
from .choice import RECIPE_SUFFIX, TWIN_SUFFIX

# Training keys a search may set: how a run trains, not what it reads (a twin reads its variant's inputs).
SEARCHABLE = ("lr", "momentum", "nesterov", "weight_decay", "batch_size", "schedule")
SETTABLE = SEARCHABLE + ("onecycle", "bf16")


def tuned_variants(config: dict) -> dict[str, str]:
    """twin name → the variant it tunes ({} with tuning off)."""
    tuning = config["tuning"]
    if not tuning["enabled"]:
        return {}
    names = tuning["variants"] if tuning["variants"] is not None else list(config["variants"])
    return {f"{name}{TWIN_SUFFIX}": name for name in names}


def recipe_variants(config: dict) -> dict[str, str]:
    """recipe twin name → the variant whose tuned twin's recipe it trains unsearched ({} without tuning.recipe)."""
    if not config["tuning"]["recipe"]:
        return {}
    return {f"{name}{RECIPE_SUFFIX}": name for name in tuned_variants(config).values()}


def recipe_settings(config: dict, name: str) -> dict:
    """The settings of `name`'s recipe twin: its tuned twin's fixed settings, tuning.recipe's lr and weight decay."""
    return canonical({**twin_settings(config, name), **config["tuning"]["recipe"]})


def own_overrides(tuning: dict, name: str) -> dict:
    return tuning["overrides"].get(name) or {}


def variant_tuning(config: dict, name: str) -> dict:
    """The tuning of one variant: the top-level keys with `tuning.overrides.<name>` over them."""
    tuning = config["tuning"]
    own = own_overrides(tuning, name)
    merged = {key: copy.deepcopy(tuning[key]) for key in ("space", "settings", "epochs", "min_epochs")}
    for key, value in own.items():
        if key == "seeds":  # the twin's final runs (`twin_seeds`), not the search: its trials stay as they are
            continue
        if key in ("space", "settings"):
            merged[key] = {**merged[key], **copy.deepcopy(value)}
        else:
            merged[key] = value
    if merged["epochs"] is None:
        merged["epochs"] = resolve_variant(config, name)["epochs"]
    merged.update(method=tuning["method"], eta=tuning["eta"], seed=tuning["seed"], tie_break=tuning["tie_break"])
    return merged


def grid(space: dict) -> list[dict]:
    """Every combination of the space's lists, in order (the last key varies fastest)."""
    keys = list(space)
    return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]


def rungs(n_configs: int, epochs: int, min_epochs: int, eta: int, method: str) -> list[dict]:
    """[{epochs, trials}] per rung: halving min_epochs·eta^k (then `epochs`) with ⌊n/eta⌋ trials; grid: one."""
    if method == "grid" or min_epochs >= epochs:
        return [{"epochs": epochs, "trials": n_configs}]
    plan, e, n = [], min_epochs, n_configs
    while e < epochs:
        plan.append({"epochs": e, "trials": n})
        e, n = e * eta, max(1, n // eta)
    plan.append({"epochs": epochs, "trials": n})
    return plan


def trial_epochs(plan: list[dict]) -> int:
    """The epochs a search trains in all: every trial trains its rung's epochs from the start."""
    return sum(r["trials"] * r["epochs"] for r in plan)


def with_fixed_settings(settings: dict, fixed: dict, epochs: int) -> dict:
    """`settings` with the tuning's fixed settings over them (onecycle key by key) and the tuning's epochs."""
    s = copy.deepcopy(settings)
    for key, value in fixed.items():
        s[key] = {**s[key], **value} if key == "onecycle" else copy.deepcopy(value)
    s["epochs"] = epochs
    return canonical(s)


def twin_settings(config: dict, name: str) -> dict:
    """The settings of `name`'s tuned twin before its search has chosen (the variant's, tuning's fixed ones over)."""
    tuning = variant_tuning(config, name)
    return with_fixed_settings(resolve_variant(config, name), tuning["settings"], tuning["epochs"])


def twin_seeds(config: dict, name: str, variant_seeds: list[int]) -> list[int]:
    """The seeds of `name`'s twin: `tuning.overrides.<name>.seeds` when set, else the variant's."""
    own = own_overrides(config["tuning"], name)
    return list(own["seeds"]) if "seeds" in own else list(variant_seeds)


def plan_for(config: dict, name: str) -> dict:
    """Everything the rules need about one variant's search: its configurations, rungs and trial settings."""
    tuning = variant_tuning(config, name)
    configs = grid(tuning["space"])
    base = resolve_variant(config, name)
    settings = [with_fixed_settings(base, {**tuning["settings"], **item}, tuning["epochs"]) for item in configs]
    return {"configs": configs, "settings": settings,
            "rungs": rungs(len(configs), tuning["epochs"], tuning["min_epochs"], tuning["eta"], tuning["method"]),
            **{k: tuning[k] for k in ("method", "eta", "seed", "tie_break", "epochs", "min_epochs")}}


def check_tuning(config: dict) -> None:
    """Cross-key checks of `tuning`: known variants, searchable keys, equal budgets, a split to tune on, free names."""
    tuning = config["tuning"]
    for i, name in enumerate(tuning["variants"] or []):
        if name not in config["variants"]:
            raise ConfigError(f"config key tuning.variants.{i}: {name!r} is not one of the variants "
                              f"{sorted(config['variants'])}")
    if not tuning["enabled"]:
        return
    sizes = {}
    for recipe, name in recipe_variants(config).items():
        if recipe in config["variants"]:
            raise ConfigError(f"config key variants.{recipe}: the name of {name}'s recipe twin (tuning.recipe); "
                              "rename it")
    for twin, name in tuned_variants(config).items():
        if twin in config["variants"]:
            raise ConfigError(f"config key variants.{twin}: the name of {name}'s tuned twin (tuning.enabled); "
                              "rename it")
        own = own_overrides(tuning, name)

        def key_of(*path):  # where a value comes from: the variant's override, else the top level
            part = own
            for step in path:
                if not isinstance(part, dict) or step not in part:
                    return "tuning." + ".".join(path)
                part = part[step]
            return f"tuning.overrides.{name}." + ".".join(path)

        plan = variant_tuning(config, name)
        for part, allowed in (("space", SEARCHABLE), ("settings", SETTABLE)):
            for key in plan[part]:
                if key not in allowed:
                    raise ConfigError(f"config key {key_of(part, key)}: not a key tuning may set "
                                      f"({', '.join(allowed)})")
        if not plan["space"]:
            raise ConfigError(f"config key {key_of('space')}: empty; give at least one key with a list of values")
        if plan["min_epochs"] > plan["epochs"]:
            raise ConfigError(f"config key {key_of('min_epochs')}: {plan['min_epochs']} is more than the "
                              f"{plan['epochs']} epochs of a trial")
        if resolve_variant(config, name)["validation"] == 0:
            key = f"variants.{name}.validation" if "validation" in (config["variants"][name] or {}) else \
                "training.validation"
            raise ConfigError(f"config key {key}: 0 leaves no validation split to tune {name} on (set it, leave the "
                              "variant out of tuning.variants, or set tuning.enabled false)")
        # Each trial's and the twin's settings held to a variant's own checks (a searched batch size of 1
        # would give a BatchNorm head batches of one image).
        def setting_key(key):  # the key that set a trial's setting: the space, the fixed settings, the variant
            return key_of("space", key) if key in plan["space"] else \
                key_of("settings", key) if key in plan["settings"] else _variant_key(config, name, key)

        for trial in plan_for(config, name)["settings"]:
            check_sizes(config, trial, setting_key)
        sizes[name] = len(grid(plan["space"]))
    if len(set(sizes.values())) > 1:
        raise ConfigError("config key tuning.overrides: every variant gets the same number of trials (equal "
                          f"budgets), but the spaces give {sizes}")
