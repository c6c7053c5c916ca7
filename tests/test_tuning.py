"""Tuning (config `tuning`): the plan, successive halving, the choice, and the jobs it plans."""

import copy
import json
import re

import pytest

from cmpt726 import finetune, specs
from cmpt726.config import ConfigError
from cmpt726.features import extract_features
from cmpt726.finetune import apply_choice
from cmpt726.files import read_tsv, write_tsv
from cmpt726.tuning import choice as search
from cmpt726.tuning import plan as tuning
from cmpt726.tuning import trials
from cmpt726.tuning.summary import tuning_outputs
from conftest import make_project, overlaid, prepared_data, read_yaml, smoke_config
from workflow_helpers import edited_config, job, job_fields, planned_jobs, snakemake


def shipped(**tuning_keys) -> dict:
    """config.yaml with its tuning plan on (as it ships), with `tuning_keys` over it."""
    config = read_yaml("config.yaml")
    config["tuning"].update({"enabled": True, **tuning_keys})
    return config


def test_grid_is_every_combination_in_order():
    assert tuning.grid({"lr": [0.1, 0.01], "weight_decay": [0, 1]}) == [
        {"lr": 0.1, "weight_decay": 0}, {"lr": 0.1, "weight_decay": 1},
        {"lr": 0.01, "weight_decay": 0}, {"lr": 0.01, "weight_decay": 1}]


@pytest.mark.parametrize("n, epochs, min_epochs, eta, method, expected", [
    (12, 15, 2, 3, "halving", [(2, 12), (6, 4), (15, 1)]),
    (9, 27, 1, 3, "halving", [(1, 9), (3, 3), (9, 1), (27, 1)]),
    (12, 15, 2, 3, "grid", [(15, 12)]),
    (4, 3, 3, 2, "halving", [(3, 4)]),  # min_epochs = epochs: one rung, the grid
])
def test_rungs(n, epochs, min_epochs, eta, method, expected):
    plan = tuning.rungs(n, epochs, min_epochs, eta, method)
    assert [(r["epochs"], r["trials"]) for r in plan] == expected


def test_halving_spends_under_two_fifths_of_the_grid_with_the_shipped_space():
    config = overlaid()
    plan = tuning.plan_for(config, "all")
    halving = tuning.trial_epochs(plan["rungs"])
    grid = tuning.trial_epochs(tuning.rungs(len(plan["configs"]), plan["epochs"], 1, 3, "grid"))
    assert (halving, grid) == (2 * 12 + 6 * 4 + 15 * 1, 15 * 12) and halving <= grid * 2 / 5


def test_every_rung_ranks_runs_that_have_annealed():
    """A trial's schedule spans its own rung: warm-up and annealing end with the rung, so a short rung ranks
    configurations at the end of their schedules, not while a large learning rate is still at its peak."""
    plan = tuning.plan_for(overlaid(), "all")
    steps = 10
    for rung, shape in enumerate(plan["rungs"]):
        for index in range(len(plan["configs"])):
            settings = trials.trial_settings(plan, index, rung)
            assert settings["epochs"] == shape["epochs"]
            assert {k: v for k, v in settings.items() if k != "epochs"} == \
                {k: v for k, v in plan["settings"][index].items() if k != "epochs"}
            lr_at = finetune.schedule(settings, steps)
            peak = max(lr_at(step) for step in range(shape["epochs"] * steps))
            assert peak == pytest.approx(settings["lr"], rel=0.05)
            assert lr_at(shape["epochs"] * steps - 1) < 0.01 * settings["lr"]


