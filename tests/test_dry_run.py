"""What the plan does with user text: a title or a URL with braces is data, never a Snakemake wildcard; a
variant name fits in a file name. What a dry run says: the real run's pre-flight, as warnings, and its estimate."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, closed_port_url, make_project, shipped, smoke_config, snakemake

from cmpt726 import device, specs
from cmpt726.config import ConfigError
from cmpt726.preflight.estimate import ENV


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


@pytest.mark.parametrize("edit, message", [
    # JSON Schema's own checker takes 10.0 as an integer; the jobs would then make paths like seed0.0
    (lambda c: c["training"].update(epochs=10.0), r"config key training.epochs: 10\.0 is not of type 'integer'"),
    (lambda c: c.update(seeds=[0.0]), r"config key seeds.0: 0\.0 is not of type 'integer'"),
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


def test_a_dry_run_warns_of_what_the_real_run_would_refuse(tiny_inputs, tmp_path):
    """Offline: each download the plan needs is named, and the estimate counts the jobs; the dry run still plans."""
    config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
    urls = {key: closed_port_url(key) for key in ("cifar10", "cifar10h", "backbone")}
    config["data"]["cifar10"] = {"root": str(tmp_path / "no-cifar10"), "url": urls["cifar10"]}
    config["data"]["cifar10h"] = {"enabled": True, "root": str(tmp_path / "no-cifar10h"), "url": urls["cifar10h"]}
    config["backbone"] = {"source": "download", "url": urls["backbone"]}
    workdir = make_project(tmp_path / "project", config)
    proc = snakemake(workdir, "-n", "--cores", "2", check=False, env={ENV: "0.01"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    warned = [line for line in proc.stderr.splitlines() if line.startswith("WARNING: pre-flight:")]
    assert len(warned) == 3, proc.stderr[-3000:]
    for what, url in (("CIFAR-10", urls["cifar10"]), ("CIFAR-10H votes", urls["cifar10h"]),
                      ("the pretrained backbone", urls["backbone"])):
        assert any(f"{what} must be downloaded from {url}, which cannot be reached" in w for w in warned), what
    # smoke_config: two variants (all, head), one seed, one epoch, tuning off
    assert ("pre-flight estimate: 2 trainings (1 on images: 1 epoch; 1 head on cached features: 1 epoch), "
            "2 feature caches, 2 evaluations") in proc.stderr
    assert "Step times here (CMPT726_STEP_SECONDS=0.01, 2 threads a job)" in proc.stderr


def test_a_dry_run_asking_for_cuda_without_a_gpu_warns(tiny_inputs, tmp_path):
    if device.nvidia_driver()[0]:
        pytest.skip("this machine has an NVIDIA GPU: device=cuda is no problem here")
    workdir = make_project(tmp_path / "project", smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth"))
    proc = snakemake(workdir, "-n", "--cores", "2", "--config", "device=cuda", check=False, env={ENV: ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    [warning] = [line for line in proc.stderr.splitlines() if line.startswith("WARNING: pre-flight")]
    assert warning.startswith("WARNING: pre-flight: config key device: cuda, but this machine shows no NVIDIA GPU")
    assert "not measured: the jobs ask for a GPU and there is none here" in proc.stderr


def test_the_laptop_overlay_plans_without_a_warning(tiny_inputs, tmp_path):
    """`snakemake -n --configfile configs/laptop.yaml` over the shipped config (its data here: nothing to download)."""
    config = shipped()
    config["data"]["cifar10"] = {"root": str(tiny_inputs / "cifar10"), "verify": False}
    config["data"]["cifar10h"] = {"enabled": True, "root": str(tiny_inputs / "cifar10h"), "verify": False}
    config["backbone"] = {"source": "path", "path": str(tiny_inputs / "backbone.pth")}
    workdir = make_project(tmp_path / "project", config)
    env = {ENV: "0.01"}
    if not shutil.which("wkhtmltopdf"):  # what the PDFs need is this machine's business, not the overlay's
        (tmp_path / "bin").mkdir()
        (tmp_path / "bin" / "wkhtmltopdf").write_text("#!/bin/sh\n")
        (tmp_path / "bin" / "wkhtmltopdf").chmod(0o755)
        env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"
    proc = snakemake(workdir, "-n", "--configfile", str(REPO / "configs" / "laptop.yaml"), check=False, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "WARNING" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    assert "pre-flight estimate: 54 trainings (18 on images: 180 epochs; 36 heads on cached features: 369 epochs), " \
           "63 tuning trials (63 heads on cached features: 201 epochs)" in proc.stderr
    assert "1 thread a job" in proc.stderr


def test_a_dry_run_elsewhere_reads_the_config_paths_from_its_directory(tiny_inputs, tmp_path):
    """`-n --directory DIR` (the offline trial's form): the checks and the estimate run as Snakemake exits, after it
    has left DIR, yet the config's relative paths still mean DIR's files: the 300 images there make a small plan,
    not one of 60,000."""
    config = smoke_config(Path("data/cifar10"), tiny_inputs / "backbone.pth")
    config["data"]["cifar10h"]["enabled"] = False
    project = make_project(tmp_path / "project", config)
    shutil.copytree(tiny_inputs / "cifar10", project / "data" / "cifar10")
    proc = snakemake(tmp_path, "-n", "--cores", "2", "--directory", "project", check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "a small plan (" in proc.stderr, proc.stderr[-3000:]
    assert "WARNING: pre-flight" not in proc.stderr, proc.stderr[-3000:]


def test_a_dry_run_for_a_cluster_estimates_no_local_wall_time(tiny_inputs, tmp_path):
    """`-n --executor slurm`: the jobs would run on the cluster's nodes, so neither this machine's step times nor its
    missing GPU say anything about them."""
    config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
    config["device"] = "cuda"
    workdir = make_project(tmp_path / "project", config)
    env = {ENV: "0.01"}
    local = snakemake(workdir, "-n", "--cores", "2", check=False, env=env)
    assert "≈ " in local.stderr and "not estimated here" not in local.stderr, local.stderr[-3000:]
    cluster = snakemake(workdir, "-n", "--executor", "slurm", "--jobs", "4", check=False, env=env)
    assert cluster.returncode == 0, cluster.stderr[-3000:]
    assert "depends on the cluster's nodes and queue: not estimated here" in cluster.stderr, cluster.stderr[-3000:]
    assert "CUDA" not in cluster.stderr.split("pre-flight estimate")[0], cluster.stderr[-3000:]
