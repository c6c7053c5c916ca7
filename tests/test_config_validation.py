"""Bad configs are rejected while Snakemake reads the Snakefile, before any job, naming the key."""

import ast
import copy
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import REPO, make_project, read_yaml, shipped, smoke_config
from workflow_helpers import job_fields, leftovers, parse_jobs, snakemake

from cmpt726 import cifar
from cmpt726.config import (SCHEMA_PATH, ConfigError, _merge, _schema, fill_and_check, resolve_variant,
                            shipped_config, typed, unknown_name_warnings, validate_config)


def _set(path: str, value):
    """An edit that sets config[a][b]... = value for path 'a.b...' (creating dicts on the way)."""
    def edit(config):
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return edit


# (id, edit, text the error must contain: the key path)
BAD_CONFIGS = [
    # wrong types; zero or negative sizes (defaults and variant overrides); an unknown train mode
    ("lr-string", _set("training.lr", "fast"), "training.lr"),
    ("verify-string", _set("data.cifar10.verify", "yes"), "data.cifar10.verify"),
    ("seeds-not-list", _set("seeds", 0), "seeds"),
    ("epochs-zero", _set("training.epochs", 0), "training.epochs"),
    ("variant-lr-negative", _set("variants.head.lr", -0.01), "variants.head.lr"),
    ("variant-batch-size-zero", _set("variants.all.batch_size", 0), "variants.all.batch_size"),
    ("train-mode-unknown", _set("variants.head.train", "frozen"), "variants.head.train"),
    # unknown keys at every level; duplicate seeds; cross-key checks; Q5's data file in the same pass
    ("unknown-top-level", _set("epochs", 3), "epochs"),
    ("unknown-data-key", _set("data.cifar10.rooot", "x"), "data.cifar10.rooot"),
    ("unknown-head-key", _set("training.head.widths", [64]), "training.head.widths"),
    ("unknown-variant-key", _set("variants.all.lr_rate", 0.1), "variants.all.lr_rate"),
    ("unknown-variant-head-key", _set("variants.all.head", {"dropuot": 0.1}), "variants.all.head.dropuot"),
    ("duplicate-seeds", _set("seeds", [0, 1, 0]), "seeds"),
    ("gallery-variant-unknown", _set("report.gallery_variant", "nope"), "report.gallery_variant"),
    ("theory-data-empty", _set("theory.q5.data", ""), "theory.q5.data: '' should be non-empty"),
    # the numeric policy: finite numbers (YAML .nan / .inf), seeds in [0, 2**63), sizes the later rules need
    ("lr-nan", _set("training.lr", float("nan")), "training.lr: nan is not a finite number"),
    ("weight-decay-inf", _set("variants.head.weight_decay", float("inf")), "variants.head.weight_decay: inf is not"),
    ("normalize-nan", _set("training.normalize.mean", [0.5, float("nan"), 0.5]), "training.normalize.mean.1: nan"),
    ("alpha-nan", _set("report.alpha", float("nan")), "report.alpha: nan is not a finite number"),
    ("seed-2-64", _set("seeds", [0, 2**64]), "seeds.1: seed 18446744073709551616 must lie in 0 <= seed < 2**63"),
    ("split-seed-2-63", _set("data.split_seed", 2**63), "data.split_seed: seed"),
    ("subset-test-1", _set("data.subset.test", 1), "data.subset.test: 1 images cannot hold the 10 classes"),
    ("validation-leaves-too-few", _set("data.subset.train", 45), "training.validation: 40 validation images leave"),
    ("batchnorm-batch-of-one", _set("variants.all", {"head": {"hidden": [8], "batchnorm": True}, "batch_size": 1}),
     "variants.all.batch_size: a head with batchnorm needs batches of at least 2"),
    # names full-match (`$` alone matches before a final newline); removed keys say what replaced them
    ("variant-name-newline", _set("variants.all\n", {"train": "all"}), "variants: 'all\\n' does not match"),
    ("optimizer-removed", _set("training.optimizer", "sgd"), "training.optimizer was removed: the optimiser is always"),
    ("variant-optimizer-removed", _set("variants.all.optimizer", "sgd"), "variants.all.optimizer was removed"),
]


