"""What a run will cost, said before its first job (no torch): the trainings, trials and epochs of the jobs to run,
and a wall time on this machine.

Each heavy job is counted in optimiser steps by kind (`full` network, `frozen` backbone with a head, `head` on
cached features, `forward` passes); the step times are measured in a subprocess (`measure`, which imports torch)
or given by `CMPT726_STEP_SECONDS`. The lighter jobs count a job's start-up each.
"""

import functools
import json
import math
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..cifar import CIFAR10, read_split
from ..config import CIFAR10_TRAIN
from ..device import gpus_per_job, nvidia_present

CIFAR10_TEST = 10_000
CIFAR100_TRAIN, CIFAR100_TEST = 50_000, 10_000
# Forward passes are timed at this batch and counted per image (the jobs score in batches of 1000).
FORWARD_BATCH = 250
# Below this many images through the network a plan is named small: its time is mostly the jobs' start-ups.
SMALL_PLAN = 20_000
HOUR = 3600.0
ENV = "CMPT726_STEP_SECONDS"
# Seconds a Snakemake script job costs beyond its imports (the script's preamble, its benchmark, the scheduler's
# bookkeeping): trivial jobs took 4.3 s where the imports took 2.4 s (experiments/estimate-check).
JOB_OVERHEAD = 1.5
HEAVY = ("train_variant", "tuning_trial", "cache_features", "evaluate_variant", "pretrain_backbone")
LAPTOP = "configs/laptop.yaml"


@dataclass
class Cost:
    """One heavy job: its steps by measured kind, epochs, threads, and what it is (for the counts and the cuts)."""

    rule: str
    steps: Counter = field(default_factory=Counter)   # (kind, batch, bf16, channels_last, threads, head) → steps
    epochs: float = 0
    images: float = 0           # images through the backbone (the small-plan test)
    on_images: bool = True      # False: a head on cached features
    variant: str | None = None
    seed: int | None = None
    threads: int = 1
    seconds: float = 0.0        # filled once the step times are measured (`report`)


@functools.lru_cache(maxsize=None)
def _available(batch_dir: str, split: str) -> int | None:
    """The images of `split` in the CIFAR-10 folder the run reads; None where its files are absent or unreadable."""
    try:
        return len(read_split(batch_dir, CIFAR10, split, verify=False)[1])
    except Exception:  # noqa: BLE001 (an estimate never stops a run)
        return None


def _images(config: dict, split: str) -> int:
    full = _available(str(Path(config["data"]["cifar10"]["root"]) / CIFAR10.folder), split) \
        or (CIFAR10_TRAIN if split == "train" else CIFAR10_TEST)
    subset = config["data"]["subset"][split]
    return min(subset, full) if subset else full


def _steps(n: int, batch_size: int) -> int:
    """len(loop.batch_bounds(n, batch_size)): a last batch of one image joins the one before."""
    return math.ceil(n / batch_size) - (1 if n > batch_size and n % batch_size == 1 else 0)


def _epochs_of(cost: Cost, settings: dict, cached: bool, epochs: float, config: dict, threads: int,
               weight: float = 1.0) -> None:
    """Add `epochs` of training with `settings` (weighted: a trial whose configuration is not known yet)."""
    n_val = settings["validation"]
    n_train = _images(config, "train") - n_val
    kind = "head" if cached else "frozen" if settings["train"] == "head" else "full"
    key = (kind, settings["batch_size"], bool(settings["bf16"]), settings["channels_last"], threads,
           json.dumps(settings["head"], sort_keys=True) if cached else None)
    cost.steps[key] += weight * epochs * _steps(n_train, settings["batch_size"])
    if not cached:
        cost.images += weight * epochs * (n_train + n_val)
        if n_val:
            cost.steps[("forward", FORWARD_BATCH, bool(settings["bf16"]), settings["channels_last"], threads, None)] \
                += weight * epochs * n_val / FORWARD_BATCH


