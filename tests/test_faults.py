"""Faults: a killed training job resumes exactly; broken inputs fail clearly and leave no half output. One small
project trains a variant through the image path (slow enough epochs to interrupt); each test works on a copy."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, SNAKEMAKE, make_project, smoke_config
from workflow_helpers import copy_project, copy_workflow, leftovers, snakemake

from cmpt726.config import resolve_variant, validate_config
from cmpt726.finetune import train_variant

pytestmark = pytest.mark.slow

VARIANT = "v"
EPOCHS = 3
CHECKPOINT = f"results/models/{VARIANT}/seed0.pt"
RESUME = f"results/models/{VARIANT}/seed0.resume.pt"
EPOCHS_TSV = f"results/metrics/{VARIANT}/seed0.epochs.tsv"
METRICS = f"results/metrics/{VARIANT}/seed0.json"
SCORES = f"results/scores/{VARIANT}/seed0.tsv"
TRAIN_LOG = f"results/logs/train/{VARIANT}/seed0.log"


def fault_config(tiny_inputs, **data):
    config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
    config["variants"] = {VARIANT: {"train": "head", "cache_features": False, "epochs": EPOCHS}}
    config["report"]["gallery_variant"] = VARIANT
    config["data"]["cifar10"].update(data)
    return config


@pytest.fixture(scope="module")
def trained(tiny_inputs, tmp_path_factory):
    """The uninterrupted reference run, up to the variant's metrics."""
    workdir = make_project(tmp_path_factory.mktemp("faults") / "reference", fault_config(tiny_inputs))
    snakemake(workdir, "--cores", "2", METRICS)
    return workdir


def epoch_rows(path: Path) -> list[list[str]]:
    """The per-epoch table without its wall-clock column."""
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    drop = rows[0].index("seconds")
    return [[cell for i, cell in enumerate(row) if i != drop] for row in rows]


def processes_in(workdir: Path) -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(proc / "cwd") == str(workdir):
                found.append(int(proc.name))
        except OSError:
            pass
    return found


