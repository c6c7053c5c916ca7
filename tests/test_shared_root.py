"""A data root shared by runs: no run deletes or changes a file another run (or the user) made there.

Snakemake deletes a failed job's outputs, so no rule may declare a file of a data root as its output; a download
writes a temporary of its own there, puts it in place only when whole and checked, and never replaces a file.
Downloads come from a server on 127.0.0.1: a test never reaches beyond this machine."""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, SNAKEMAKE, closed_port_url, make_project, smoke_config, snakemake, write_cifar10

from workflow_helpers import loaded_workflow

from cmpt726 import cifar, files
from cmpt726.analysis import human_labels


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path → bytes), hidden ones included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def rule_outputs(workdir: Path) -> dict[str, list[str]]:
    """Every rule of the workflow as planned for `workdir`'s config.yaml → its output patterns (absolute)."""
    with loaded_workflow(workdir) as workflow:
        return {rule.name: [os.path.abspath(str(f)) for f in rule.output] for rule in workflow.rules}


def test_no_rule_declares_an_output_in_a_data_root(tiny_inputs, tmp_path):
    """Every data root empty, so that every download rule is planned (CIFAR-100 too: backbone.source pretrain):
    their outputs are receipts in this run's results, and nothing any rule makes lies in a data root."""
    roots = {key: tmp_path / "shared" / key for key in ("cifar10", "cifar10h", "cifar100")}
    config = smoke_config(roots["cifar10"], tiny_inputs / "backbone.pth")
    config["data"]["cifar10h"]["root"] = str(roots["cifar10h"])
    config["data"]["cifar100"] = {"root": str(roots["cifar100"])}
    config["backbone"] = {"source": "pretrain"}
    workdir = make_project(tmp_path / "run", config)
    outputs = rule_outputs(workdir)
    downloads = {"download_cifar10": "cifar10", "download_cifar10h": "cifar10h", "download_cifar100": "cifar100"}
    for rule, name in downloads.items():
        assert outputs[rule] == [str(workdir / "results" / "downloads" / f"{name}.json")], outputs[rule]
    inside = {rule: path for rule, paths in outputs.items() for path in paths
              if any(Path(path).is_relative_to(root) for root in roots.values())}
    assert inside == {}


def test_a_counts_download_never_replaces_a_file_there(server, tmp_path):
    """Another run's file at the name (a different one, even) is kept byte for byte; nothing else is left."""
    theirs = tmp_path / "shared" / "cifar10h-counts.npy"
    theirs.parent.mkdir()
    np.save(theirs, np.ones((3, 10), np.int64))
    before = theirs.read_bytes()
    ours = np.full((3, 10), 2, np.int64).tobytes()
    server.files["/c.npy"] = ours
    assert human_labels.download_counts(f"{server.url}/c.npy", hashlib.sha256(ours).hexdigest(), theirs) == "found"
    assert theirs.read_bytes() == before
    assert [p.name for p in theirs.parent.iterdir()] == ["cifar10h-counts.npy"]


def test_fetch_counts_finds_a_file_without_the_network_and_records_it(tmp_path):
    path = tmp_path / "shared" / "cifar10h-counts.npy"
    path.parent.mkdir()
    np.save(path, np.ones((3, 10), np.int64))
    before = path.read_bytes()
    receipt = tmp_path / "run" / "results" / "downloads" / "cifar10h.json"
    assert human_labels.fetch_counts(closed_port_url(), "0" * 64, path, receipt) == "found"
    assert path.read_bytes() == before
    record = files.read_json(receipt)
    assert record["status"] == "found" and record["path"] == str(path)
    assert record["sha256"] == hashlib.sha256(before).hexdigest()


def test_fetch_counts_downloads_read_only_and_a_failure_leaves_nothing(server, tmp_path):
    body = np.arange(30, dtype=np.int64).reshape(3, 10).tobytes()
    server.files["/c.npy"] = body
    path, receipt = tmp_path / "shared" / "cifar10h-counts.npy", tmp_path / "results" / "cifar10h.json"
    with pytest.raises(ValueError, match=r"data\.cifar10h\.url, data\.cifar10h\.sha256"):
        human_labels.fetch_counts(f"{server.url}/c.npy", "0" * 64, path, receipt)
    assert list(path.parent.iterdir()) == [] and not receipt.exists()
    assert human_labels.fetch_counts(f"{server.url}/c.npy", hashlib.sha256(body).hexdigest(), path,
                                     receipt) == "downloaded"
    assert path.read_bytes() == body and not path.stat().st_mode & 0o222  # read-only, as protected() made it
    assert files.read_json(receipt)["status"] == "downloaded"


