"""Tiny real-format data (cmpt726.fake_data), the smoke configuration, one shared real Snakemake run of it,
and helpers the test files share."""

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

# One set of CPU kernels for every x86 machine the tests run on (set before torch starts, inherited by every
# Snakemake run): AVX512 and AVX2 kernels round differently, and a one-epoch run on a random backbone turns that
# into other predictions, so the pinned numbers would hold on one kind of CPU only.
for _var, _isa in (("ATEN_CPU_CAPABILITY", "avx2"), ("ONEDNN_MAX_CPU_ISA", "AVX2"), ("MKL_ENABLE_INSTRUCTIONS", "AVX2")):
    os.environ.setdefault(_var, _isa)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
from cmpt726.fake_data import CLASSES, write_backbone, write_cifar10, write_cifar10h  # noqa: E402,F401


def read_yaml(path: Path | str) -> dict:
    """A YAML file of this checkout (path relative to it, or absolute)."""
    return yaml.safe_load((REPO / path).read_text())


def shipped(raw: bool = False) -> dict:
    """config.yaml as a run sees it (the schema's defaults filled in), or as written (`raw`)."""
    from cmpt726.config import fill_and_check

    config = read_yaml("config.yaml")
    return config if raw else fill_and_check(config)


def overlaid(*names: str, **top) -> dict:
    """config.yaml with configs/<name>.yaml merged over it (as `--configfile` does) and `top` keys set, validated."""
    from cmpt726.config import _merge, validate_config

    config = read_yaml("config.yaml")
    for name in names:
        _merge(config, read_yaml(f"configs/{name}.yaml"))
    config.update(top)
    validate_config(config)
    return config


class Killed(Exception):
    """Raised by `kill_after_first`: a job killed after its first epoch."""


def kill_after_first(row: dict) -> None:
    """An on_epoch callback that stops training once epoch 1 (and its resume state) is done."""
    if row["epoch"] == 1:
        raise Killed


class Payload:
    """What a crafted pickle holds: unpickling it calls os.mkdir(marker), so a reader that runs code shows."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def smoke_config(data_root: Path, backbone: Path, **overrides) -> dict:
    """config.yaml with defaults filled, shrunk: 2 variants, 1 epoch, no tuning, the tiny data, a local backbone."""
    config = shipped()
    config["data"]["cifar10"] = {"root": str(data_root), "verify": False}
    config["data"]["cifar10h"] = {"enabled": True, "root": str(data_root.parent / "cifar10h"), "verify": False}
    config["backbone"] = {"source": "path", "path": str(backbone)}
    config["training"].update(epochs=1, batch_size=32, lr=0.01, validation=40)
    config["seeds"] = [0]
    config["variants"] = {"head": {"train": "head"}, "all": {"train": "all"}}
    config["report"]["gallery_variant"] = "all"
    config["device"] = "cpu"
    config["tuning"]["enabled"] = False  # the plain grid: tests/test_tuning.py tunes
    for key, value in overrides.items():
        config[key] = value
    return config


def snakemake(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile", check: bool = True,
              timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Snakemake in `workdir`, importing the Snakefile's own package; with `check`, a failure raises with its logs."""
    # Fixed step times unless a test asks otherwise: the pre-flight's measurement would add seconds to every run.
    env = {"CMPT726_STEP_SECONDS": "0.01", **os.environ, "PYTHONPATH": str(Path(snakefile).parent / "workflow"),
           **(env or {})}
    proc = subprocess.run([*SNAKEMAKE, "-s", str(snakefile), *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    write_cifar10(root / "cifar10", n_train=200, n_test=100)
    write_cifar10h(root / "cifar10h", root / "cifar10" / "cifar-10-batches-py")
    write_backbone(root / "backbone.pth")
    return root


def prepared_data(root: Path, n_train: int, n_test: int, n_val: int, data_seed: int, backbone_seed: int) -> Path:
    """`root` holding a training run's inputs without Snakemake: train/test.npz, backbone.pt and split.npz."""
    from cmpt726.data import prepare_cifar10, write_split

    folder = write_cifar10(root / "c10", n_train=n_train, n_test=n_test, seed=data_seed)
    prepare_cifar10(folder, root / "train.npz", root / "test.npz", root / "summary.json", verify=False)
    write_backbone(root / "backbone.pt", seed=backbone_seed)
    write_split(root / "train.npz", root / "split.npz", n_val=n_val, seed=0)
    return root


def run_python(code: str, **kwargs) -> subprocess.CompletedProcess:
    """`python -c code` in a fresh interpreter that imports this checkout's cmpt726."""
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO / "workflow")},
                          **kwargs)


def make_project(workdir: Path, config: dict) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return workdir


@pytest.fixture(scope="session")
def smoke_run(tiny_inputs, tmp_path_factory):
    """One real Snakemake run of the whole DAG on the tiny data, shared by the tests that read it."""
    workdir = make_project(tmp_path_factory.mktemp("smoke"),
                           smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth"))
    tic = time.perf_counter()
    proc = snakemake(workdir, "--cores", "2")
    return {"dir": workdir, "seconds": time.perf_counter() - tic, "log": proc.stderr}


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on one intra-op thread, as the theory rules run (threads: 1): a second one only spin-waits on a
    busy machine."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def closed_port_url(name: str = "file") -> str:
    """An http URL on 127.0.0.1 where nothing listens (a port just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"


@pytest.fixture
def server(monkeypatch):
    """A server on 127.0.0.1 (proxies off): `files[path]` served whole, any other path 404; a path under /held/
    waits until `release` is set, then answers 500 (a download that fails while another run goes on)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    state = SimpleNamespace(files={}, arrived=threading.Event(), release=threading.Event())

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/held/"):
                state.arrived.set()
                state.release.wait(300)
                self.send_error(500, "refused after a wait")
            elif (body := state.files.get(self.path)) is None:
                self.send_error(404)
            else:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()