def test_twins_join_the_variants_with_the_fixed_settings_and_equal_budgets():
    config = overlaid()
    before = copy.deepcopy(config)
    plan = specs.make_plan(config)
    assert config == before  # the config is never changed after validation
    assert plan.twins == {f"{name}-tuned": name for name in config["variants"]}
    assert plan.recipes == {f"{name}-recipe": name for name in config["variants"]}
    assert list(plan.settings) == [*config["variants"], *plan.twins, *plan.recipes]
    # a recipe twin: its tuned twin's settings at tuning.recipe's lr and weight decay, unsearched
    recipe, tuned = plan.settings["all-recipe"], plan.settings["all-tuned"]
    assert (recipe["lr"], recipe["weight_decay"]) == (0.05, 0.0005) and plan.family("all-recipe") == "all"
    assert {k: v for k, v in recipe.items() if k not in ("lr", "weight_decay")} == \
        {k: v for k, v in tuned.items() if k not in ("lr", "weight_decay")}
    assert plan.seeds["all-recipe"] == plan.seeds["all-tuned"]
    assert specs.load(shipped(recipe=None)).recipes == {}
    twin, fixed = plan.settings["all_augment-tuned"], plan.settings["all_augment"]
    assert (twin["schedule"], twin["nesterov"], twin["batch_size"], twin["epochs"]) == ("onecycle", True, 128, 15)
    assert twin["augment"] == fixed["augment"] and twin["train"] == fixed["train"]
    assert plan.settings["head_1ep-tuned"]["epochs"] == 1  # its override
    assert len({len(p["configs"]) for p in plan.searches.values()}) == 1  # the same number of trials for all
    first = plan.searches["head"]["settings"][0]
    assert (first["lr"], first["weight_decay"], first["epochs"], first["schedule"]) == (0.01, 0.0, 15, "onecycle")
    assert {k: v for k, v in first.items() if k not in ("lr", "weight_decay")} == \
        {k: v for k, v in plan.settings["head-tuned"].items() if k not in ("lr", "weight_decay")}
    assert "all-tuned" in plan.label_issue_variants and "head-tuned" not in plan.label_issue_variants


def test_a_twin_may_have_its_own_seeds():
    config = shipped(overrides={"all": {"seeds": [0, 1, 2]}})
    config["variants"]["all"] = {**(config["variants"]["all"] or {}), "seeds": [0]}
    plan = specs.load(config)
    assert plan.seeds["all-tuned"] == [0, 1, 2] and plan.seeds["all"] == [0]
    assert plan.seeds["head-tuned"] == plan.seeds["head"]  # no override: its variant's
    assert plan.searches["all"] == specs.load(shipped()).searches["all"]  # the search is not rerun for it
    with pytest.raises(ConfigError, match=re.escape("tuning.overrides.all.seeds")):
        specs.load(shipped(overrides={"all": {"seeds": []}}))


def test_tuning_off_gives_the_plain_grid():
    config = shipped(enabled=False)
    plan = specs.load(config)
    assert plan.twins == {} and plan.searches == {} and list(plan.settings) == list(config["variants"])


@pytest.mark.parametrize("edit, message", [
    (lambda t: t["overrides"].update(head={"space": {"lr": [0.1]}}),
     "tuning.overrides: every variant gets the same number of trials"),
    (lambda t: t.update(variants=["head", "nope"]), "tuning.variants.1: 'nope' is not one of the variants"),
    (lambda t: t.update(min_epochs=20), "tuning.min_epochs: 20 is more than the 15 epochs"),
    (lambda t: t.update(space={}), "tuning.space: empty"),
    (lambda t: t.update(space={"lr": []}), "tuning.space.lr"),
    (lambda t: t.update(space={"train": ["all"]}), "unknown config key tuning.space.train"),
])
def test_bad_tuning_config_is_refused_naming_the_key(edit, message):
    config = shipped()
    edit(config["tuning"])
    with pytest.raises(ConfigError, match=re.escape(message)):
        specs.load(config)


def test_tuning_needs_a_validation_split():
    on, off = shipped(), shipped(enabled=False)
    on["training"]["validation"] = off["training"]["validation"] = 0
    with pytest.raises(ConfigError, match="training.validation: 0 leaves no validation split to tune head_1ep on"):
        specs.load(on)
    specs.load(off)  # off: nothing to tune on is fine


def record(rung, slot, index, acc, loss, epochs=3, promoted_from=None):
    return {"rung": rung, "slot": slot, "config_index": index, "config": {"lr": index / 10},
            "promoted_from": promoted_from, "settings": {"lr": index / 10}, "epochs": epochs, "kept_epoch": epochs,
            "val_acc": acc, "val_loss": loss, "seconds": 1.0, "device": "cpu",
            "history": [{"epoch": e + 1, "val_acc": acc} for e in range(epochs)]}


def test_rank_by_accuracy_then_loss_then_order():
    records = [record(0, 0, 0, 50.0, 1.0), record(0, 1, 1, 60.0, 2.0), record(0, 2, 2, 60.0, 1.5),
               record(0, 3, 3, 60.0, 1.5)]
    assert [r["config_index"] for r in search.rank(records, "val_loss")] == [2, 3, 1, 0]
    assert [r["config_index"] for r in search.rank(records, "order")] == [1, 2, 3, 0]
    assert search.pick_from_previous(records, 1, "val_loss")["config_index"] == 3