def job_costs(plan, config: dict, jobs: list[tuple[str, dict, int]]) -> tuple[list[Cost], Counter]:
    """(rule, wildcards, threads) of the jobs to run → the heavy jobs' costs, and the other jobs counted by rule."""
    costs, light = [], Counter()
    for rule, wildcards, threads in jobs:
        members = 1
        if rule.startswith("train_seeds_"):  # a stacked job, counted as its seeds' trainings: an upper bound
            rule, members = "train_variant", len(plan.seeds[wildcards["variant"]])
        if rule not in HEAVY:
            light[rule] += 1
            continue
        cost = Cost(rule, threads=threads, variant=wildcards.get("variant"))
        if "seed" in wildcards:
            cost.seed = int(wildcards["seed"])
        if cost.variant is not None:
            cached = plan.cached(cost.variant)
            cost.on_images = not cached
        if rule == "train_variant":
            candidates = [plan.settings[cost.variant]]
            if cost.variant in plan.twins:  # a searched batch size is known only once its search has chosen
                candidates = [{**candidates[0], **c} for c in plan.searches[plan.twins[cost.variant]]["configs"]]
            cost.epochs = plan.settings[cost.variant]["epochs"]
        elif rule == "tuning_trial":
            search, rung, slot = plan.searches[cost.variant], int(wildcards["rung"]), int(wildcards["slot"])
            cost.epochs = search["rungs"][rung]["epochs"]  # every trial a complete run of its rung's length
            # The first rung trains configuration `slot`; later rungs ones not chosen yet.
            candidates = [search["settings"][slot]] if rung == 0 else search["settings"]
        if rule in ("train_variant", "tuning_trial"):
            for settings in candidates:
                _epochs_of(cost, settings, cached, cost.epochs, config, threads, members / len(candidates))
        elif rule == "evaluate_variant":
            if cost.on_images:
                cost.images = n = _images(config, "test")
                key = ("forward", FORWARD_BATCH, False, plan.settings[cost.variant]["channels_last"], threads, None)
                cost.steps[key] += n / FORWARD_BATCH
        elif rule == "cache_features":
            n = _images(config, wildcards["split"])
            cost.images = n
            cost.steps[("forward", FORWARD_BATCH, False, True, threads, None)] += n / FORWARD_BATCH
        else:  # pretrain_backbone
            p = config["backbone"]["pretrain"]
            cost.epochs = p["epochs"]
            cost.steps[("full", p["batch_size"], bool(p["bf16"]), p["channels_last"], threads, None)] += \
                p["epochs"] * _steps(CIFAR100_TRAIN, p["batch_size"])
            cost.steps[("forward", FORWARD_BATCH, bool(p["bf16"]), p["channels_last"], threads, None)] += \
                p["epochs"] * CIFAR100_TEST / FORWARD_BATCH
            cost.images = p["epochs"] * (CIFAR100_TRAIN + CIFAR100_TEST)
        costs.append(cost)
    return costs, light


def measured(keys, device: str, env=None, timeout: float = 120) -> dict:
    """{"seconds": {key: seconds a step}, "startup", "device"} from `CMPT726_STEP_SECONDS` or the measurement;
    {"error": why} when that fails."""
    env = os.environ if env is None else env
    keys = sorted(set(keys), key=repr)
    if env.get(ENV):
        try:
            seconds = float(env[ENV])
        except ValueError:
            return {"error": f"{ENV}={env[ENV]!r} is not a number of seconds"}
        return {"seconds": {key: seconds for key in keys}, "startup": 0.0, "device": f"{ENV}={seconds:g}"}
    items = [{"kind": k[0], "batch": k[1], "bf16": k[2], "channels_last": k[3], "threads": k[4],
              "head": json.loads(k[5]) if k[5] else None} for k in keys]
    package = str(Path(__file__).resolve().parents[2])
    try:
        proc = subprocess.run([sys.executable, "-m", "cmpt726.preflight.measure"],
                              input=json.dumps({"device": device, "items": items}), capture_output=True, text=True,
                              timeout=timeout,
                              env={**env, "PYTHONPATH": os.pathsep.join([package, env.get("PYTHONPATH", "")])})
    except (OSError, subprocess.SubprocessError) as error:
        return {"error": f"{type(error).__name__}: {error}"}
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit status {proc.returncode}"}
    out = json.loads(proc.stdout)
    return {"seconds": dict(zip(keys, out["seconds"])), "startup": out["startup"] + JOB_OVERHEAD,
            "device": out["device"]}