def kill_training_after_first_epoch(workdir: Path, snakefile: Path = REPO / "Snakefile") -> None:
    """Start the training from scratch and SIGKILL Snakemake and the job once epoch 1's resume state is saved."""
    for path in [CHECKPOINT, EPOCHS_TSV, METRICS, SCORES]:  # as before the first training
        (workdir / path).unlink()
    env = {**os.environ, "PYTHONPATH": str(snakefile.parent / "workflow")}
    # its own process group: SIGKILL it (Snakemake and the job) once epoch 1's resume state is on disk
    proc = subprocess.Popen([*SNAKEMAKE, "-s", str(snakefile), "--cores", "2", METRICS],
                            cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (workdir / RESUME).exists():
            assert proc.poll() is None, "snakemake ended before the first epoch finished"
            assert time.monotonic() < deadline, "no resume state after 300 s"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for _ in range(100):  # the job is gone too, so nothing writes behind the rerun's back
        if not processes_in(workdir):
            break
        time.sleep(0.05)
    assert not processes_in(workdir)
    assert not (workdir / CHECKPOINT).exists(), "the job finished before it was killed"
    snakemake(workdir, "--unlock", snakefile=snakefile)


def test_sigkill_mid_epoch_resumes_to_the_same_result(trained, tmp_path):
    workdir = copy_project(trained, tmp_path / "killed")
    kill_training_after_first_epoch(workdir)
    rerun = snakemake(workdir, "--cores", "2", "--rerun-incomplete", METRICS)
    log = (workdir / TRAIN_LOG).read_text()
    resumed = [line for line in log.splitlines() if line.startswith(f"resuming from {RESUME} after epoch ")]
    assert resumed, f"the rerun did not resume:\n{log}\n{rerun.stderr[-3000:]}"
    assert 1 <= int(resumed[0].rsplit(" ", 1)[1]) < EPOCHS
    assert not (workdir / RESUME).exists(), "the resume state outlived the finished job"
    assert epoch_rows(workdir / EPOCHS_TSV) == epoch_rows(trained / EPOCHS_TSV)
    assert (workdir / SCORES).read_text() == (trained / SCORES).read_text()
    got, want = (json.loads((d / METRICS).read_text()) for d in (workdir, trained))
    assert got == want
    a, b = (torch.load(d / CHECKPOINT, weights_only=True)["state_dict"] for d in (workdir, trained))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_code_edited_between_kill_and_rerun_starts_training_over(trained, tmp_path):
    """Kill training, edit loop.py (label smoothing), rerun: the saved epochs of the old code are not continued."""
    snakefile = copy_workflow(tmp_path / "workflow")
    workdir = copy_project(trained, tmp_path / "killed")
    kill_training_after_first_epoch(workdir, snakefile)
    loop = snakefile.parent / "workflow" / "cmpt726" / "loop.py"
    old = "loss = F.cross_entropy(logits.float(), target)"
    assert old in loop.read_text()
    loop.write_text(loop.read_text().replace(old, "loss = F.cross_entropy(logits.float(), target, label_smoothing=0.1)"))
    snakemake(workdir, "--cores", "2", "--rerun-incomplete", METRICS, snakefile=snakefile)
    log = (workdir / TRAIN_LOG).read_text()
    assert f"ignoring {RESUME}: it belongs to another configuration, other inputs or other code" in log, log
    assert "resuming from" not in log, log
    assert len(epoch_rows(workdir / EPOCHS_TSV)) == EPOCHS + 1
    assert epoch_rows(workdir / EPOCHS_TSV) != epoch_rows(trained / EPOCHS_TSV)  # all epochs by the new code


def test_unreadable_resume_state_is_ignored(trained, tmp_path, capsys):
    """A truncated resume file only costs the saved epochs: training starts over and says why."""
    config = yaml.safe_load((trained / "config.yaml").read_text())
    validate_config(config)
    settings = {**resolve_variant(config, VARIANT), "epochs": 1}
    resume = tmp_path / "seed0.resume.pt"
    resume.write_bytes(b"PK\x03\x04 truncated")
    history = train_variant({"seed": 0, "settings": settings, "device": "cpu"},
                            {"backbone": trained / "results/backbone/path.pt",
                             "train": trained / "results/data/cifar10/train.npz", "checkpoint": tmp_path / "m.pt",
                             "epochs": tmp_path / "e.tsv", "resume": resume})
    assert len(history) == 1 and (tmp_path / "m.pt").exists() and not resume.exists()
    assert f"ignoring {resume}: unreadable" in capsys.readouterr().out


def test_truncated_checkpoint_fails_evaluation_naming_it(trained, tmp_path):
    workdir = copy_project(trained, tmp_path / "project")
    ckpt = workdir / CHECKPOINT
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    proc = snakemake(workdir, "--cores", "1", METRICS, check=False)
    assert proc.returncode != 0
    assert f"checkpoint {CHECKPOINT} cannot be loaded" in proc.stderr, proc.stderr[-3000:]
    assert not (workdir / METRICS).exists() and not (workdir / SCORES).exists()
    assert not [p for p in leftovers(workdir / "results/metrics") + leftovers(workdir / "results/scores")
                if "/." in "/" + p], "temporary files left behind"


@pytest.mark.parametrize("name, truncate, verify, message", [
    ("data_batch_1", False, True, ": md5 "),  # the official md5 check names the file
    ("test_batch", True, False, " is not a CIFAR python pickle"),  # read after train.npz is written: removed
])
def test_broken_dataset_file_fails_naming_it_without_output(tiny_inputs, tmp_path, name, truncate, verify, message):
    data = tmp_path / "cifar10"
    shutil.copytree(tiny_inputs / "cifar10", data)
    bad = data / "cifar-10-batches-py" / name
    if truncate:
        bad.write_bytes(bad.read_bytes()[:1000])
    workdir = make_project(tmp_path / "project", fault_config(tiny_inputs, root=str(data), verify=verify))
    proc = snakemake(workdir, "--cores", "1", "results/data/cifar10/summary.json", check=False)
    assert proc.returncode != 0
    assert f"{bad}{message}" in proc.stderr, proc.stderr[-3000:]
    assert verify is False or "is not the official" in proc.stderr
    assert leftovers(workdir / "results/data") == []


def test_score_file_with_missing_rows_fails_naming_it(trained, tmp_path):
    workdir = copy_project(trained, tmp_path / "project")
    scores = workdir / SCORES
    lines = scores.read_text().splitlines(keepends=True)
    scores.write_text("".join(lines[:10] + lines[11:]))  # one test image's row gone
    proc = snakemake(workdir, "--cores", "1", "report/gallery.html", check=False)
    assert proc.returncode != 0
    assert f"{SCORES}: 99 rows, expected 100" in proc.stderr, proc.stderr[-3000:]
    assert leftovers(workdir / "report") == []


def test_missing_wkhtmltopdf_fails_clearly_without_pdf(trained, tmp_path):
    workdir = copy_project(trained, tmp_path / "project")
    bin_dir = tmp_path / "bin"  # a PATH with everything but wkhtmltopdf
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        for exe in Path(folder).glob("*") if Path(folder).is_dir() else []:
            if exe.name != "wkhtmltopdf" and not (bin_dir / exe.name).exists() and os.access(exe, os.X_OK):
                (bin_dir / exe.name).symlink_to(exe)
    # the gallery's PDF: the same html_to_pdf as report.pdf, with far fewer jobs first; the pre-flight says so
    proc = snakemake(workdir, "--cores", "2", "report/gallery.pdf", check=False, env={"PATH": str(bin_dir)})
    assert proc.returncode != 0
    assert "wkhtmltopdf is not installed; gallery_pdf needs it" in proc.stderr, proc.stderr[-3000:]
    assert "nothing was run" in proc.stderr
    assert [p for p in leftovers(workdir / "report") if "pdf" in p] == []