def test_publish_refuses_an_existing_name_and_keeps_both(tmp_path):
    theirs, ours = tmp_path / "f", tmp_path / ".f.tmp"
    theirs.write_text("theirs")
    ours.write_text("ours")
    with pytest.raises(FileExistsError, match="kept as it is"):
        files.publish(ours, theirs)
    assert theirs.read_text() == "theirs" and ours.read_text() == "ours"
    files.publish(ours, tmp_path / "g")
    assert (tmp_path / "g").read_text() == "ours" and not ours.exists()


def _fake_fetch(tmp):
    write_cifar10(Path(tmp), n_train=20, n_test=10)


def test_a_cifar_download_is_read_only_and_refuses_a_folder_of_other_files(tmp_path):
    batch_dir = tmp_path / "other" / "cifar-10-batches-py"
    batch_dir.mkdir(parents=True)
    (batch_dir / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"holds other files \(notes\.txt\).*data\.cifar10\.root"):
        cifar.download(cifar.CIFAR10, batch_dir, fetch=_fake_fetch)
    assert snapshot(batch_dir) == {"notes.txt": b"mine"}
    batch_dir = tmp_path / "shared" / "cifar-10-batches-py"
    receipt = tmp_path / "results" / "cifar10.json"
    assert cifar.download(cifar.CIFAR10, batch_dir, fetch=_fake_fetch) == "downloaded"
    cifar.write_receipt(receipt, cifar.CIFAR10, batch_dir, "downloaded", "http://x")
    assert all(not (batch_dir / name).stat().st_mode & 0o222 for name in cifar.files(cifar.CIFAR10))
    assert sorted(files.read_json(receipt)["sizes"]) == sorted(cifar.files(cifar.CIFAR10))


def test_a_cifar_download_keeps_a_folder_filled_meanwhile(tmp_path):
    """Someone who takes no lock fills the folder while the archive unpacks: theirs is kept, ours dropped."""
    batch_dir = tmp_path / "shared" / "cifar-10-batches-py"

    def fetch_while_someone_fills_it(tmp):
        write_cifar10(batch_dir.parent, n_train=20, n_test=10, seed=1)
        _fake_fetch(tmp)

    with pytest.raises(FileExistsError, match="was filled while this run downloaded CIFAR-10; it is kept"):
        cifar.download(cifar.CIFAR10, batch_dir, fetch=fetch_while_someone_fills_it)
    theirs = write_cifar10(tmp_path / "expected", n_train=20, n_test=10, seed=1)
    assert snapshot(batch_dir) == snapshot(theirs)
    assert sorted(p.name for p in batch_dir.parent.iterdir()) == [".cifar-10-batches-py.lock", "cifar-10-batches-py"]