def test_choice_is_the_best_of_the_last_rung_with_every_trial_and_its_cost():
    plan = {"rungs": [{"epochs": 1, "trials": 3}, {"epochs": 3, "trials": 1}], "tie_break": "val_loss",
            "method": "halving", "configs": [{}, {}, {}], "epochs": 3, "seed": 0}
    records = [record(0, 0, 0, 40.0, 1.0, 1), record(0, 1, 1, 70.0, 1.0, 1), record(0, 2, 2, 50.0, 1.0, 1),
               record(1, 0, 1, 65.0, 0.9, 3, promoted_from=1)]
    choice, rows = search.choose(records, plan, "head")
    assert (choice["config_index"], choice["val_acc"], choice["twin"]) == (1, 65.0, "head-tuned")
    assert (choice["trials"], choice["trial_epochs"], choice["grid_epochs"]) == (4, 6, 9)
    assert [(r["rung"], r["slot"], r["promoted"], r["chosen"]) for r in rows] == \
        [(0, 0, 0, 0), (0, 1, 1, 0), (0, 2, 0, 0), (1, 0, 0, 1)]
    with pytest.raises(ValueError, match="0 trials in the last rung"):
        search.choose(records[:3], plan, "head")


def test_convergence_says_whether_the_kept_epoch_is_the_last_and_the_late_rise():
    rising = [{"epoch": e, "val_acc": 50.0 + e} for e in range(1, 11)]
    assert search.convergence(rising) == {"kept_is_last": True, "last_fifth_rise": 2.0}
    flat = rising[:8] + [{"epoch": 9, "val_acc": 58.0}, {"epoch": 10, "val_acc": 57.0}]
    assert search.convergence(flat) == {"kept_is_last": False, "last_fifth_rise": -1.0}


def test_summary_table_and_figure_of_what_the_tuning_saw(tmp_path):
    plan = {"rungs": [{"epochs": 1, "trials": 2}, {"epochs": 5, "trials": 1}], "tie_break": "val_loss",
            "method": "halving", "configs": [{}, {}], "epochs": 5, "seed": 0}
    paths = []
    for r in [record(0, 0, 0, 40.0, 1.0, 1), record(0, 1, 1, 50.0, 1.0, 1),
              record(1, 0, 1, 60.0, 0.9, 5, promoted_from=1)]:
        r["config"] = {"lr": [0.01, 0.1][r["config_index"]], "weight_decay": 0.0}
        paths.append(tmp_path / f"r{r['rung']}s{r['slot']}.json")
        paths[-1].write_text(json.dumps(r))
    search.write_choice(paths, tmp_path / "choice.json", tmp_path / "search.json", tmp_path / "trials.tsv", plan,
                        "head")
    assert json.loads((tmp_path / "choice.json").read_text()) == {
        "variant": "head", "twin": "head-tuned", "config": {"lr": 0.1, "weight_decay": 0.0}, "epochs": 5}
    curves = []
    for seed, accs in enumerate([[50, 55, 58, 59, 60], [50, 55, 60, 59, 58]]):
        curves.append(tmp_path / f"seed{seed}.epochs.tsv")
        write_tsv(curves[-1], ["epoch", "val_acc"], [{"epoch": e + 1, "val_acc": a} for e, a in enumerate(accs)])
    rows = tuning_outputs({"head": tmp_path / "search.json"}, {"head": tmp_path / "trials.tsv"}, {"head": curves},
                          tmp_path / "search.png", tmp_path / "tuning.tsv", tmp_path / "numbers.json")
    (row,) = read_tsv(tmp_path / "tuning.tsv")
    assert row["chosen"] == '{"lr": 0.1, "weight_decay": 0.0}' and row["val_acc"] == 60.0
    assert (row["trials"], row["trial_epochs"], row["grid_epochs"]) == (3, 7, 10)
    assert (row["runs_kept_last"], row["runs"], row["runs_last_fifth_rise"]) == (1, 2, 0.0)  # +1 and -1 points
    assert rows[0]["twin"] == "head-tuned" and (tmp_path / "search.png").stat().st_size > 5000
    assert json.loads((tmp_path / "numbers.json").read_text())["total"]["trials"] == 3


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    root = prepared_data(tmp_path_factory.mktemp("tune"), n_train=160, n_test=40, n_val=40, data_seed=3,
                         backbone_seed=1)
    extract_features(root / "backbone.pt", root / "train.npz", root / "features.npz",
                     overlaid()["training"]["normalize"], "cpu")
    return root


