"""Heavy jobs on a CPU claim no GPU and pack side by side (threads_per_job); on a GPU the local profile's
gpu_share limit (a card is 1000 shares) runs gpu_jobs_per_device of them on it at a time."""

import re

import pytest
from conftest import make_project, snakemake, smoke_config
from workflow_helpers import job_fields

from cmpt726.device import gpus_per_job

HEAVY_RULES = {"train_variant", "evaluate_variant", "cache_features"}
TARGETS = ["results/metrics/head/seed0.json", "results/metrics/all/seed0.json"]


def most_heavy_jobs_at_once(log: str) -> int:
    """The largest number of heavy jobs running together, read from Snakemake's job log."""
    running, most, rule = set(), 0, None
    for line in log.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line):
            rule = m.group(1)
        elif (m := re.match(r"^\s+jobid: (\d+)", line)) and rule:
            if rule in HEAVY_RULES:
                running.add(m.group(1))
                most = max(most, len(running))
            rule = None
        elif m := re.match(r"^Finished jobid: (\d+)", line):
            running.discard(m.group(1))
    return most


def test_gpus_per_job_follows_the_device():
    assert gpus_per_job("cpu", present=True) == 0
    assert gpus_per_job("cuda", present=False) == 1
    assert gpus_per_job("auto", present=True) == 1
    assert gpus_per_job("auto", present=False) == 0


@pytest.mark.parametrize("device, per_device, heads_on_cpu, claims", [
    ("cpu", 1, True, {"gpu=0", "gpu_share=0"}),
    ("cuda", 1, False, {"gpu=1", "gpu_share=1000"}),
    ("cuda", 4, True, {"gpu=1", "gpu_share=250"}),
])
def test_heavy_rules_declare_a_gpu_only_for_cuda(tiny_inputs, tmp_path, device, per_device, heads_on_cpu, claims):
    """With cuda.heads_on_cpu the head on cached features (`head`) claims no GPU and runs on the CPU."""
    config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth", device=device, threads_per_job=3,
                          gpu_jobs_per_device=per_device, cuda={"heads_on_cpu": heads_on_cpu})
    jobs = job_fields(snakemake(make_project(tmp_path, config), "-n", "--cores", "8").stdout)
    for rule in HEAVY_RULES:
        declared = {name: f for name, f in jobs.items() if name.split("[")[0] == rule}
        assert declared, rule
        for name, fields in declared.items():
            on_cpu = heads_on_cpu and "variant=head" in name
            assert (claims if not on_cpu else {"gpu=0", "gpu_share=0"}) <= set(fields["resources"].split(", ")), name
        assert {f["threads"] for f in declared.values()} == {"3"}, rule
    assert any("variant=head" in name for name in jobs) and any("variant=all" in name for name in jobs)


@pytest.fixture(scope="module")
def packing_project(tiny_inputs, tmp_path_factory):
    def project(name):
        config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth", threads_per_job=1)
        return make_project(tmp_path_factory.mktemp(name), config)

    return project


@pytest.mark.slow
def test_cpu_jobs_run_side_by_side(packing_project):  # device: cpu, threads_per_job 1, --cores 2
    proc = snakemake(packing_project("cpu"), "--cores", "2", *TARGETS)
    assert most_heavy_jobs_at_once(proc.stderr) == 2, proc.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("share, at_once", [(1000, 1), (500, 2)])
def test_gpu_jobs_share_the_card_as_configured(packing_project, share, at_once):
    """device: cuda's GPU claims with gpu_jobs_per_device 1 (1000 shares: one job at a time, cores free or not)
    and 2 (500: two side by side)."""
    claim = [f"{rule}:gpu_share={share}" for rule in sorted(HEAVY_RULES)]
    proc = snakemake(packing_project(f"gpu{share}"), "--cores", "2", "--set-resources", *claim, "--", *TARGETS)
    assert most_heavy_jobs_at_once(proc.stderr) == at_once, proc.stderr[-3000:]
    assert re.search(rf"gpu_share={share}", proc.stderr)