@pytest.fixture(scope="module")
def rejections(tiny_inputs, tmp_path_factory):
    """Every bad config run at once (a few Snakemake processes in parallel): case id -> (process, workdir)."""
    root = tmp_path_factory.mktemp("bad-configs")

    def attempt(case):
        name, edit, _ = case
        config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
        edit(config)
        workdir = make_project(root / name, config)
        return name, (snakemake(workdir, "--cores", "1", check=False, timeout=300), workdir)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(attempt, BAD_CONFIGS))


@pytest.mark.parametrize("case, key", [pytest.param(i, k, id=i) for i, _, k in BAD_CONFIGS])
def test_bad_config_is_rejected_before_any_job(rejections, case, key):
    proc, workdir = rejections[case]
    assert proc.returncode != 0, proc.stderr[-2000:]
    assert f"config key {key}" in proc.stderr, proc.stderr[-2000:]
    assert "Building DAG" not in proc.stderr and "rule " not in proc.stderr, "jobs were planned"
    assert leftovers(workdir / "results") == []


@pytest.mark.slow
def test_subset_larger_than_the_data_fails_in_prepare_without_output(tiny_inputs, tmp_path):
    """Only reading the data tells how many images there are: the prepare job refuses, naming the key."""
    config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
    config["data"]["subset"] = {"train": 100, "test": 10_000}  # the tiny test split has 100 images
    workdir = make_project(tmp_path / "project", config)
    proc = snakemake(workdir, "--cores", "1", "results/data/cifar10/summary.json", check=False, timeout=300)
    assert proc.returncode != 0
    assert "config key data.subset.test: 10000 is more than the 100 images available" in proc.stderr
    # train.npz was written before the test split was read: the failed job's outputs are removed.
    assert [p for p in leftovers(workdir / "results") if not p.startswith(("logs/", "benchmarks/"))] == []


