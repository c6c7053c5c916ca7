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