def test_only_a_dead_writers_temporary_is_removed(tmp_path):
    batch_dir = tmp_path / "cifar-10-batches-py"
    prefix = ".download-cifar-10-batches-py-"
    dead = _dead_pid()
    live = tmp_path / (files.writer_prefix(prefix) + "abc")  # this process's: alive
    stale = tmp_path / (files.writer_prefix(prefix).replace(f"-{os.getpid()}-", f"-{dead}-") + "xyz")
    foreign = tmp_path / f"{prefix}otherhost-{dead}-xyz"  # another host's: its writer cannot be asked
    for folder in (live, stale, foreign):
        folder.mkdir()
    assert cifar.download(cifar.CIFAR10, batch_dir, fetch=_fake_fetch) == "downloaded"
    assert live.exists() and foreign.exists() and not stale.exists()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def start(workdir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow")}
    return subprocess.Popen([*SNAKEMAKE, "-s", str(REPO / "Snakefile"), *args], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended before {what}:\n{proc.stdout.read()[-4000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {what} in {timeout} s")
        time.sleep(0.2)


@pytest.mark.slow
def test_a_failed_counts_download_leaves_another_runs_counts(tiny_inputs, server, tmp_path):
    """Run B's download job starts while the shared root has no counts; run A downloads them; then B's server
    fails it. A's file is still there, byte for byte (Snakemake deleted a failed job's outputs: when the
    shared file was B's declared output, B's failure deleted A's input)."""
    body = (tiny_inputs / "cifar10h" / "cifar10h-counts.npy").read_bytes()
    server.files["/cifar10h-counts.npy"] = body
    shared = tmp_path / "shared" / "cifar10h"
    runs = {}
    for name, url in [("a", f"{server.url}/cifar10h-counts.npy"), ("b", f"{server.url}/held/cifar10h-counts.npy")]:
        config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
        config["data"]["cifar10h"] = {"enabled": True, "root": str(shared), "url": url,
                                      "sha256": hashlib.sha256(body).hexdigest(), "verify": True}
        runs[name] = make_project(tmp_path / name, config)
    b = start(runs["b"], "--cores", "1", "download_cifar10h")
    try:
        wait_for(server.arrived.is_set, "request of run B", b)
        snakemake(runs["a"], "--cores", "1", "download_cifar10h")
        counts = shared / "cifar10h-counts.npy"
        assert counts.read_bytes() == body
        server.release.set()
        out = b.communicate(timeout=300)[0]
    finally:
        b.kill()
    assert b.returncode != 0, out[-3000:]
    assert counts.read_bytes() == body, "run B's failure changed or removed run A's counts"
    assert snapshot(shared) == {"cifar10h-counts.npy": body}  # no temporary of B's left either
    log = (runs["b"] / "results" / "logs" / "download_cifar10h.log").read_text()
    assert f"{server.url}/held/cifar10h-counts.npy" in log and "data.cifar10h.url" in log, log[-2000:]


@pytest.mark.slow
def test_a_failed_cifar10_download_leaves_files_put_there_meanwhile(tiny_inputs, server, tmp_path):
    """A download job waits on its server; meanwhile someone puts CIFAR-10 into the shared root; the download
    fails. The files are still there, byte for byte."""
    root = tmp_path / "shared" / "cifar10"
    url = f"{server.url}/held/cifar-10-python.tar.gz"
    config = smoke_config(root, tiny_inputs / "backbone.pth")
    config["data"]["cifar10"]["url"] = url
    config["data"]["cifar10h"]["enabled"] = False
    workdir = make_project(tmp_path / "run", config)
    proc = start(workdir, "--cores", "1", "download_cifar10")
    try:
        wait_for(server.arrived.is_set, "download request", proc)
        folder = write_cifar10(root, n_train=20, n_test=10)
        theirs = snapshot(folder)
        server.release.set()
        out = proc.communicate(timeout=300)[0]
    finally:
        proc.kill()
    assert proc.returncode != 0, out[-3000:]
    assert snapshot(folder) == theirs, "a failed download job changed or removed the files put there"
    assert sorted(p.name for p in root.iterdir()) == [".cifar-10-batches-py.lock", "cifar-10-batches-py"]
    log = (workdir / "results" / "logs" / "download_cifar10.log").read_text()
    assert url in log and "data.cifar10.url" in log, log[-2000:]


@pytest.mark.slow
def test_data_found_by_the_download_rule_is_not_prepared_again(tiny_inputs, server, tmp_path):
    """The download rule is planned (no data), another run holds the lock and puts the data in place; this run's
    job finds it. Prepared once: the next run plans nothing; with the data gone, the download again."""
    root = tmp_path / "shared" / "cifar10"
    root.mkdir(parents=True)
    config = smoke_config(root, tiny_inputs / "backbone.pth")
    config["data"]["cifar10"]["url"] = f"{server.url}/held/c.tgz"  # reachable, never asked: the data is there
    server.release.set()  # (a request would fail at once)
    config["data"]["cifar10h"]["enabled"] = False
    workdir = make_project(tmp_path / "run", config)
    with open(root / ".cifar-10-batches-py.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run's download, under way
        proc = start(workdir, "--cores", "1", "prepare_cifar10")
        try:
            log = workdir / "results" / "logs" / "download_cifar10.log"
            wait_for(log.exists, "download job", proc)
            write_cifar10(root, n_train=50, n_test=20)
        except BaseException:
            proc.kill()
            raise
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out[-4000:]
    assert files.read_json(workdir / "results" / "downloads" / "cifar10.json")["status"] == "found"
    assert (workdir / "results" / "data" / "cifar10" / "train.npz").exists()
    again = snakemake(workdir, "-n", "prepare_cifar10")
    assert "Nothing to be done" in again.stdout + again.stderr, (again.stdout + again.stderr)[-3000:]
    for path in (root / "cifar-10-batches-py").iterdir():
        path.unlink()
    (root / "cifar-10-batches-py").rmdir()
    gone = snakemake(workdir, "-n", "prepare_cifar10")
    assert "download_cifar10" in gone.stdout + gone.stderr and "prepare_cifar10" in gone.stdout + gone.stderr