# --------------------------------------------------------------------------- one pass, in process
def _leaf_paths(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            yield from _leaf_paths(value, path)
        else:
            yield path, value


def test_config_yaml_repeats_defaults_only_with_their_values():
    """Each default lives in the schema: where config.yaml shows a key for the reader, it shows the default."""
    filled = {"data": {"cifar10": {"root": "data/cifar10"}}, "backbone": {"source": "download"}, "training": {},
              "variants": {"v": {}}, "seeds": [0, 1, 2]}
    fill_and_check(filled)
    defaults = dict(_leaf_paths(filled))
    # The experiment's own choices: its variants, the 2019 script's accuracies, the tuning plan.
    shown = [(path, value) for path, value in _leaf_paths(shipped(raw=True))
             if not path.startswith(("variants.", "reference_accuracy.", "tuning."))]
    assert shown, "config.yaml shows no key?"
    differ = {path: (value, defaults.get(path, "<no default>")) for path, value in shown if defaults.get(path) != value}
    assert differ == {}, differ


def test_variant_keys_are_the_training_keys_without_defaults():
    schema, _ = _schema(str(SCHEMA_PATH))
    training = schema["properties"]["training"]["properties"]
    variant = schema["properties"]["variants"]["additionalProperties"]["properties"]
    assert set(variant) == set(training) | {"seeds"}
    assert "default" not in str({k: v for k, v in variant.items() if k != "seeds"})
    config = shipped()
    config["variants"] = {"v": {"head": {"dropout": 0.5}}}
    validate_config(config)
    assert config["variants"]["v"] == {"head": {"dropout": 0.5}}  # nothing filled into a variant


def test_one_pass_fills_every_default_theory_included():
    config = shipped()
    config["theory"] = {}
    del config["report"]
    validate_config(config)
    assert config["theory"] == {"q5": {"data": None}}
    assert config["report"]["gallery_variant"] is None and config["data"]["subset"] == {"train": None, "test": None}
    assert config["backbone"]["pretrain"]["onecycle"]["warmup"] == 0.3  # nested defaults
    again = copy.deepcopy(config)
    validate_config(again)
    assert again == config


def test_every_bad_key_is_named_in_one_message():
    config = shipped()
    config["training"]["lr"] = "fast"
    config["variants"]["all"]["lr_rate"] = 0.1
    config["theory"] = {"q5": {"max_iter": 0}}  # a question's setting: the assignment's, no longer a key
    config["training"]["optimizer"] = "sgd"
    config["variants"]["head"]["optimizer"] = "adam"
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    lines = str(info.value).splitlines()[1:]
    assert [line.strip() for line in lines] == [
        "config key theory.q5.max_iter was removed: the theory questions' settings are the assignment's, fixed in "
        "their modules (cmpt726.theory)",
        "config key training.optimizer was removed: the optimiser is always SGD "
        "(set training.lr, momentum, weight_decay)",
        "config key training.lr: 'fast' is not of type 'number'",
        "unknown config key variants.all.lr_rate; did you mean variants.all.lr?",
        "config key variants.head.optimizer was removed: the optimiser is always SGD "
        "(set training.lr, momentum, weight_decay)",
    ]


def test_the_numeric_policy_names_the_key_in_process():
    for edit, message in [(_set("analysis", {"near_duplicates": {"mad_k": float("inf")}}),
                           r"config key analysis.near_duplicates.mad_k: inf is not a finite number"),
                          (_set("backbone.pretrain.seed", -1),  # the schema's minimum, before the policy
                           r"backbone.pretrain.seed: -1 is less than the minimum")]:
        config = shipped()
        edit(config)
        with pytest.raises(ConfigError, match=message):
            validate_config(config)
    config = shipped()
    config["variants"]["head"]["seeds"] = [2**63 - 1]  # the largest seed torch and numpy take
    validate_config(config)


def test_defaults_are_copies():
    first, second = shipped(), shipped()
    for config in (first, second):
        del config["theory"]
        validate_config(config)
    first["theory"]["q5"]["data"] = "data.txt"
    assert second["theory"] == {"q5": {"data": None}}


def test_a_partial_variant_head_keeps_the_training_head():
    """Defaults are not filled into a variant's head: it overrides the training head key by key."""
    config = shipped()
    config["training"]["head"] = {"hidden": [128], "batchnorm": True}
    config["variants"] = {"drop": {"head": {"dropout": 0.2}}}
    config["report"]["gallery_variant"] = None
    validate_config(config)
    assert config["variants"]["drop"] == {"head": {"dropout": 0.2}}
    assert resolve_variant(config, "drop")["head"] == {"hidden": [128], "batchnorm": True, "dropout": 0.2}


# --------------------------------------------------------------------------- typed --config values

@pytest.mark.parametrize("given, expected", [
    ({"seeds": ["0", "1"]}, {"seeds": [0, 1]}),
    ({"training": {"epochs": "1", "lr": "1e-3", "momentum": "0", "head": {"hidden": ["256"], "batchnorm": "true"}}},
     {"training": {"epochs": 1, "lr": 0.001, "momentum": 0, "head": {"hidden": [256], "batchnorm": True}}}),
    ({"data": {"cifar10": {"verify": "false", "root": "123"}, "subset": {"train": "100", "test": "null"}}},
     {"data": {"cifar10": {"verify": False, "root": "123"}, "subset": {"train": 100, "test": None}}}),
    # a string where a string is accepted stays one, except YAML's null where null is accepted too
    ({"device": "cpu", "report": {"title": "42", "gallery_variant": "null"}, "backbone": {"path": "~"}},
     {"device": "cpu", "report": {"title": "42", "gallery_variant": None}, "backbone": {"path": None}}),
    # variants and reference_accuracy: the additionalProperties schema
    ({"variants": {"quick": {"epochs": "2", "head": {"dropout": "0.5"}}}, "reference_accuracy": {"quick": "61.5"}},
     {"variants": {"quick": {"epochs": 2, "head": {"dropout": 0.5}}}, "reference_accuracy": {"quick": 61.5}}),
    ({"theory": {"q5": {"data": "null"}}}, {"theory": {"q5": {"data": None}}}),
    # typed already (top-level values Snakemake parsed itself), or not convertible: left as they are
    ({"threads_per_job": 2, "seeds": ["x", "1.5", "nan"], "training": {"lr": "fast", "epochs": "1.0"}},
     {"threads_per_job": 2, "seeds": ["x", "1.5", "nan"], "training": {"lr": "fast", "epochs": "1.0"}}),
    ({"training": {"lr": "inf", "bf16": "maybe"}, "variants": {"v": {"lr_rate": "1"}}, "nope": {"a": "1"}},
     {"training": {"lr": "inf", "bf16": "maybe"}, "variants": {"v": {"lr_rate": "1"}}, "nope": {"a": "1"}}),
])
def test_typed_converts_strings_to_the_schema_types(given, expected):
    result = typed(given)
    assert result == expected
    assert [type(v) for v in _leaves(result)] == [type(v) for v in _leaves(expected)]


def _leaves(value):
    if isinstance(value, dict):
        return [leaf for key in sorted(value) for leaf in _leaves(value[key])]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def test_typed_command_line_merges_over_the_config_files():
    """As Snakemake merges --config: dicts key by key; the rest of `training` keeps config.yaml's values."""
    config = shipped()
    command_line = {"training": {"epochs": "1"}, "seeds": ["0", "1"], "data": {"cifar10": {"verify": "false"}}}
    config["training"]["epochs"], config["seeds"] = "1", ["0", "1"]  # what Snakemake hands over
    config["data"]["cifar10"]["verify"] = "false"
    validate_config(config, command_line=command_line)
    expected = shipped()
    expected["training"]["epochs"], expected["seeds"] = 1, [0, 1]
    expected["data"]["cifar10"]["verify"] = False
    assert config["training"] == expected["training"]
    assert config["data"]["cifar10"] == expected["data"]["cifar10"] and config["seeds"] == [0, 1]


def test_a_string_from_the_config_file_is_not_converted():
    config = shipped()
    config["data"]["cifar10"]["verify"] = "false"
    with pytest.raises(ConfigError, match="config key data.cifar10.verify: 'false' is not of type 'boolean'"):
        validate_config(config)


# --------------------------------------------------------------------------- typed --config, real runs

@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A project whose jobs Snakemake has on record (--touch): a dry run with other params prints the job's
    params before and now, i.e. the effective config values."""
    root = tmp_path_factory.mktemp("typed-config")
    (root / "cifar10" / "cifar-10-batches-py").mkdir(parents=True)
    for name in cifar.files(cifar.CIFAR10):  # the rule's inputs, never read: dry runs and --touch
        (root / "cifar10" / "cifar-10-batches-py" / name).write_bytes(b"")
    (root / "backbone.pth").write_bytes(b"never read")
    config = smoke_config(root / "cifar10", root / "backbone.pth")
    config["data"]["cifar10"]["verify"] = True
    config["training"].update(epochs=2, lr=0.02)  # not the schema defaults (10, 0.001)
    config["variants"] = {"head": {"train": "head"}}
    config["report"]["gallery_variant"] = "head"
    workdir = make_project(root / "project", config)
    outputs = ["results/backbone/path.pt", "results/data/cifar10/train.npz", "results/data/cifar10/test.npz",
               "results/data/cifar10/summary.json", "results/models/head/seed0.pt",
               "results/metrics/head/seed0.epochs.tsv"]
    proc = snakemake(workdir, "-n", "--forceall", outputs[-1])
    outputs[4:4] = re.findall(r"results/features/\w+/(?:train|test)\.npz", proc.stdout)[:2]
    for path in outputs:
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).write_bytes(b"")
    snakemake(workdir, "--touch", "--forceall", "--cores", "1", outputs[-1])
    return workdir


def params_now(reason: str):
    """The params of a job as Snakemake prints them in 'Params have changed ... before: X now: Y'."""
    return ast.literal_eval(reason.split(" now: ", 1)[1].strip())


def test_command_line_seeds_list_is_typed(recorded):
    proc = snakemake(recorded, "-n", "--config", "seeds=[0,1]")
    jobs = parse_jobs(proc.stdout + proc.stderr)
    assert {"train_variant[variant=head,seed=0]", "train_variant[variant=head,seed=1]",
            "evaluate_variant[variant=head,seed=1]"} <= jobs, sorted(jobs)


def test_command_line_training_dict_is_typed_and_merged(recorded):
    """Only `epochs` changes: lr and the rest keep config.yaml's values (Snakemake merges key by key)."""
    target = "results/metrics/head/seed0.epochs.tsv"
    proc = snakemake(recorded, "-n", target, "--config", 'training={"epochs": 1}')
    reason = job_fields(proc.stdout + proc.stderr)["train_variant[variant=head,seed=0]"]["reason"]
    assert "Params have changed" in reason, reason
    before, now = ast.literal_eval(reason.split(" before: ", 1)[1].split(" now: ")[0]), params_now(reason)
    settings = now["settings"]  # the job's spec: its settings, seed, device
    assert settings["epochs"] == 1 and settings["lr"] == 0.02 and settings["batch_size"] == 32, now
    assert {**before, "settings": {**before["settings"], "epochs": 1}} == now
    # The same value as config.yaml's: nothing to do, so every setting is what it was.
    proc = snakemake(recorded, "-n", target, "--config", 'training={"epochs": 2}')
    assert parse_jobs(proc.stdout + proc.stderr) == set(), proc.stdout[-2000:]


def test_command_line_nested_boolean_is_typed_and_merged(recorded):
    """data.cifar10.verify becomes False; data.cifar10.root keeps its value (else no plan: it is required)."""
    target = "results/data/cifar10/summary.json"
    proc = snakemake(recorded, "-n", target, "--config", 'data={"cifar10": {"verify": false}}')
    reason = job_fields(proc.stdout + proc.stderr)["prepare_cifar10"]["reason"]
    assert "Params have changed" in reason and params_now(reason) is False, reason
    proc = snakemake(recorded, "-n", target, "--config", 'data={"cifar10": {"verify": true}}')
    assert parse_jobs(proc.stdout + proc.stderr) == set(), proc.stdout[-2000:]


def test_command_line_value_that_does_not_convert_is_refused_naming_its_key(recorded):
    proc = snakemake(recorded, "-n", "--config", "seeds=[0,x]", 'training={"epochs": "many"}', check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key seeds.1: 'x' is not of type 'integer'" in log
    assert "config key training.epochs: 'many' is not of type 'integer'" in log
    assert "Building DAG" not in log and parse_jobs(log) == set()


def test_the_old_names_of_the_2019_setting_point_to_the_new():
    """seed_quirks is now replicate_2019_bugs, in configs/replica-2019.yaml: the old overlay (a stub) is refused
    with both new names."""
    config = shipped()
    config["training"].update(read_yaml("configs/seed-replica.yaml")["training"])
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    assert "training.replicate_2019_bugs" in str(error.value) and "configs/replica-2019.yaml" in str(error.value)
    replica = shipped()
    _merge(replica, read_yaml("configs/replica-2019.yaml"))  # as --configfile merges it
    validate_config(replica)
    assert replica["training"]["replicate_2019_bugs"] is True


def test_a_misspelt_variant_or_question_is_warned_with_the_closest_name():
    def validated(config):
        validate_config(config)
        return config

    original = shipped_config(REPO / "config.yaml")
    assert unknown_name_warnings(validated(shipped(raw=True)), original) == []
    config = shipped(raw=True)
    config["variants"]["head_12"] = {"weight_decay": 0.01}  # meant head_l2
    config["variants"]["wide"] = {"head": {"hidden": [512]}}  # a new variant, nothing close
    config["report"]["comparisons"].append({"a": "al", "b": "head", "asks": "?"})
    assert unknown_name_warnings(validated(config), original) == [
        "variant head_12 is not in the shipped config.yaml (did you mean head_l2?): it is planned as a new variant",
        "variant wide is not in the shipped config.yaml: it is planned as a new variant",
        "config key report.comparisons.9.a: 'al' is not one of this run's variants (did you mean all?): the question "
        "is skipped"]
