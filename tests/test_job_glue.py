"""The script glue of every job (cmpt726.snakemake_job.run): a job whose input changed while it ran fails."""

from __future__ import annotations

import os
import re
from types import SimpleNamespace

import pytest
from snakemake.iocontainers import Namedlist, Params

from cmpt726 import snakemake_job


def job(tmp_path, inputs):
    return SimpleNamespace(threads=1, rule="prepare_cifar10", log=Namedlist([str(tmp_path / "job.log")]),
                           params=Params(), input=Namedlist([str(p) for p in inputs]))


def test_a_job_whose_input_is_replaced_while_it_reads_fails_naming_it(tmp_path):
    batch = tmp_path / "data_batch_1"
    batch.write_bytes(b"old")
    other = tmp_path / "data_batch_2"
    other.write_bytes(b"same")

    def replaced_mid_job(smk):
        batch.write_bytes(b"a new batch")
        os.utime(batch, ns=(1, 1))  # its new mtime older than any output's

    with pytest.raises(SystemExit):
        snakemake_job.run(job(tmp_path, [batch, other]), replaced_mid_job)
    log = (tmp_path / "job.log").read_text()
    assert f"input changed while the job read it: {batch}; run again" in log and str(other) not in log.split("read it")[1]


def test_a_job_whose_inputs_stay_put_succeeds(tmp_path):
    batch = tmp_path / "data_batch_1"
    batch.write_bytes(b"old")
    snakemake_job.run(job(tmp_path, [batch]), lambda smk: print("prepared"))
    assert "prepared" in (tmp_path / "job.log").read_text()


def test_the_workflows_jobs_sleep_rather_than_spin_while_they_wait(smoke_run):
    """OpenMP threads that spin while waiting make a CPU job many times slower beside another busy process
    (experiments/benchmarks/under_load.py): every job of a run inherits OMP_WAIT_POLICY=PASSIVE."""
    logs = list((smoke_run["dir"] / "results" / "logs" / "train").rglob("*.log"))
    assert logs and all(re.search(r"^threads \d+, OMP_WAIT_POLICY=PASSIVE$", log.read_text(), re.M) for log in logs)
