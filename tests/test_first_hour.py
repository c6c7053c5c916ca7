"""The first hour of a new user, scripted, in a clone of the tracked files (with this checkout's .venv):
the README's offline trial exactly as written, then what a newcomer tries next: a --config that changes
nothing, device=cuda on this CPU machine, a misspelt key, the main command without internet (every
download pointed at a closed port on 127.0.0.1: a test never reaches beyond this machine), and the README's
second experiment beside the trial, compared with `cmpt726.compare_runs`."""

import json
import re
import subprocess

import pytest
import yaml
from conftest import REPO
from test_preflight import closed_port_url
from test_readme_commands import _clone

from cmpt726 import device
from cmpt726.text import fmt

pytestmark = pytest.mark.slow

SNAKEMAKE = ".venv/bin/snakemake"


def sh(clone, command: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=clone, capture_output=True, text=True, timeout=timeout)


def readme_trial_command() -> str:
    """The README's offline-trial line, as written (its comment removed)."""
    [line] = [line for line in (REPO / "README.md").read_text().splitlines()
              if "cmpt726.fake_data" in line and "&&" in line]
    return re.sub(r"\s+#\s.*$", "", line)


def readme_second_experiment() -> list[str]:
    """The README's second-experiment recipe (section Outputs), line by line as written, comments removed."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"A second experiment runs in its own folder:\n\n```bash\n(.*?)```", text, re.S).group(1)
    return [re.sub(r"\s+#\s.*$", "", line) for line in block.splitlines() if line.strip()]


def substituted(line: str, old: str, new: str) -> str:
    """`line` with `old` replaced; a README that no longer says `old` fails here instead of testing something else."""
    assert old in line, f"the README's line no longer says {old!r}: {line}"
    return line.replace(old, new)


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    clone = _clone(tmp_path_factory.mktemp("first-hour"))
    proc = sh(clone, readme_trial_command())
    assert proc.returncode == 0, proc.stderr[-4000:]
    return clone


def test_offline_trial_as_written_builds_the_report(trial):
    for name in ["report.html", "report.pdf", "gallery.html", "gallery.pdf"]:
        assert (trial / ".test" / "report" / name).stat().st_size > 1000, name
    for path in ["label_issues.tsv", "human_labels.tsv", "near_duplicates.tsv"]:
        assert (trial / ".test/results/analysis" / path).stat().st_size > 0, path
    assert (trial / ".test/results/scores/all_augment/seed1.tsv").stat().st_size > 0
    # the tuning stage ran too: every variant's search, its tuned and recipe twins, the report's tuning section
    for variant in ("head", "head_l2", "all", "all_augment"):
        assert json.loads((trial / f".test/results/tuning/{variant}/choice.json").read_text())["twin"] == f"{variant}-tuned"
        assert (trial / f".test/results/metrics/{variant}-recipe/seed1.json").exists()
    html = (trial / ".test/report/report.html").read_text()
    assert 'id="tuning"' in html and "The recipe's gain and the search's." in html
    # two seeds: the intervals count them, and the variants are compared run by run
    assert "paired bootstrap over test images and seeds" in html and "run-level t (runs + images)" in html


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


# The second experiment's one changed setting (the trial trains with training.lr 0.01).
SECOND_LR = 0.05


def test_second_experiment_and_compare_as_the_readme_gives_them(trial):
    """The README's recipe beside the trial, with the substitutions an offline machine needs, each stated: the trial
    (.test) is the first experiment, the second copies its config (fake data, made as the trial makes it), the
    edit the recipe asks for changes training.lr and turns the tuning stage off (cheaper; its twins then show
    as run by `default` only), Snakemake builds only what compare_runs reads, and compare_runs runs as written."""
    make, run, compare = readme_second_experiment()
    make = substituted(make, "cp config.yaml ../exp2/", "cp .test/config.yaml ../exp2/")
    fake_data = substituted(readme_trial_command().split("&&")[0].strip(), ".test/data", "../exp2/data")
    proc = sh(trial, f"{make} && {fake_data}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp2 = (trial / "../exp2").resolve()
    config = yaml.safe_load((exp2 / "config.yaml").read_text())
    assert config["training"]["lr"] != SECOND_LR
    config["training"]["lr"] = SECOND_LR
    config["tuning"]["enabled"] = False
    (exp2 / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    assert run.startswith(f"{SNAKEMAKE} ") and "--directory ../exp2" in run, run
    proc = sh(trial, f"{run} results/figures/q6/numbers.json")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]

    compare = substituted(compare, " . ../exp2 ", " .test ../exp2 ")
    proc = sh(trial, compare, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    output = compare.split(" -o ")[1].split()[0]
    html = (trial / output).read_text()
    names = re.search(r"--names (\S+) (\S+)", compare).groups()
    assert all(f"<th>{name}</th>" in html for name in names), names
    assert re.search(rf"<code>training\.lr</code>.*?</th>\s*<td>0\.01</td><td>{SECOND_LR:g}</td>", html, re.S)
    # a number that differs: a shared variant's accuracy, as each run's numbers.json has it and the page shows it
    rows = [{row["name"]: row for row in json.loads((folder / "results/figures/q6/numbers.json").read_text())["rows"]}
            for folder in (trial / ".test", exp2)]
    differing = [v for v in rows[1] if v in rows[0] and rows[0][v]["accuracy"] != rows[1][v]["accuracy"]]
    assert differing, "the changed learning rate changed no shared variant's accuracy"
    for variant in differing:
        assert all(fmt(r[variant]["accuracy"], 2) in html for r in rows), variant
