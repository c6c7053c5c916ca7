"""The first hour of a new user, scripted, in a clone of the tracked files (with this checkout's .venv):
the README's offline trial exactly as written, then what a newcomer tries next: a --config that changes
nothing, device=cuda on this CPU machine, a misspelt key, and the main command without internet (every
download pointed at a closed port on 127.0.0.1: a test never reaches beyond this machine)."""

import json
import re
import subprocess

import pytest
from conftest import REPO
from test_preflight import closed_port_url
from test_readme_commands import _clone

from cmpt726 import device

pytestmark = pytest.mark.slow

SNAKEMAKE = ".venv/bin/snakemake"


def sh(clone, command: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=clone, capture_output=True, text=True, timeout=timeout)


def readme_trial_command() -> str:
    """The README's offline-trial line, as written (its comment removed)."""
    [line] = [line for line in (REPO / "README.md").read_text().splitlines()
              if "cmpt726.fake_data" in line and "&&" in line]
    return re.sub(r"\s+#\s.*$", "", line)


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    clone = _clone(tmp_path_factory.mktemp("first-hour"))
    proc = sh(clone, readme_trial_command())
    assert proc.returncode == 0, proc.stderr[-4000:]
    return clone


def test_offline_trial_as_written_builds_the_report(trial):
    for name in ["report.html", "report.pdf", "gallery.html", "gallery.pdf"]:
        assert (trial / ".test" / "report" / name).stat().st_size > 1000, name
    # the tuning stage ran too: every variant's search, its tuned and recipe twins, the report's tuning section
    for variant in ("head", "head_l2", "all", "all_augment"):
        assert json.loads((trial / f".test/results/tuning/{variant}/choice.json").read_text())["twin"] == f"{variant}-tuned"
        assert (trial / f".test/results/metrics/{variant}-recipe/seed1.json").exists()
    html = (trial / ".test/report/report.html").read_text()
    assert 'id="tuning"' in html and "The recipe's gain and the search's." in html


@pytest.mark.parametrize("setting", ["device=cpu", "seeds=[0,1]", "threads_per_job=2"])
def test_a_config_that_changes_nothing_plans_nothing(trial, setting):
    proc = sh(trial, f"{SNAKEMAKE} -n --directory .test --config '{setting}'")
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]


def test_device_cuda_is_refused_before_any_job(trial):
    if device.nvidia_driver()[0]:
        pytest.skip("an NVIDIA GPU is present: device=cuda is fine here")
    before = {p: p.stat().st_mtime_ns for p in (trial / ".test" / "results").rglob("*") if p.is_file()}
    proc = sh(trial, f"{SNAKEMAKE} --cores 2 --directory .test --config device=cuda")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "config key device: cuda" in out and "device=auto" in out, out[-3000:]
    after = {p: p.stat().st_mtime_ns for p in (trial / ".test" / "results").rglob("*") if p.is_file()}
    assert after == before  # no job ran


def test_a_misspelt_key_gets_the_right_one(trial):
    proc = sh(trial, f"{SNAKEMAKE} -n --directory .test --config 'seed=[0]'")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "did you mean seeds?" in out and 'File "' not in out, out[-2000:]


def test_main_command_offline_lists_every_missing_input_at_once(trial):
    urls = {"cifar10": closed_port_url(), "cifar10h": closed_port_url(), "backbone": closed_port_url()}
    data = json.dumps({"cifar10": {"url": urls["cifar10"]}, "cifar10h": {"url": urls["cifar10h"]}})
    backbone = json.dumps({"url": urls["backbone"]})
    proc = sh(trial, f"{SNAKEMAKE} --cores all --config data='{data}' backbone='{backbone}'")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "3 missing input(s)" in out, out[-3000:]
    for key, url in urls.items():
        assert url in out, key
    assert "data.cifar10.root" in out and "data.cifar10h.enabled" in out and "backbone.source" in out
    assert not (trial / "results").exists() or not any((trial / "results").rglob("*.npz"))
