"""Every command the README, the docs and the config comments give runs as written in a fresh clone.

Fast: each command is checked against what it names (the venv's programs, modules, scripts, config
files, profiles). Slow: each `snakemake` command is dry-run in a clone of the tracked files, as written
(plus -n), and the offline trial runs whole.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

# Where commands are written: bash blocks of Markdown, and `#   <command>` lines of YAML comments.
DOCUMENTS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
COMMENTED = [".test/config.yaml", *sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").glob("*.yaml"))]
PROGRAMS = (".venv/bin/snakemake", ".venv/bin/python", ".venv/bin/python ../shared/data/restore.py", "./setup.sh", "mkdir",
            "cp", "bash", "git", "cd", "sbatch", "squeue", "sinfo", "pdftoppm", "tail", "apt-get", ".ci/")


def _bash_lines(text: str) -> list[str]:
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = line.strip() in ("```bash", "```sh", "```console") and not inside
            continue
        if inside and line.strip() and not line.lstrip().startswith("#"):
            lines.append(line.strip())
    return _join_continuations(lines)


def _join_continuations(lines: list[str]) -> list[str]:
    joined, current = [], ""
    for line in lines:
        current = f"{current} {line}".strip() if current else line
        if current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        joined.append(current)
        current = ""
    return joined


def _commented_lines(text: str) -> list[str]:
    lines = [line[1:].strip() for line in text.splitlines() if re.match(r"#\s{2,}\S", line)]
    return _join_continuations([line for line in lines if line.startswith((".venv/", "python", "snakemake", "./"))])


def documented_commands() -> list[tuple[str, str]]:
    """(where, command) of every command, a `a && b` line split in two, trailing comments removed."""
    found = []
    for name in DOCUMENTS + COMMENTED:
        text = (REPO / name).read_text(encoding="utf-8")
        lines = _bash_lines(text) if name.endswith(".md") else _commented_lines(text)
        for line in lines:
            line = re.sub(r"\s+#\s.*$", "", line)
            found += [(name, part.strip()) for part in line.split("&&") if part.strip()]
    return found


COMMANDS = documented_commands()


def test_commands_are_found():
    names = {name for name, _ in COMMANDS}
    assert "README.md" in names and ".test/config.yaml" in names
    assert any("fake_data" in command for _, command in COMMANDS)


@pytest.mark.parametrize("where, command", COMMANDS, ids=[f"{w}: {c[:60]}" for w, c in COMMANDS])
def test_command_names_what_exists(where, command):
    command = re.sub(r"^(?:(?:sudo|time)\s+)+", "", command)
    if re.match(r"^[A-Z_]+=", command):  # a shell variable for the commands after it
        return
    assert command.startswith(PROGRAMS), f"{where}: `{command}` runs a program a fresh clone has not got " \
                                         "(use .venv/bin/python or .venv/bin/snakemake)"
    words = shlex.split(command)
    if words[0].startswith(".ci/"):
        assert (REPO / words[0]).is_file(), f"{where}: no script {words[0]}"
    if "-m" in words:
        module = words[words.index("-m") + 1]
        assert importlib.util.find_spec(module) is not None, f"{where}: no module {module}"
    if words[0] == ".venv/bin/python" and len(words) > 1 and words[1].endswith(".py") \
            and not words[1].startswith("../"):  # ../shared lies beside a checkout, not in it
        assert (REPO / words[1]).is_file(), f"{where}: no script {words[1]}"
    for option in ("--configfile", "--workflow-profile", "--profile"):
        if option in words:
            for value in words[words.index(option) + 1:]:
                if value.startswith("-"):
                    break
                if value.startswith("$"):  # a shell variable set by an earlier line
                    continue
                if value.endswith((".yaml", ".yml")) or option != "--configfile":
                    assert (REPO / value).exists(), f"{where}: {option} {value} does not exist"


def _clone(tmp_path: Path) -> Path:
    """The tracked files (as a fresh clone has them) with this checkout's .venv."""
    clone = tmp_path / "clone"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in filter(None, files.split("\0")):
        if (REPO / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, clone / name)
    (clone / ".venv").symlink_to(REPO / ".venv")
    return clone


@pytest.mark.slow
def test_snakemake_commands_plan_as_written(tmp_path):
    """Each documented snakemake command, dry-run (-n) in a clone: it parses, its config validates, its
    targets exist. Commands that need the cluster or ../shared are planned too (planning needs neither)."""
    clone = _clone(tmp_path)
    failures = []
    for where, command in COMMANDS:
        words = shlex.split(re.sub(r"^time\s+", "", command))
        if words[0] != ".venv/bin/snakemake" or "--unlock" in words or "$" in command:
            continue  # `$VAR`: set by an earlier line of its block
        if "--directory" in words:  # an experiment folder the docs make with mkdir + cp config.yaml
            folder = (clone / words[words.index("--directory") + 1]).resolve()
            folder.mkdir(parents=True, exist_ok=True)
            if not (folder / "config.yaml").exists():
                shutil.copy(clone / "config.yaml", folder / "config.yaml")
        if "--report" in words:  # needs finished results; tests/test_report.py builds one
            continue
        # the dry run's estimate with given step times: what it measures is tested in tests/test_estimate.py
        proc = subprocess.run([str(REPO / ".venv/bin/snakemake"), "-n", *words[1:]], cwd=clone, capture_output=True,
                              text=True, timeout=300, env={**os.environ, "CMPT726_STEP_SECONDS": "0.1"})
        if proc.returncode != 0:
            failures.append(f"{where}: {command}\n{proc.stderr[-1500:]}")
    assert not failures, "\n\n".join(failures)
