"""Helpers of the workflow-level tests (incremental rebuilds, faults, config validation, SLURM, the rules)."""

import contextlib
import os
import re
import shutil
from pathlib import Path

import yaml
from conftest import REPO, snakemake  # noqa: F401  (re-exported for the tests that import it here)

_RULE = re.compile(r"^(?:local)?rule (\w+):\s*$")
_FIELD = re.compile(r"^\s+(\w+): (.*)$")


def copy_workflow(dest: Path) -> Path:
    """A private, editable copy of the workflow (Snakefile, workflow/, profiles/, envs/); returns its Snakefile,
    whose jobs import the copy's cmpt726."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in ["workflow", "profiles", "envs"]:
        if (REPO / name).exists():
            shutil.copytree(REPO / name, dest / name, ignore=ignore, dirs_exist_ok=True)
    shutil.copy2(REPO / "Snakefile", dest / "Snakefile")
    return dest / "Snakefile"


def copy_project(src: Path, dest: Path) -> Path:
    """A copy of a project folder with its times kept (copy2), so that Snakemake finds nothing stale."""
    shutil.copytree(src, dest, symlinks=True)
    return dest


def job_fields(output: str) -> dict[str, dict[str, str]]:
    """The jobs a Snakemake log announces, as 'rule[k=v,...]' → the fields printed under each (input, reason...)."""
    blocks, fields = [], None
    for line in output.splitlines():
        if m := _RULE.match(line):
            fields = {}
            blocks.append((m.group(1), fields))
        elif fields is not None and (m := _FIELD.match(line)):
            fields[m.group(1)] = m.group(2)
        elif not line.strip() or not line[0].isspace():
            fields = None
    named = {}
    for rule, fields in blocks:
        wildcards = ",".join(part.strip() for part in fields["wildcards"].split(",")) if "wildcards" in fields else ""
        named[f"{rule}[{wildcards}]" if wildcards else rule] = fields
    return named


def parse_jobs(output: str) -> set[str]:
    """The jobs a Snakemake log announces, as 'rule[k=v,...]' ('all' left out)."""
    return set(job_fields(output)) - {"all"}


def planned_jobs(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile") -> set[str]:
    proc = snakemake(workdir, "-n", *args, snakefile=snakefile)
    return parse_jobs(proc.stdout + "\n" + proc.stderr)


def job(rule: str, **wildcards) -> str:
    return f"{rule}[{','.join(f'{k}={v}' for k, v in wildcards.items())}]" if wildcards else rule


@contextlib.contextmanager
def edited_config(workdir: Path, edit):
    """config.yaml changed by `edit(config)` inside the block, restored after."""
    path = workdir / "config.yaml"
    original = path.read_text()
    config = yaml.safe_load(original)
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        yield config
    finally:
        path.write_text(original)


@contextlib.contextmanager
def edited_file(path: Path, append: str):
    """`append` added to a file inside the block; content and times restored after."""
    stat = path.stat()
    original = path.read_bytes()
    path.write_bytes(original + append.encode())
    try:
        yield path
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@contextlib.contextmanager
def loaded_workflow(workdir: Path):
    """The workflow (Snakemake's internal Workflow) as its API loads it for `workdir`'s config.yaml; the working
    directory is restored after."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (ConfigSettings, OutputSettings, ResourceSettings, StorageSettings,
                                          WorkflowSettings)

    cwd = os.getcwd()
    try:
        with SnakemakeApi(OutputSettings(quiet=True)) as api:
            yield api.workflow(resource_settings=ResourceSettings(), config_settings=ConfigSettings(),
                               storage_settings=StorageSettings(), workflow_settings=WorkflowSettings(),
                               snakefile=REPO / "Snakefile", workdir=Path(workdir))._workflow
    finally:
        os.chdir(cwd)


def leftovers(folder: Path) -> list[str]:
    """Every file under `folder` (relative paths), hidden temporaries included."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