def tiny_plan(method, **space):
    config = shipped(method=method, epochs=4, min_epochs=1, eta=2,
                     space=space or {"lr": [0.003, 0.03, 0.3], "weight_decay": [0.0]}, overrides={})
    config["variants"] = {"h": {"train": "head", "batch_size": 16}}
    return specs.load(config).searches["h"]


def test_a_promoted_trial_is_the_grid_run_of_its_rungs_length(features, tmp_path):
    """Halving trains a promoted configuration afresh for its rung's epochs: its last rung's trial is the grid's
    trial of that configuration, epoch by epoch, and its earlier rungs are complete runs of their own length."""
    args = (features / "backbone.pt", features / "features.npz", features / "split.npz")
    halving = trials.search(*args, tmp_path / "halving" / "h", tiny_plan("halving"), device="cpu")
    grid = trials.search(*args, tmp_path / "grid" / "h", tiny_plan("grid"), device="cpu")
    assert [(r["epochs"], r["trials"]) for r in halving["rungs"]] == [(1, 3), (2, 1), (4, 1)]
    assert halving["trial_epochs"] == 3 + 2 + 4 and grid["trial_epochs"] == 12

    def trial(method, rung, slot):
        return json.loads((tmp_path / method / "h" / f"rung{rung}" / f"trial{slot}.json").read_text())

    chosen = halving["config_index"]
    straight, last = trial("grid", 0, chosen), trial("halving", 2, 0)
    assert last["config_index"] == chosen and last["promoted_from"] == 0
    assert [r["val_acc"] for r in last["history"]] == [r["val_acc"] for r in straight["history"]]
    assert [r["train_loss"] for r in last["history"]] == [r["train_loss"] for r in straight["history"]]
    assert halving["val_acc"] == straight["val_acc"]
    middle = trial("halving", 1, 0)
    assert len(middle["history"]) == middle["epochs"] == 2
    # the grid's choice is its best trial; trials.tsv has one row per trial
    best = max(trial("grid", 0, i)["val_acc"] for i in range(3))
    assert json.loads((tmp_path / "grid" / "h" / "search.json").read_text())["val_acc"] == best
    assert len((tmp_path / "halving" / "h" / "trials.tsv").read_text().splitlines()) == 1 + 5


def tuning_project_config(tiny_inputs) -> dict:
    config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
    config["variants"] = {"a": {"train": "head"}, "b": {"train": "head", "weight_decay": 0.001},
                          "c": {"train": "all"}}
    config["report"]["gallery_variant"] = "a"
    config["tuning"].update(enabled=True, variants=["a", "b"], space={"lr": [0.01, 0.1], "weight_decay": [0.0]},
                            settings={"schedule": "cosine"}, epochs=2, min_epochs=1, eta=2, overrides={})
    return config


def test_no_tuning_job_reads_the_test_set(tiny_inputs, tmp_path):
    workdir = make_project(tmp_path / "p", tuning_project_config(tiny_inputs))
    proc = snakemake(workdir, "-n", "--cores", "2")
    jobs = {name: [p.strip() for p in f["input"].split(",")] if "input" in f else []
            for name, f in job_fields(proc.stdout + proc.stderr).items()}
    tuning_jobs = {name: inputs for name, inputs in jobs.items() if name.startswith(("tuning_", "plot_tuning"))}
    assert len(tuning_jobs) == 2 * (2 + 1 + 1) + 1  # a and b: 2 trials, 1 promoted, 1 choice; the summary
    for name, inputs in tuning_jobs.items():
        assert inputs and not any(re.search(r"(^|/)test\.npz$", path) for path in inputs), (name, inputs)
    # the trials read the training features and the validation split; the tuned twins train with the choice
    assert "results/data/cifar10/validation_40.npz" in jobs["tuning_trial[variant=a,rung=0,slot=1]"]
    assert "results/tuning/b/choice.json" in jobs["train_variant[variant=b-tuned,seed=0]"]
    assert not any("choice.json" in p for p in jobs["train_variant[variant=b,seed=0]"])
    assert "evaluate_variant[variant=c-tuned,seed=0]" not in jobs  # c is not tuned
    # and the test set is read, as before, by evaluation
    assert any(p.endswith("test.npz") for p in jobs["evaluate_variant[variant=a-tuned,seed=0]"])


