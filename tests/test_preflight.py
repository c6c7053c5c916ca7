"""Pre-flight: every missing input in one message before any job, with its fix; config errors say "did you mean",
without traceback lines."""

from __future__ import annotations

import re

import pytest
from conftest import closed_port_url, make_project, read_yaml, smoke_config, snakemake

from cmpt726 import data, device, preflight
from cmpt726.preflight import estimate
from cmpt726.preflight.estimate import ENV
from cmpt726.config import ConfigError, validate_config


def default_config(**overrides) -> dict:
    config = {**read_yaml("config.yaml"), **overrides}
    validate_config(config)
    return config


def test_cuda_refused_without_a_driver_with_the_fix():
    [problem] = preflight.device_problems("cuda", local=True, driver=(False, None))
    assert "config key device" in problem and "device=auto" in problem and "device=cpu" in problem
    [old] = preflight.device_problems("cuda", local=True, driver=(True, 470))
    assert "470" in old and ">= 580" in old
    assert preflight.device_problems("cuda", local=True, driver=(True, 590)) == []
    assert preflight.device_problems("cuda", local=False, driver=(False, None)) == []  # a cluster's nodes decide
    assert preflight.device_problems("auto", local=True, driver=(False, None)) == []


def test_every_unreachable_download_listed_with_url_and_config_key():
    config = default_config()
    rules = {"download_cifar10", "download_cifar10h", "fetch_backbone", "train_variant"}
    problems = preflight.run_problems(config, rules, {"train_variant"}, local=True, reach=lambda url: "refused",
                                      driver=(False, None))
    text = "\n".join(problems)
    assert len(problems) == 3, text
    assert config["data"]["cifar10"]["url"] in text and "data.cifar10.root" in text
    assert config["data"]["cifar10h"]["url"] in text and "data.cifar10h.enabled" in text
    assert config["backbone"]["url"] in text and "backbone.source" in text


def test_a_real_unreachable_server_is_found():
    assert preflight.unreachable(closed_port_url(), timeout=2) is not None


def test_wkhtmltopdf_needed_only_for_pdfs(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without wkhtmltopdf
    config = default_config()
    [problem] = preflight.run_problems(config, {"report_pdf", "report_html"}, reach=lambda url: None)
    assert "wkhtmltopdf" in problem and "report_pdf" in problem and "report/report.html" in problem
    assert preflight.run_problems(config, {"report_html", "gallery_html"}, reach=lambda url: None) == []


def test_named_files_that_do_not_exist_only_for_the_rules_that_read_them(tmp_path):
    config = default_config(backbone={"source": "path", "path": str(tmp_path / "none.pth")})
    [problem] = preflight.missing_files(config)
    assert "backbone.path" in problem and "none.pth" in problem
    assert preflight.run_problems(config, {"import_backbone"}, reach=lambda url: None) == [problem]
    assert preflight.run_problems(config, {"prepare_cifar10"}, reach=lambda url: None) == []
    assert preflight.present(tmp_path / "none.pth") == [] and preflight.present(tmp_path) == [tmp_path]


@pytest.mark.parametrize("override, answer", [
    ({"seed": [0]}, "unknown config key seed; did you mean seeds?"),
    ({"training": {"epoch": 3}}, "unknown config key training.epoch; did you mean training.epochs?"),
    ({"report": {"Title": "x"}}, "unknown config key report.Title; did you mean report.title?"),
])
def test_misspelt_keys_get_the_right_one(override, answer):
    config = read_yaml("config.yaml")
    for key, value in override.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and key in config else value
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    assert answer in str(error.value)


def test_workflow_lists_everything_at_once_before_any_job(tiny_inputs, tmp_path):
    """A real run asking for CUDA on a CPU machine, CIFAR-10H from a closed port and a missing backbone file:
    one message names all three with their keys; no job ran."""
    if device.nvidia_driver()[0]:
        pytest.skip("this machine has an NVIDIA GPU: device=cuda is no problem here")
    config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
    config["device"] = "cuda"
    config["data"]["cifar10h"] = {"enabled": True, "root": str(tmp_path / "no-cifar10h"), "url": closed_port_url()}
    config["backbone"] = {"source": "path", "path": str(tmp_path / "no-such-backbone.pth")}
    workdir = make_project(tmp_path / "project", config)
    proc = snakemake(workdir, "--cores", "1", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "3 missing input(s)" in out, out[-3000:]
    assert "config key device: cuda" in out and "data.cifar10h.enabled" in out and "config key backbone.path" in out
    assert "Traceback" not in out and 'File "' not in out
    assert not (workdir / "results").exists() or not any((workdir / "results").rglob("*.npz"))


def test_config_error_has_no_traceback_lines(tiny_inputs, tmp_path):
    workdir = make_project(tmp_path / "project", smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth"))
    proc = snakemake(workdir, "-n", "--config", "seed=[1]", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "did you mean seeds?" in out
    assert 'File "' not in out and "Traceback" not in out, out[-2000:]


def test_cifar10_download_error_names_the_url_and_the_root_key(tmp_path):
    url = closed_port_url()
    with pytest.raises(OSError) as error:
        data.download_cifar10(tmp_path / "cifar10" / "cifar-10-batches-py", url=url)
    assert url in str(error.value) and "data.cifar10.root" in str(error.value)
    assert not (tmp_path / "cifar10" / "cifar-10-batches-py").exists()  # nothing half-written


def test_the_estimate_is_the_main_jobs_first_lines(tiny_inputs, tmp_path):
    """A real run says what its jobs train and their time before the first job starts (the step times given)."""
    workdir = make_project(tmp_path / "project", smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth"))
    proc = snakemake(workdir, "--cores", "2", "results/models/all/seed0.pt", env={ENV: "1"})
    err = proc.stderr
    first_job = re.search(r"^(local)?rule \w+:", err, re.MULTILINE)
    assert first_job and "pre-flight estimate: 1 training (1 on images: 1 epoch)" in err[:first_job.start()], err[-3000:]
    # the 200 images in the data folder less 40 held out, batches of 32: 5 steps and 40 / 250 of a forward pass
    assert (f"≈ {estimate.duration(5 + 40 / 250)} on this machine, a small plan (200 images through the network), "
            "1 job at once on 2 cores") in err
