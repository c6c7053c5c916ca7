"""What the plan does with user text: a title or a URL with braces is data, never a Snakemake wildcard; a
variant name fits in a file name."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO, make_project, smoke_config, snakemake

from cmpt726 import specs
from cmpt726.config import ConfigError


def test_braces_in_the_title_and_urls_are_text(tiny_inputs, tmp_path):
    config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
    config["report"]["title"] = "draft {draft} of {variant}"
    config["data"]["cifar10h"]["root"] = str(tmp_path / "no-cifar10h")  # so that its download rule is planned
    config["data"]["cifar10h"]["url"] = "https://example.invalid/{counts}.npy"
    workdir = make_project(tmp_path / "project", config)
    proc = snakemake(workdir, "-n", "--cores", "1", "report/report.html", "report/gallery.html", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "WildcardError" not in out, out[-3000:]
    assert "report_html" in out and "download_cifar10h" in out


def test_a_variant_name_too_long_for_a_file_name_is_refused():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["variants"]["v" * 64] = {"train": "head"}
    specs.load(config)  # 64 characters, 70 with "-tuned": a file name takes 255
    config["variants"]["w" * 65] = {"train": "head"}
    with pytest.raises(ConfigError, match=r"config key variants: 'w{65}' is too long"):
        specs.load(config)


@pytest.mark.parametrize("edit, key", [
    (lambda c: c["training"].update(epochs=10.0), "training.epochs"),
    (lambda c: c.update(seeds=[0.0]), "seeds.0"),
    (lambda c: c.setdefault("theory", {}).update(q5={"max_iter": 10.0}), "theory.q5.max_iter"),
])
def test_an_integral_float_at_an_integer_key_is_refused(edit, key):
    """JSON Schema's own checker takes 10.0 as an integer; the jobs would then make paths like seed0.0."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    edit(config)
    with pytest.raises(ConfigError, match=rf"config key {key}: (10|0)\.0 is not of type 'integer'"):
        specs.load(config)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["training"].update(weight_decay=10**400),
     r"training.weight_decay: 100000000000… \(401 digits\) is beyond the float32 range"),
    (lambda c: c["training"].update(normalize={"mean": [1e39, 0.5, 0.5], "std": [0.2] * 3}),
     r"training.normalize.mean.0: 1e\+39 is beyond the float32 range"),
    (lambda c: c["report"].update(smallest_effect=10**400), r"report.smallest_effect: .* is beyond the float32 range"),
    (lambda c: c["training"].update(validation=49999),
     r"training.validation: 49999 validation images leave 1 of the 50000 training images"),
    (lambda c: c["training"].update(validation=49990),
     r"training.validation: 49990 .* leave 10 of the 50000 training images, fewer than a batch \(32\)"),
    (lambda c: c["tuning"].update(space={"batch_size": [1, 128, 256]}),
     r"tuning.space.batch_size: a head with batchnorm needs batches of at least 2"),
])
def test_numbers_the_runs_could_not_use_are_refused_naming_the_key(edit, message):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    edit(config)
    with pytest.raises(ConfigError, match=message):
        specs.load(config)
