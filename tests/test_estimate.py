"""The pre-flight's estimate of a plan (jobs, steps, wall time, the change that shortens it) and `bf16: auto`."""

from __future__ import annotations

import math

import pytest
from conftest import overlaid, shipped

from cmpt726 import device, preflight, specs
from cmpt726.preflight import estimate

FULL32 = ("full", 32, False, True, 1, None)
FORWARD = ("forward", estimate.FORWARD_BATCH, False, True, 1, None)


def fixed(seconds: float, startup: float = 0.0):
    """A `measure` that gives every step `seconds` and counts what it was asked for."""
    asked = []

    def measure(keys, device, env=None):
        asked.append((sorted(set(keys), key=repr), device))
        return {"seconds": {key: seconds for key in keys}, "startup": startup, "device": "fixed"}
    measure.asked = asked
    return measure


def test_a_training_counts_its_steps_and_validation_passes():
    config = shipped()
    plan = specs.make_plan(config, native_bf16=False)
    [cost], light = estimate.job_costs(plan, config, [("train_variant", {"variant": "all", "seed": "0"}, 1),
                                                      ("report_html", {}, 1)])
    assert light == {"report_html": 1}
    # 45,000 training images (5,000 held out) in batches of 32: 1,407 steps an epoch, 10 epochs; the held-out
    # 5,000 scored after each epoch
    assert cost.steps == {FULL32: 14_070, FORWARD: 10 * 5000 / estimate.FORWARD_BATCH}
    assert (cost.epochs, cost.on_images, cost.images) == (10, True, 10 * 50_000)
    [head], _ = estimate.job_costs(plan, config, [("train_variant", {"variant": "head", "seed": "1"}, 1)])
    assert not head.on_images and head.images == 0 and set(k[0] for k in head.steps) == {"head"}
    [stack], _ = estimate.job_costs(plan, config, [("train_seeds_0_1_2", {"variant": "all"}, 1)])
    assert stack.steps == {FULL32: 3 * 14_070, FORWARD: 3 * 10 * 5000 / estimate.FORWARD_BATCH}  # its 3 seeds


def test_trials_count_their_rungs_epochs():
    config = shipped()
    plan = specs.make_plan(config, native_bf16=False)
    search = plan.searches["all"]
    assert [r["epochs"] for r in search["rungs"]] == [2, 6, 15]
    jobs = [("tuning_trial", {"variant": "all", "rung": str(r), "slot": "0"}, 1) for r in range(3)]
    costs, _ = estimate.job_costs(plan, config, jobs)
    assert [c.epochs for c in costs] == [2, 6, 15]  # each trial a complete run of its rung's length
    steps = math.ceil(45_000 / 128)
    assert costs[1].steps[("full", 128, False, True, 1, None)] == pytest.approx(6 * steps)


def test_the_wall_time_is_the_job_time_spread_over_the_cores():
    config = shipped()
    plan = specs.make_plan(config, native_bf16=False)
    jobs = [("train_variant", {"variant": v, "seed": str(s)}, 1) for v in ("all", "all_fc256") for s in (0, 1)]
    measure = fixed(0.1, startup=2.0)
    lines = estimate.report(plan, config, jobs, cores=2, measure=measure, env={})
    one = 2.0 + 0.1 * (14_070 + 200)  # a job: start-up, steps, validation passes
    assert lines[0] == ("pre-flight estimate: 4 trainings (4 on images: 40 epochs).")
    assert f"≈ {estimate.duration(4 * one / 2)} on this machine, 2 jobs at once on 2 cores" in lines[2]
    assert f"({estimate.duration(4 * one)} of job time" in lines[2]
    assert "Over an hour" not in "\n".join(lines)  # ≈ 48 min
    assert measure.asked == [([FORWARD, FULL32], "cpu")]
    # the same jobs with two threads each on 2 cores: one at a time
    lines = estimate.report(plan, config, [(r, w, 2) for r, w, _ in jobs], cores=2, measure=fixed(0.1, 2.0), env={})
    assert "1 job at once on 2 cores" in lines[2]
    # ten lighter jobs beside them: a job's start-up each, spread over the cores too
    lines = estimate.report(plan, config, jobs + [("gallery_pdf", {}, 1)] * 10, cores=2, measure=measure, env={})
    assert f"({estimate.duration(4 * one + 10 * 2.0)} of job time" in lines[2], lines


