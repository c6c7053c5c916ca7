"""The smoke workflow through a real SLURM (profiles/slurm): GPU jobs go through sbatch with a GPU
request, report rules stay local, and the results equal the local run's (same seed, CPU, threads). With the
add-on profiles/slurm-grouped, trainings and their evaluations go out four to an sbatch job with one GPU.

Needs a running cluster: `sudo .ci/slurm-up.sh` starts a one-node one on this machine (two fake
GPUs, no accounting). Skipped when there is none, unless CMPT726_SLURM=1 (CI), where it must run.
"""

import json
import os
import re
import shutil
import subprocess
import time

import pytest
import yaml
from conftest import REPO, SNAKEMAKE, make_project, smoke_config

pytestmark = pytest.mark.slow

# No slurmdbd on the test cluster: `sacct` fails, so the plugin polls squeue (which keeps finished
# jobs for MinJobAge=300 s), and there is no account to guess.
CI_FLAGS = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
            "--slurm-no-account", "--slurm-keep-successful-logs"]
GPU_RULES = {"train_variant", "evaluate_variant", "cache_features"}
GROUPED = REPO / "profiles" / "slurm-grouped"
TIMEOUT = 900


def cluster_state() -> str | None:
    """Why SLURM cannot be used here, or None when a node is idle."""
    if not shutil.which("sbatch"):
        return "no sbatch (apt-get install slurm-client slurmctld slurmd munge; then .ci/slurm-up.sh)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%t %G"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"sinfo failed: {error}"
    states = out.stdout.split()
    if out.returncode != 0 or not states:
        return f"no SLURM cluster answers (start one with .ci/slurm-up.sh): {out.stderr.strip()}"
    if not any(s.startswith(("idle", "mix")) for s in states[::2]):
        return f"no idle SLURM node: {out.stdout.strip()}"
    if "gpu" not in out.stdout:
        return f"the SLURM node has no GPU gres: {out.stdout.strip()}"
    return None


@pytest.fixture(scope="module")
def slurm():
    problem = cluster_state()
    if problem:
        if os.environ.get("CMPT726_SLURM") == "1":
            pytest.fail(f"CMPT726_SLURM=1 but {problem}")
        pytest.skip(problem)


def scontrol_job(job_id: str) -> dict:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, f"scontrol show job {job_id}: {out.stderr}"
    return dict(field.split("=", 1) for field in out.stdout.split() if "=" in field)


