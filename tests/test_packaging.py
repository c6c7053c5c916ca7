"""What a user installs and runs, checked where it can be (statically for conda: no conda here)."""

import re
import shutil
import subprocess
import sys
import tomllib

import pytest
import yaml
from conftest import REPO, snakemake
from workflow_helpers import loaded_workflow


def requirements() -> list[str]:
    return [line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def test_conda_env_parses_and_pins_what_requirements_pins():
    env = yaml.safe_load((REPO / "envs/workflow.yaml").read_text())
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert not any(re.match(r"python\b", d) for d in conda), "a python pin: conda-inject refuses it"
    assert not any(p.startswith(("-r", "-e", "--")) or "/" in p for p in pip), "no paths: conda builds elsewhere"
    assert pip == requirements()
    assert "wkhtmltopdf" in conda


def test_pyproject_installs_the_package_with_the_same_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    test_tools = project["project"]["optional-dependencies"]["test"]
    assert project["project"]["dependencies"] + test_tools == requirements()
    assert "pip install -q --no-deps -e ." in (REPO / "setup.sh").read_text()


def test_every_rule_has_a_conda_env_and_lint_is_clean(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path)
    proc = snakemake(tmp_path, "--lint", check=False, timeout=300)
    out = proc.stdout + proc.stderr
    assert "Specify a conda environment" not in out and "Mixed rules and functions" not in out, out[-3000:]
    assert "Congratulations, your workflow is in a good condition" in out, out[-3000:]


def test_snakefmt_leaves_the_workflow_as_it_is():
    """The Snakefile and rule files are as snakefmt writes them (its settings: pyproject.toml [tool.snakefmt],
    which keeps each rule's docstring first)."""
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "."], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


def test_jobs_import_the_package_through_the_script_folder_without_an_install():
    """Snakemake appends a local script's folder to the script's sys.path; workflow/scripts/cmpt726 links to
    the package, so a job in a conda env (no install, PYTHONPATH dropped) imports this checkout's package."""
    link = REPO / "workflow/scripts/cmpt726"
    assert link.is_symlink() and link.resolve() == (REPO / "workflow/cmpt726").resolve()
    # -S -I: no site-packages (so no installed cmpt726), no PYTHONPATH: only the script folder, as in the job.
    code = (f"import sys; sys.path.append({str(REPO / 'workflow/scripts')!r}); import cmpt726.files, cmpt726.code_digest; "
            "print(cmpt726.files.__file__)")
    out = subprocess.run([sys.executable, "-S", "-I", "-c", code], capture_output=True, text=True, check=True,
                         env={}).stdout
    assert out.strip().startswith(str(REPO / "workflow/scripts/cmpt726/"))


def test_licence_and_citation():
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT" and cff["authors"]
    titles = " ".join(r["title"] for r in cff["references"])
    for needle in ["Tiny Images", "pytorch-cifar-models", "Human uncertainty", "CMPT-726"]:
        assert needle in titles, needle
    readme = (REPO / "README.md").read_text()
    for needle in ["Krizhevsky", "chenyaofo/pytorch-cifar-models", "CMPT-726", "LICENSE", "CITATION.cff"]:
        assert needle in readme, needle


MACHINE_PATHS = re.compile(r"(?<![\w.])(/work/|/tmp/|/home/|/root/|/Users/|C:\\)")


@pytest.mark.parametrize("pattern", ["README.md", "docs/*.md", "configs/*.yaml", "config.yaml", "profiles/*/*.yaml",
                                     "workflow/report/*.rst", ".test/**/*.yaml"])
def test_docs_and_configs_name_no_folder_of_a_development_machine(pattern):
    files = sorted(REPO.glob(pattern))
    assert files or pattern.startswith(".test"), pattern
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not MACHINE_PATHS.search(line), f"{path.relative_to(REPO)}:{number}: {line.strip()}"


def test_every_rule_says_what_it_does_in_list_rules(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path)
    out = snakemake(tmp_path, "--list-rules", timeout=300).stdout
    rules = [line for line in out.splitlines() if re.match(r"^\w+", line)]
    assert len(rules) > 20
    undocumented = [line for line in rules if not re.match(r"^\w+ \(.+\)$", line)]
    assert undocumented == []


def local_rules(workdir) -> set[str]:
    """The rules Snakemake keeps on the submitting host under a cluster executor (its `localrules` record)."""
    with loaded_workflow(workdir) as workflow:
        return set(workflow._localrules)


def test_downloads_and_report_rules_run_on_the_submitting_host(tmp_path, monkeypatch):
    """Compute nodes of a cluster often have no internet: every download is a local rule; so are the quick
    report rules (they need wkhtmltopdf); the heavy ones are not."""
    shutil.copy(REPO / "config.yaml", tmp_path)
    monkeypatch.chdir(tmp_path)
    local = local_rules(tmp_path)
    assert {"download_cifar10", "fetch_backbone", "download_cifar10h", "report_html", "report_pdf", "gallery_html",
            "gallery_pdf", "compare_variants", "theory_q1"} <= local
    assert not local & {"train_variant", "evaluate_variant", "cache_features", "near_duplicates"}
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["backbone"]["source"] = "pretrain"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert "download_cifar100" in local_rules(tmp_path) and "pretrain_backbone" not in local_rules(tmp_path)