def _load() -> float | None:
    """The 1-minute load average (other work competing for the cores the measurement times), None where unknown."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def wall(costs: list[Cost], cores: int, gpu_slots: int | None) -> float:
    """Seconds until the last of `costs` ends: the pretraining first, then the rest side by side."""
    first = [c for c in costs if c.rule == "pretrain_backbone"]
    rest = [c for c in costs if c.rule != "pretrain_backbone"]
    if gpu_slots:
        spread = sum(c.seconds for c in rest) / gpu_slots
    else:
        spread = sum(c.seconds * min(c.threads, cores) for c in rest) / max(1, cores)
    return sum(c.seconds for c in first) + max([spread] + [c.seconds for c in rest])


def duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _plural(n, word: str, plural: str | None = None) -> str:
    n = round(n) if isinstance(n, float) else n
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _group(costs: list[Cost], rule: str, noun: str) -> str | None:
    mine = [c for c in costs if c.rule == rule]
    if not mine:
        return None
    parts = []
    for on_images in (True, False):
        group = [c for c in mine if c.on_images == on_images]
        if group:
            what = f"{len(group)} on images" if on_images else f"{_plural(len(group), 'head')} on cached features"
            parts.append(f"{what}: {_plural(sum(c.epochs for c in group), 'epoch')}")
    return f"{_plural(len(mine), noun)} ({'; '.join(parts)})"


def counts(costs: list[Cost], light: Counter) -> str:
    said = [_group(costs, "train_variant", "training"), _group(costs, "tuning_trial", "tuning trial")]
    pretrain = [c for c in costs if c.rule == "pretrain_backbone"]
    if pretrain:
        said.append(f"the backbone's pretraining ({_plural(pretrain[0].epochs, 'epoch')} of CIFAR-100)")
    for rule, noun in (("cache_features", "feature cache"), ("evaluate_variant", "evaluation")):
        if n := sum(c.rule == rule for c in costs):
            said.append(_plural(n, noun))
    if light:
        said.append(f"{_plural(sum(light.values()), 'lighter job')} (data, analyses, report)")
    said = [s for s in said if s]
    return ", ".join(said) if said else "nothing"


def shorter(plan, config: dict, costs: list[Cost], on_cpu: bool) -> tuple[str, str, float] | None:
    """(flag or overlay, what it drops, job seconds it drops) of the one change that shortens this plan most plainly."""
    twins = set(plan.twins)

    def tuned(c):
        return c.rule == "tuning_trial" or c.variant in twins

    first_seed = {name: seeds[0] for name, seeds in plan.seeds.items() if seeds}
    options = []
    if on_cpu and any(tuned(c) and c.on_images for c in costs):
        options.append((f"--configfile {LAPTOP}", "the full-network variants' searches and tuned twins (it keeps "
                        "the grid and the tuned heads, one thread a job)", [c for c in costs if tuned(c) and c.on_images]))
    if any(tuned(c) for c in costs):
        options.append(("--config tuning='{\"enabled\": false}'", "every tuned twin, its search and its recipe twin",
                        [c for c in costs if tuned(c)]))
    seeds = sorted({s for v in plan.seeds.values() for s in v})
    if len(seeds) > 1:
        options.append((f"--config 'seeds=[{seeds[0]}]'", f"seeds {', '.join(map(str, seeds[1:]))} (the report's "
                        "intervals then rest on the test images alone)",
                        [c for c in costs if c.seed is not None and c.seed != first_seed.get(c.variant)]))
    options = [(flag, what, sum(c.seconds * c.threads for c in dropped)) for flag, what, dropped in options]
    options = [o for o in options if o[2] > 0]
    if not options:
        return None
    best = max(o[2] for o in options)
    return next(o for o in options if o[2] >= best / 2)  # the first in order that saves at least half the most


def report(plan, config: dict, jobs: list[tuple[str, dict, int]], *, cores: int, local: bool = True,
           gpu_share: int | None = None, env=None, measure=measured) -> list[str]:
    """The lines the pre-flight prints before the first job: what the jobs train, and how long on this machine."""
    if not jobs:
        return []
    costs, light = job_costs(plan, config, jobs)
    lines = [f"pre-flight estimate: {counts(costs, light)}."]
    if not costs:
        return lines
    if not local:
        return lines + ["  Its wall time depends on the cluster's nodes and queue: not estimated here."]
    on_gpu = gpus_per_job(config["device"]) == 1
    device = "cuda" if on_gpu else "cpu"
    env = os.environ if env is None else env
    if on_gpu and not env.get(ENV) and not nvidia_present():
        return lines + ["  Its time on this machine is not measured: the jobs ask for a GPU and there is none here."]
    load = _load()
    timing = measure([key for c in costs for key in c.steps], device, env=env)
    if "error" in timing:
        return lines + [f"  Its time on this machine could not be measured ({timing['error']})."]
    for cost in costs:
        cost.seconds = timing["startup"] + sum(n * timing["seconds"][key] for key, n in cost.steps.items())
    threads = max({c.threads for c in costs if c.rule != "pretrain_backbone"} or {1})
    gpu_slots = None
    if on_gpu:
        cards = max(1, (gpu_share or 1000) // 1000)
        gpu_slots = max(1, min(config["gpu_jobs_per_device"] * cards, cores // threads))
        at_once = f"{_plural(gpu_slots, 'job')} at once on the GPU"
    else:
        at_once = f"{_plural(max(1, cores // threads), 'job')} at once on {_plural(cores, 'core')}"
    steps = {}
    for key, seconds in sorted(timing["seconds"].items(), key=lambda item: item[0][:3]):
        if key[0] in ("full", "frozen"):
            other = f" ({key[4]} threads)" if key[4] != threads else ""  # pretraining's own thread count
            steps.setdefault(key[0], []).append(f"batch {key[1]}{' bf16' if key[2] else ''}{other} {seconds:.3g} s")
    named = {"full": "a step of the whole network", "frozen": "a step of a head on the frozen backbone"}
    said = "; ".join(f"{named[k]}: {', '.join(v)}" for k, v in steps.items()) or "heads only (steps of milliseconds)"
    # The lighter jobs (data, analyses, figures, report) cost about a job's start-up each.
    lighter = [Cost(rule, seconds=timing["startup"]) for rule, n in light.items() for _ in range(n)]
    total, job_time = wall(costs + lighter, cores, gpu_slots), sum(c.seconds for c in costs + lighter)
    busy = ""
    if not env.get(ENV) and not on_gpu and load is not None and load > cores:
        busy = f" Measured on a busy machine (load average {load:.1f} on {_plural(cores, 'core')}): quiet, it is faster."
    lines.append(f"  Step times here ({timing['device']}, {_plural(threads, 'thread')} a job): {said}; a job's "
                 f"start-up {timing['startup']:.1f} s.{busy}")
    images = round(sum(c.images for c in costs))
    small = f"a small plan ({_plural(images, 'image')} through the network), " if images < SMALL_PLAN else ""
    lines.append(f"  ≈ {duration(total)} on this machine, {small}{at_once} ({duration(job_time)} of job time).")
    if total > HOUR and (cut := shorter(plan, config, costs, not on_gpu)):
        flag, what, seconds = cut
        share = seconds / max(1e-9, sum(c.seconds * c.threads for c in costs))
        lines.append(f"  Over an hour: `{flag}` gives a shorter plan: it drops {what}; ≈ {duration(share * total)} "
                     f"of the {duration(total)}.")
    return lines
