"""A finished project plans nothing new wherever it goes: moved (mv), copied (cp -a), or its results copied
into a fresh git clone (after tools/restore_mtimes.py). The README's offline trial: test_first_hour.py."""

import shutil
import subprocess
import sys

import pytest
from conftest import REPO, SNAKEMAKE, make_project, smoke_config
from workflow_helpers import copy_project, copy_workflow, parse_jobs

pytestmark = pytest.mark.slow


def snakemake_in(project, *args, check=True):
    """Snakemake as a user runs it: in the project folder, its own Snakefile, no PYTHONPATH."""
    proc = subprocess.run([*SNAKEMAKE, *args], cwd=project, capture_output=True, text=True, timeout=900)
    if check and proc.returncode:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def planned(project) -> set[str]:
    proc = snakemake_in(project, "-n")
    return parse_jobs(proc.stdout + "\n" + proc.stderr)


def git(project, *args):
    subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def finished(tiny_inputs, tmp_path_factory):
    """A project folder holding the workflow (a git repository), its config and the finished smoke run."""
    project = tmp_path_factory.mktemp("relocate") / "project"
    copy_workflow(project)
    shutil.copytree(REPO / "tools", project / "tools")
    shutil.copy(REPO / ".gitignore", project / ".gitignore")
    make_project(project, smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth"))
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "workflow")
    snakemake_in(project, "--cores", "2")
    assert planned(project) == set()
    return project


def test_moved_project_plans_nothing(finished, tmp_path):
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    copy_project(finished, tmp_path / "original").rename(moved)  # a copy: the fixture stays for the other tests
    assert planned(moved) == set()


def test_copied_project_plans_nothing(finished, tmp_path):
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(finished), str(copy)], check=True)
    assert planned(copy) == set()


def test_fresh_clone_with_copied_results_plans_nothing(finished, tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(finished), str(clone))
    for folder in ["results", "report"]:
        subprocess.run(["cp", "-a", str(finished / folder), str(clone / folder)], check=True)
    shutil.copy(finished / "config.yaml", clone / "config.yaml")
    assert planned(clone), "a fresh clone's files are newer than the copied results: Snakemake plans reruns"
    subprocess.run([sys.executable, "tools/restore_mtimes.py"], cwd=clone, check=True, capture_output=True)
    assert planned(clone) == set()
