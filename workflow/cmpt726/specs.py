"""The run's plan: the validated config turned, once, into what each job trains and reads (no torch); `bf16: auto`
is decided here for the machine the jobs run on, so no job sees `auto`.
"""

from dataclasses import dataclass
from pathlib import Path

from . import device as devices
from .config import (ConfigError, SCHEMA_PATH, normalization_key, resolve_variant, uses_cached_features,
                     validate_config, variant_seeds)
from .tuning.plan import (check_tuning, plan_for, recipe_settings, recipe_variants, tuned_variants, twin_seeds,
                          twin_settings)

__all__ = ["ConfigError", "Plan", "load", "make_plan"]


@dataclass(frozen=True)
class Plan:
    settings: dict[str, dict]     # variant (twins included) → resolved training settings
    seeds: dict[str, list[int]]   # variant → the seeds it trains with
    twins: dict[str, str]         # tuned twin → the variant it tunes ({} with tuning off)
    recipes: dict[str, str]       # recipe twin → its variant: the twin's recipe, unsearched ({}: tuning.recipe null)
    searches: dict[str, dict]     # tuned variant → its search (`tuning.plan.plan_for`)
    label_issue_variants: list[str]
    default_normalize: dict       # training.normalize: the near-duplicate search's feature cache

    @property
    def runs(self) -> list[tuple[str, int]]:
        """Every (variant, seed) that trains, in config order, each twin after the fixed variants."""
        return [(name, seed) for name, seeds in self.seeds.items() for seed in seeds]

    @property
    def normalizations(self) -> dict[str, dict]:
        """Feature cache key → normalisation, for every variant's and the default's."""
        found = {normalization_key(s["normalize"]): s["normalize"] for s in self.settings.values()}
        found.setdefault(normalization_key(self.default_normalize), self.default_normalize)
        return found

    def family(self, name: str) -> str:
        """The variant a twin (tuned or recipe) belongs to; a variant's own name otherwise."""
        return self.twins.get(name) or self.recipes.get(name) or name

    def cached(self, name: str) -> bool:
        return uses_cached_features(self.settings[name])


def make_plan(config: dict, native_bf16: bool | None = None) -> Plan:
    """The plan of a validated config; raises ConfigError for a bad `tuning`."""
    check_tuning(config)
    settings = {name: resolve_variant(config, name) for name in config["variants"]}
    seeds = {name: variant_seeds(config, name) for name in config["variants"]}
    twins = tuned_variants(config)
    for twin, name in twins.items():
        settings[twin] = twin_settings(config, name)
        seeds[twin] = twin_seeds(config, name, seeds[name])
    recipes = recipe_variants(config)
    for recipe, name in recipes.items():
        settings[recipe] = recipe_settings(config, name)
        seeds[recipe] = twin_seeds(config, name, seeds[name])
    searches = {name: plan_for(config, name) for name in twins.values()}
    everything = list(settings.values()) + [s for search in searches.values() for s in search["settings"]]
    if any(s["bf16"] == "auto" for s in everything):
        native = devices.native_bf16(config["device"]) if native_bf16 is None else native_bf16
        for s in everything:
            if s["bf16"] == "auto":
                s["bf16"] = native
    chosen = config["analysis"]["label_issues"]["variants"]
    full_network = [name for name, s in settings.items() if s["train"] == "all"]
    return Plan(settings=settings, seeds=seeds, twins=twins, recipes=recipes, searches=searches,
                label_issue_variants=list(chosen) if chosen else full_network or list(settings),
                default_normalize=config["training"]["normalize"])


def stacked_variants(seeds: dict[str, list[int]], enabled) -> dict[tuple[int, ...], list[str]]:
    """Seed list → the variants with that list and more than one seed: each such group is one rule whose jobs train
    a variant's seeds as one stacked model ({} when not `enabled`)."""
    groups: dict[tuple[int, ...], list[str]] = {}
    for name, its_seeds in seeds.items():
        if enabled and len(its_seeds) > 1:
            groups.setdefault(tuple(its_seeds), []).append(name)
    return groups


def load(config: dict, schema_path: str | Path = SCHEMA_PATH, command_line=None) -> Plan:
    """Validate `config` in place (typed `--config` values, defaults, checks) and make its plan."""
    validate_config(config, schema_path, command_line=command_line)
    return make_plan(config)