def test_a_long_plan_names_the_change_that_shortens_it():
    config = shipped()
    plan = specs.make_plan(config, native_bf16=False)
    jobs = [("train_variant", {"variant": v, "seed": str(s)}, 1) for v in plan.settings for s in plan.seeds[v]]
    jobs += [("tuning_trial", {"variant": v, "rung": str(r), "slot": str(k)}, 1)
             for v, search in plan.searches.items() for r, rung in enumerate(search["rungs"])
             for k in range(rung["trials"])]
    text = "\n".join(estimate.report(plan, config, jobs, cores=2, measure=fixed(0.1), env={}))
    # the variants, their tuned twins and their recipe twins, 3 seeds each
    assert "90 trainings (54 on images: 720 epochs; 36 heads on cached features: 369 epochs)" in text
    # every trial a complete run of its rung's length: 2·12 + 6·4 + 15 epochs a search (head_1ep: 12 of 1)
    assert "165 tuning trials (102 on images: 378 epochs; 63 heads on cached features: 201 epochs)" in text
    # on a CPU: the laptop overlay, which drops the full-network searches and twins
    assert "Over an hour: `--configfile configs/laptop.yaml` gives a shorter plan" in text
    assert "full-network variants' searches and tuned twins" in text
    # with the jobs on a GPU (no GPU needed here: the step times are given)
    gpu = {**config, "device": "cuda"}
    text = "\n".join(estimate.report(plan, gpu, jobs, cores=16, measure=fixed(0.02), env={estimate.ENV: "0.02"}))
    assert "4 jobs at once on the GPU" in text  # gpu_jobs_per_device's default: four share the card
    assert "`--config tuning='{\"enabled\": false}'` gives a shorter plan: it drops every tuned twin" in text
    # the laptop overlay's plan: one seed is what shortens it most
    laptop = overlaid("laptop")
    plan = specs.make_plan(laptop, native_bf16=False)
    jobs = [("train_variant", {"variant": v, "seed": str(s)}, 1) for v in plan.settings for s in plan.seeds[v]]
    text = "\n".join(estimate.report(plan, laptop, jobs, cores=2, measure=fixed(0.1), env={}))
    assert "`--config 'seeds=[0]'` gives a shorter plan: it drops seeds 1, 2" in text


def test_small_plans_are_measured_too_and_cluster_runs_and_failures_are_said_not_measured():
    config = shipped()
    config["data"]["subset"] = {"train": 300, "test": 100}
    config["training"]["validation"] = 40
    plan = specs.make_plan(config, native_bf16=False)
    jobs = [("train_variant", {"variant": "all", "seed": "0"}, 1), ("report_html", {}, 1)]
    # 260 images 10 epochs (9 steps each) and 40 scored 10 times: 91.6 steps of 0.1 s and a 30 s start-up, beside
    # the report's 30 s start-up: 39 s of wall time, 69 s of job time
    lines = estimate.report(plan, config, jobs, cores=2, measure=fixed(0.1, startup=30), env={})
    assert lines[2] == ("  ≈ 1 min on this machine, a small plan (3000 images through the network), 2 jobs at once on "
                        "2 cores (1 min of job time).")
    assert "depends on the cluster" in estimate.report(plan, config, jobs, cores=2, local=False, env={})[1]
    failing = estimate.report(plan, config, jobs, cores=2, env={estimate.ENV: "fast"})
    assert "could not be measured (CMPT726_STEP_SECONDS='fast' is not a number of seconds)" in failing[1]
    assert estimate.report(plan, config, [], cores=2, env={}) == []


def test_the_real_measurement_on_a_tiny_case():
    """The subprocess the estimate runs: torch, the project's ResNet-20, every kind of step, on the CPU."""
    head = '{"batchnorm": true, "dropout": 0.0, "hidden": [8]}'
    keys = [("full", 2, False, True, 1, None), ("frozen", 2, False, False, 1, None), ("head", 4, False, True, 1, head),
            ("forward", 4, False, True, 1, None)]
    timing = estimate.measured(keys, "cpu", env={})
    assert "error" not in timing, timing
    assert set(timing["seconds"]) == set(keys)
    assert all(0 < s < 30 for s in timing["seconds"].values()), timing
    assert 0 < timing["startup"] < 120 and timing["device"].startswith("cpu: ")


def test_bf16_auto_is_decided_once_at_planning():
    assert device.native_bf16("cpu", flags={"avx512f", "avx512_bf16"}) is True
    assert device.native_bf16("cpu", flags={"avx512f"}) is False
    assert device.native_bf16("cuda", flags={"amx_bf16"}) is False  # it did not pay on the GPU
    assert device.native_bf16("auto", present=True, flags={"amx_bf16"}) is False
    assert device.native_bf16("auto", present=False, flags={"amx_bf16"}) is True
    config = shipped()
    config["training"]["bf16"] = "auto"
    for native in (True, False):
        plan = specs.make_plan(config, native_bf16=native)
        everything = list(plan.settings.values()) + [s for p in plan.searches.values() for s in p["settings"]]
        assert {s["bf16"] for s in everything} == {native}
    assert config["training"]["bf16"] == "auto"  # the config is not changed


def test_bf16_on_a_cpu_that_emulates_it_is_warned_about_at_planning():
    config = overlaid("tuning-cpu", device="cpu")
    plan = specs.make_plan(config)
    [warning] = preflight.bf16_warnings(config, plan, flags={"avx512f"})
    assert "20 variants (head_1ep-tuned" in warning and "bf16: auto" in warning
    assert preflight.bf16_warnings(config, plan, flags={"avx512f", "avx512_bf16"}) == []
    assert preflight.bf16_warnings({**config, "device": "cuda"}, plan, flags={"avx512f"}) == []
    assert preflight.bf16_warnings(config, plan, flags=set()) == []  # flags unknown: no guess


@pytest.mark.parametrize("flags", [{"avx512f"}, {"avx512f", "avx512_bf16"}])
def test_the_laptop_overlay_plans_without_a_warning(flags):
    config = overlaid("laptop", device="cpu")
    native = device.native_bf16("cpu", flags=flags)
    plan = specs.make_plan(config, native_bf16=native)
    assert preflight.bf16_warnings(config, plan, flags=flags) == []
    assert {s["bf16"] for s in plan.settings.values()} == {native}
    assert set(plan.twins.values()) == {"head_1ep", "head", "head_l2", "head_fc256_l2"}
    assert all(plan.cached(twin) for twin in plan.twins) and config["threads_per_job"] == 1