def run_on_slurm(workdir, *args) -> str:
    """Snakemake with profiles/slurm (and `args`) in `workdir`; its log. Under `timeout`: SIGINT first, so that
    Snakemake cancels its SLURM jobs, then SIGKILL."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow")}
    cmd = ["timeout", "--signal=INT", "--kill-after=60", str(TIMEOUT), *SNAKEMAKE, "-s", str(REPO / "Snakefile"),
           "--workflow-profile", str(REPO / "profiles" / "slurm"), *CI_FLAGS, *args]
    tic = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=TIMEOUT + 120)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"SLURM run failed ({proc.returncode}) after {time.perf_counter() - tic:.0f} s:\n" \
                                 f"{log[-6000:]}"
    return log


def test_smoke_workflow_on_slurm_matches_the_local_run(slurm, smoke_run, tiny_inputs, tmp_path):
    workdir = make_project(tmp_path / "slurm", smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth"))
    log = run_on_slurm(workdir)

    # Every GPU job went through sbatch; the report rules ran locally.
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", log)
    by_rule: dict[str, list[str]] = {}
    for job_id, slurm_log in submitted:
        rule = re.search(r"/rule_(\w+?)/", slurm_log).group(1)
        by_rule.setdefault(rule, []).append(job_id)
    assert len(by_rule.get("train_variant", [])) == 2, by_rule
    assert set(by_rule) >= GPU_RULES, by_rule
    local = {"report_html", "report_pdf", "gallery_html", "gallery_pdf", "compare_variants"}
    assert not set(by_rule) & local, by_rule
    assert not re.search(r"^localrule (train_variant|evaluate_variant|cache_features):", log, re.M)

    # SLURM's own record (kept MinJobAge=300 s): each GPU job asked for one GPU and completed.
    for rule in GPU_RULES:
        for job_id in by_rule[rule]:
            info = scontrol_job(job_id)
            assert info["JobState"] == "COMPLETED", info
            assert "gpu:1" in info.get("TresPerJob", "") or "gres/gpu=1" in info.get("TRES", ""), info
            assert info["Comment"].startswith(f"rule_{rule}"), info
    # And inside the job SLURM handed each training job a GPU of its own (fake devices on CI).
    for variant in ["head", "all"]:
        train_log = (workdir / f"results/logs/train/{variant}/seed0.log").read_text()
        assert re.search(r"CUDA_VISIBLE_DEVICES=\d", train_log), train_log[:500]

    # Same seed, CPU, same threads: the numbers equal the local run's.
    local = smoke_run["dir"]
    for variant in ["head", "all"]:
        scores = f"results/scores/{variant}/seed0.tsv"
        assert (workdir / scores).read_text() == (local / scores).read_text(), scores
        got, want = (json.loads((d / f"results/metrics/{variant}/seed0.json").read_text()) for d in (workdir, local))
        assert got["accuracy"] == want["accuracy"] and got["test_loss"] == want["test_loss"], variant
        assert got["confusion"] == want["confusion"], variant
    assert (workdir / "report/report.pdf").stat().st_size > 0


def test_grouped_profile_sends_four_gpu_jobs_as_one_sbatch_job_with_one_gpu(slurm, tiny_inputs, tmp_path):
    """profiles/slurm-grouped: the smoke run's two trainings and their two evaluations (four GPU jobs) go to SLURM as
    one sbatch job that asks for one GPU, one job's CPUs and memory, and the four runtimes summed (the plugin runs
    them one after another in it)."""
    workdir = make_project(tmp_path / "grouped", smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth"))
    targets = [f"results/metrics/{variant}/seed0.json" for variant in ("head", "all")]
    log = run_on_slurm(workdir, "--profile", str(GROUPED), *targets)

    submitted = re.findall(r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", log)
    groups = [job_id for _, job_id, slurm_log in submitted if "/group_gpu_jobs" in slurm_log]
    alone = {re.search(r"/rule_(\w+?)/", slurm_log).group(1) for _, _, slurm_log in submitted
             if "/rule_" in slurm_log}
    assert len(groups) == 1, submitted  # four GPU jobs, one sbatch job
    assert not alone & {"train_variant", "evaluate_variant"} and "cache_features" in alone, submitted

    cluster = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())["set-resources"]
    train, evaluate = cluster["train_variant"], cluster["evaluate_variant"]
    minutes = 2 * train["runtime"] + 2 * evaluate["runtime"]  # one after another: the runtimes add up
    info = scontrol_job(groups[0])
    assert info["JobState"] == "COMPLETED", info
    assert info.get("TresPerJob") == "gres:gpu:1" or "gres/gpu=1" in info.get("TRES", ""), info  # one GPU, not 4
    assert info["NumCPUs"] == str(max(train["cpus_per_task"], evaluate["cpus_per_task"])), info
    assert info["MinMemoryNode"] == f"{max(train['mem_mb'], evaluate['mem_mb'])}M", info
    assert info["TimeLimit"] == f"{minutes // 60:02d}:{minutes % 60:02d}:00", info
    for variant in ["head", "all"]:
        train_log = (workdir / f"results/logs/train/{variant}/seed0.log").read_text()
        assert re.search(r"CUDA_VISIBLE_DEVICES=\d", train_log), train_log[:500]
        assert (workdir / f"results/scores/{variant}/seed0.tsv").stat().st_size > 0


# --------------------------------------------------------------------------- the profiles themselves
def test_profiles_declare_what_the_docs_say():
    local = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
    assert "gpu_share=1000" in local["resources"] and local["rerun-incomplete"] is True and local["cores"]
    text = (REPO / "profiles/slurm/config.yaml").read_text()
    cluster = yaml.safe_load(text)
    assert cluster["executor"] == "slurm" and cluster["retries"] >= 1 and cluster["latency-wait"] >= 5
    for rule in GPU_RULES:
        res = cluster["set-resources"][rule]
        assert res.get("gpu") == 1 or "gpu" in str(res.get("gres", "")), rule
        assert res["cpus_per_task"] == cluster["set-threads"][rule]  # threads fit the CPUs asked for
    assert "# slurm_partition:" in text and "# slurm_account:" in text  # documented placeholders
    # The grouped add-on: trainings and evaluations in one group, one GPU a submitted group, no key of the workflow
    # profile's (those would win over it).
    grouped = yaml.safe_load((GROUPED / "config.yaml").read_text())
    assert set(grouped["groups"]) == {"train_variant", "evaluate_variant"}
    assert grouped["resources"] == ["gpu=1"] and grouped["set-resource-scopes"] == {"gpu": "local"}
    assert not set(grouped) & set(cluster), set(grouped) & set(cluster)
    snakefile = (REPO / "Snakefile").read_text()
    local_rules = re.search(r"^localrules:\n((?:\s+\w+,?\n)+)", snakefile, re.M).group(1).split()
    assert {"report_html,", "report_pdf,"} <= set(local_rules)