@pytest.mark.slow
def test_changing_one_variants_space_retrains_only_that_variant(tiny_inputs, tmp_path):
    """A changed space for `a` plans a's search and twin and what reads them, nothing of `b` or the fixed
    variants. Once the search has run, a twin whose choice is the same is not retrained (choice.json holds only
    the choice); one whose choice changed is."""
    workdir = make_project(tmp_path / "p", tuning_project_config(tiny_inputs))
    targets = [f"results/metrics/{v}/seed0.json" for v in ("a", "b", "a-tuned", "b-tuned")]
    snakemake(workdir, "--cores", "2", *targets)
    summary = json.loads((workdir / "results/tuning/a/search.json").read_text())
    assert summary["trials"] == 3 and summary["config"]["lr"] in (0.01, 0.1)
    assert not list(workdir.glob("results/tuning/a/rung*/trial*.resume.pt"))  # removed once each trial ended
    assert planned_jobs(workdir, *targets) == set()
    search_a = {job("tuning_trial", variant="a", rung=0, slot=0), job("tuning_trial", variant="a", rung=0, slot=1),
                job("tuning_trial", variant="a", rung=1, slot=0), job("tuning_choice", variant="a")}
    twin_a = {job("train_variant", variant="a-tuned", seed=0), job("evaluate_variant", variant="a-tuned", seed=0)}
    chosen = summary["config"]["lr"]
    other = 0.01 if chosen == 0.1 else 0.1

    def space_of_a(lrs):
        return lambda config: config["tuning"].update(overrides={"a": {"space": {"lr": lrs}}})

    with edited_config(workdir, space_of_a([0.1, 0.01])):  # the shipped [0.01, 0.1] reversed
        assert planned_jobs(workdir, *targets) == search_a | twin_a
        snakemake(workdir, "--cores", "2", "results/tuning/a/choice.json")
        assert json.loads((workdir / "results/tuning/a/choice.json").read_text())["config"]["lr"] == chosen
        assert planned_jobs(workdir, *targets) == set()  # the same choice: the twin stays

    with edited_config(workdir, space_of_a([other, 0.003])):  # the chosen value removed
        snakemake(workdir, "--cores", "2", "results/tuning/a/choice.json")
        assert json.loads((workdir / "results/tuning/a/choice.json").read_text())["config"]["lr"] != chosen
        assert planned_jobs(workdir, *targets) == twin_a  # a new choice: its twin retrains, nothing else


@pytest.mark.parametrize("names, tuned", [(("smoke",), True), (("replica-2019",), False), (("tuning-cpu",), True)])
def test_shipped_overlays_keep_or_drop_the_tuning(names, tuned):
    assert overlaid(*names)["tuning"]["enabled"] is tuned


def test_cpu_overlay_budget():
    plans = specs.make_plan(overlaid("tuning-cpu")).searches
    assert {len(p["configs"]) for p in plans.values()} == {6}
    for name in ("head", "head_l2", "head_fc256_l2", "all", "all_augment"):
        epochs = tuning.trial_epochs(plans[name]["rungs"])
        assert (epochs, plans[name]["epochs"]) == (39, 15) and epochs <= 6 * 15 * 0.45, name
    assert plans["all_augment"]["settings"][0]["bf16"]


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["config"].update(lr=float("nan")), "field config"),
    (lambda c: c["config"].update(lr=-1), "field config"),
    (lambda c: c["config"].update(batch_size=0), "field config"),
    (lambda c: c["config"].update(train="all"), "field config"),
    (lambda c: c.pop("config"), "not a choice file"),
    (lambda c: c.update(epochs=3), "chosen for 3 epochs"),
])
def test_a_hand_edited_choice_is_refused_naming_the_file(tmp_path, edit, message):
    """choice.json is read back by the twin's training: it must be one of the configurations its search tried."""
    searched = [{"lr": 0.01, "weight_decay": 0.0}, {"lr": 0.1, "weight_decay": 0.0}]
    settings = {"lr": 0.001, "weight_decay": 0.0, "epochs": 15, "batch_size": 128, "train": "head"}
    path = tmp_path / "choice.json"
    choice = {"variant": "head", "twin": "head-tuned", "config": dict(searched[1]), "epochs": 15}
    path.write_text(json.dumps(choice))
    assert apply_choice(settings, path, searched) == {**settings, "lr": 0.1}
    edit(choice)
    path.write_text(json.dumps(choice))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + re.escape(message)):
        apply_choice(settings, path, searched)
