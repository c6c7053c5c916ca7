"""Hostile files, shared data roots, killed jobs and user text (docs/threat-model.md): real processes,
real files, real Snakemake, real wkhtmltopdf."""

import multiprocessing
import pickle
import shutil
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import Payload, make_project, run_python, smoke_config, snakemake, write_cifar10
from workflow_helpers import parse_jobs

from cmpt726 import cifar, snakemake_job as jobs
from cmpt726.cifar100 import tree_digest
from cmpt726.data import load_arrays
from cmpt726.files import atomic_path, write_text
from cmpt726.models import load_backbone_state, load_finetuned
from cmpt726.report import figures
from cmpt726.report.render import html_to_pdf


def _killed_mid_write(path: Path) -> None:
    """A real writer process SIGKILLed inside atomic_path, as a killed job is."""
    code = ("import os, signal, sys; from cmpt726.files import atomic_path\n"
            f"with atomic_path({str(path)!r}) as tmp:\n"
            "    tmp.write_bytes(b'half a file')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    assert run_python(code).returncode == -signal.SIGKILL


def test_a_killed_writer_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    out = tmp_path / "report" / "table.tsv"
    _killed_mid_write(out)
    first = [p.name for p in out.parent.iterdir()]
    assert len(first) == 1 and first[0].startswith(".table.tsv.tmp-"), first
    _killed_mid_write(out)  # removes the first one's, leaves its own: they never accumulate
    second = [p.name for p in out.parent.iterdir()]
    assert len(second) == 1 and second != first, second
    with atomic_path(out) as tmp:  # a live writer's temporary is never taken for a stale one
        tmp.write_text("mine")
        write_text(tmp_path / "report" / "other.tsv", "x")
        assert tmp.exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["other.tsv", "table.tsv"]


@pytest.mark.skipif(shutil.which("wkhtmltopdf") is None, reason="needs wkhtmltopdf")
def test_a_killed_pdf_job_leaves_nothing_after_the_next_run(tmp_path):
    html, pdf = tmp_path / "report.html", tmp_path / "report" / "report.pdf"
    html.write_text("<html><body><h1>Report</h1></body></html>")
    _killed_mid_write(pdf)
    assert any(p.name.startswith(".report.pdf.") for p in pdf.parent.iterdir())
    html_to_pdf(html, pdf)
    assert [p.name for p in pdf.parent.iterdir()] == ["report.pdf"]
    assert pdf.read_bytes().startswith(b"%PDF")


def _slow_fetch(tmp):
    """What torchvision's download leaves under `tmp`: the unpacked folder (tiny fake batches), slowly."""
    time.sleep(1.0)
    write_cifar10(Path(tmp), n_train=20, n_test=10)


def _download(batch_dir, results):
    results.put(cifar.download(cifar.CIFAR10, batch_dir, fetch=_slow_fetch))


def test_two_runs_sharing_a_root_download_once_and_never_nest(tmp_path):
    batch_dir = tmp_path / "shared" / "cifar-10-batches-py"
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_download, args=(batch_dir, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    assert sorted(results.get(timeout=5) for _ in workers) == ["downloaded", "found"]
    assert sorted(p.name for p in batch_dir.iterdir()) == sorted(cifar.files(cifar.CIFAR10))  # nothing nested
    assert sorted(p.name for p in batch_dir.parent.iterdir()) == [".cifar-10-batches-py.lock", "cifar-10-batches-py"]


def test_download_fills_an_empty_folder_but_never_a_partial_one(tmp_path):
    batch_dir = tmp_path / "cifar-10-batches-py"
    batch_dir.mkdir()  # an empty folder a user made for the data
    fetch = lambda tmp: write_cifar10(Path(tmp), 20, 10)  # noqa: E731
    assert cifar.download(cifar.CIFAR10, batch_dir, fetch=fetch) == "downloaded"
    (batch_dir / "test_batch").unlink()
    with pytest.raises(FileExistsError, match="holds only part of CIFAR-10"):
        cifar.download(cifar.CIFAR10, batch_dir, fetch=fetch)


@pytest.mark.slow
def test_a_batch_replaced_in_place_reruns_prepare(tmp_path):
    """New batch files copied over the old ones change no folder mtime: each file is an input."""
    data = tmp_path / "data"
    folder = write_cifar10(data, n_train=50, n_test=20)
    config = smoke_config(data, tmp_path / "backbone.pth")
    config["data"]["cifar10h"]["enabled"] = False
    workdir = make_project(tmp_path / "project", config)
    target = "results/data/cifar10/summary.json"
    snakemake(workdir, "--cores", "1", target)
    assert parse_jobs(snakemake(workdir, "-n", target).stdout) == set()
    folder_mtime = folder.stat().st_mtime_ns
    replacement = write_cifar10(tmp_path / "new", n_train=50, n_test=20, seed=7)
    time.sleep(0.01)
    shutil.copyfile(replacement / "data_batch_3", folder / "data_batch_3")  # over the old file, in place
    assert folder.stat().st_mtime_ns == folder_mtime
    assert parse_jobs(snakemake(workdir, "-n", target).stdout) == {"prepare_cifar10"}


def test_class_names_and_titles_are_drawn_as_written(tmp_path):
    """A `$` in a class name (from the data's meta file) is not math text; a malformed one is no traceback."""
    classes = ["$\\frac{$", "cost $5", "$x^2$", *[f"c{i}" for i in range(7)]]
    figures.plot_confusion(np.eye(10, dtype=int) * 3, classes, "variant $all$ {seed}", tmp_path / "c.png")
    figures.plot_per_class({"$best": dict.fromkeys(classes, 50.0), "base$": dict.fromkeys(classes, 40.0)},
                           tmp_path / "p.png")
    assert (tmp_path / "c.png").stat().st_size > 0 and (tmp_path / "p.png").stat().st_size > 0


def test_torch_and_numpy_readers_run_no_code_from_a_planted_file(tmp_path):
    """The backbone, a fine-tuned checkpoint (torch.load weights_only) and a prepared array file (np.load
    without pickles) refuse a payload, naming the file; the marker is never made."""
    marker = tmp_path / "pwned"
    planted = tmp_path / "planted.pt"
    torch.save({"state_dict": Payload(marker)}, planted)
    with pytest.raises(ValueError, match=rf"backbone checkpoint {planted} cannot be read"):
        load_backbone_state(planted)
    with pytest.raises(ValueError, match=rf"checkpoint {planted} cannot be loaded"):
        load_finetuned(planted)
    arrays = tmp_path / "train.npz"
    np.savez(arrays, images=np.array([Payload(marker)], dtype=object), labels=np.zeros(1), classes=np.array(["a"]))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_arrays(arrays)
    assert not marker.exists()


@pytest.mark.slow
def test_snakemake_stops_on_a_planted_pickle_naming_the_file(tmp_path):
    """The offline trial's setting (verify: false): the prepare job refuses, nothing runs, nothing is written."""
    folder = write_cifar10(tmp_path / "data", n_train=50, n_test=20)
    with open(folder / "data_batch_1", "rb") as fh:
        content = pickle.load(fh)
    content["data"] = Payload(tmp_path / "pwned")
    with open(folder / "data_batch_1", "wb") as fh:
        pickle.dump(content, fh)
    config = smoke_config(tmp_path / "data", tmp_path / "backbone.pth")
    config["data"]["cifar10h"]["enabled"] = False
    workdir = make_project(tmp_path / "project", config)
    proc = snakemake(workdir, "--cores", "1", "results/data/cifar10/summary.json", check=False)
    assert proc.returncode != 0
    assert f"{folder / 'data_batch_1'} is not a CIFAR python pickle" in proc.stderr, proc.stderr[-3000:]
    assert "names posix.mkdir" in proc.stderr
    assert not (tmp_path / "pwned").exists() and not (workdir / "results/data/cifar10/train.npz").exists()


def test_an_imagefolder_image_replaced_in_place_changes_the_tree_digest(tmp_path):
    """prepare_cifar100's `tree` param for an ImageFolder source: a file rewritten in place changes it."""
    image = tmp_path / "train" / "apple" / "0.png"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"old image")
    (tmp_path / "test").mkdir()
    before = tree_digest(tmp_path)
    assert tree_digest(tmp_path) == before
    time.sleep(0.01)
    image.write_bytes(b"new image")  # the same size, the same folder listing
    assert tree_digest(tmp_path) != before


NO_BF16 = {"fpu", "sse2", "avx2", "fma"}  # the flags of an x86 CPU without AVX512-BF16 or AMX


@pytest.mark.parametrize("params, on_cpu, flags, warns", [
    ({"settings": {"bf16": True}, "device": "cpu"}, True, NO_BF16, True),
    # a search plan: one trial's settings asking is enough
    ({"plan": {"settings": [{"bf16": False}, {"bf16": True}]}}, True, NO_BF16, True),
    ({"settings": {"bf16": True}}, True, NO_BF16 | {"avx512_bf16"}, False),  # the CPU has it
    ({"settings": {"bf16": True}}, True, {"fp", "asimd", "bf16"}, False),  # an Arm CPU that has it
    ({"settings": {"bf16": True}}, False, NO_BF16, False),  # on the GPU
    ({"settings": {"bf16": False}}, True, NO_BF16, False),  # not asked for
    ({"settings": {"bf16": True}}, True, set(), False),  # flags unknown (not Linux): no guess
])
def test_bf16_on_a_cpu_without_bf16_instructions_is_warned_about(params, on_cpu, flags, warns):
    warning = jobs.slow_bf16_warning(params, on_cpu, flags)
    assert (warning is not None) == warns
    if warns:
        assert "bf16: false" in warning and "10x slower" in warning


def test_the_job_glue_says_it_in_the_log_and_on_the_terminal(tmp_path, monkeypatch, capsys):
    from snakemake.iocontainers import Namedlist, Params

    monkeypatch.setattr(jobs, "cpu_flags", lambda: NO_BF16)
    log = tmp_path / "job.log"
    smk = SimpleNamespace(threads=1, rule="train_variant", log=Namedlist([str(log)]),
                          params=Params(fromdict={"settings": {"bf16": True, "lr": 0.1}, "device": "cpu"}))
    jobs.run(smk, lambda s: print("trained"))
    assert "rule train_variant: WARNING: bf16 autocast" in capsys.readouterr().err
    assert log.read_text().splitlines()[0].startswith("WARNING: bf16 autocast") and "trained" in log.read_text()
    smk.params = Params(fromdict={"settings": {"bf16": False}, "device": "cpu"})
    jobs.run(smk, lambda s: print("trained"))
    assert "WARNING" not in capsys.readouterr().err + log.read_text()
