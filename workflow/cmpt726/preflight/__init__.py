"""Pre-flight (no torch): every input a run lacks, found before its first job and listed in one message with its
fix; what the jobs will cost is `estimate`'s."""

import contextlib
import os
import shutil
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

from . import estimate
from ..device import BF16_FLAGS, MIN_DRIVER, cpu_flags, cpu_model, gpus_per_job, nvidia_driver

# torchvision.datasets.CIFAR100's archive, here so that the Snakefile need not import torchvision.
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"


def device_problems(device: str, local: bool, driver=None) -> list[str]:
    """`device: cuda` where this machine cannot run CUDA jobs (only for jobs run here)."""
    if device != "cuda" or not local:
        return []
    present, version = driver if driver is not None else nvidia_driver()
    if not present:
        return ["config key device: cuda, but this machine shows no NVIDIA GPU (no /dev/nvidiactl, no nvidia-smi). "
                "Fix: --config device=auto (the GPU where there is one, else the CPU) or device=cpu."]
    if version is not None and version < MIN_DRIVER:
        return [f"config key device: cuda, but the NVIDIA driver is {version}.x and this torch build (CUDA 13.0) "
                f"needs >= {MIN_DRIVER}. Fix: update the driver, or --config device=cpu."]
    return []


def bf16_warnings(config: dict, plan, flags: set[str] | None = None, present: bool | None = None) -> list[str]:
    """`bf16: true` in the plan where its jobs run on a CPU without bf16 instructions (emulated: ~10x slower)."""
    if gpus_per_job(config["device"], present):
        return []
    flags = cpu_flags() if flags is None else flags
    if not flags or flags & BF16_FLAGS:  # unknown flags: no guess
        return []
    asking = [name for name, settings in plan.settings.items() if settings["bf16"] is True]
    if len(asking) > 3:
        asking = [f"{len(asking)} variants ({', '.join(asking[:3])}, …)"]
    if config["backbone"]["source"] == "pretrain" and config["backbone"]["pretrain"]["bf16"]:
        asking.append("the backbone's pretraining")
    if not asking:
        return []
    return [f"bf16 autocast for {' and '.join(asking)} on a CPU without bf16 instructions ({cpu_model()}: no "
            "avx512_bf16, amx_bf16 or bf16 flag): torch emulates it, about 10x slower than fp32. Set bf16: auto (on "
            "only where the CPU has it) or false where the config sets it (training, variants, tuning.settings; "
            "backbone.pretrain.bf16: false)."]


def named_files(config: dict) -> list[tuple[str, str, str]]:
    """(config key, path, the rule that reads it) of the local files the config names and no rule makes."""
    files = []
    if config["backbone"]["source"] == "path":
        files.append(("backbone.path", config["backbone"]["path"], "import_backbone"))
    if config["backbone"]["source"] == "pretrain" and config["data"]["cifar100"].get("imagefolder"):
        files.append(("data.cifar100.imagefolder", config["data"]["cifar100"]["imagefolder"], "prepare_cifar100"))
    q5_data = config.get("theory", {}).get("q5", {}).get("data")
    if q5_data:
        files.append(("theory.q5.data", q5_data, "theory_q5"))
    return files


def present(path) -> list:
    """[path] when it exists, else []: a missing named file is reported by `run_problems`, not by Snakemake."""
    return [path] if path and Path(path).exists() else []


def missing_files(config: dict, rules: set[str] | None = None) -> list[str]:
    """The named files that do not exist, for the rules among `rules` (None: all)."""
    return [f"config key {key}: {path} does not exist. Fix: point {key} at an existing file or folder."
            for key, path, rule in named_files(config)
            if (rules is None or rule in rules) and path and not Path(path).exists()]


def downloads(config: dict, rules: set[str]) -> list[tuple[str, str, str]]:
    """(what, URL, how to do without it) of every download rule among `rules`."""
    wanted = []
    if "download_cifar10" in rules:
        root = config["data"]["cifar10"]["root"]
        wanted.append(("CIFAR-10", config["data"]["cifar10"]["url"],
                       f"put an existing cifar-10-batches-py/ under {root}, or set data.cifar10.root to the folder "
                       "that holds one (configs/offline-shared.yaml does, for ../shared/data)"))
    if "download_cifar10h" in rules:
        h = config["data"]["cifar10h"]
        wanted.append(("CIFAR-10H votes", h["url"],
                       f"copy cifar10h-counts.npy (sha256 {h['sha256'][:12]}…) into {h['root']}, "
                       "or set data.cifar10h.enabled: false"))
    if "fetch_backbone" in rules:
        wanted.append(("the pretrained backbone", config["backbone"]["url"],
                       "set backbone.source: path with backbone.path a local state_dict, "
                       "or backbone.source: pretrain (trains one here on CIFAR-100)"))
    if "download_cifar100" in rules:
        root = config["data"]["cifar100"]["root"]
        wanted.append(("CIFAR-100", CIFAR100_URL,
                       f"put an existing cifar-100-python/ under {root}, or set data.cifar100.root / .imagefolder"))
    return wanted


def unreachable(url: str, timeout: float = 8.0) -> str | None:
    """Why `url`'s server cannot be reached (name lookup, then a TCP connection), or None when it can."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return None
    except OSError as error:
        return str(error) or type(error).__name__


def run_problems(config: dict, rules: set[str], gpu_rules: set[str] = frozenset(), local: bool = True,
                 reach=unreachable, driver=None) -> list[str]:
    """What the jobs about to run (`rules`; `gpu_rules` declare a `gpu`; `local`: run here) lack."""
    problems = missing_files(config, rules)
    problems += device_problems(config["device"], local, driver) if gpu_rules else []
    wanted = downloads(config, rules)
    urls = [url for _, url, _ in wanted]
    try:
        with ThreadPoolExecutor(max_workers=max(1, len(wanted))) as pool:
            reasons = list(pool.map(reach, urls))
    except RuntimeError:  # no new threads at interpreter exit (where a dry run checks): one at a time
        reasons = [reach(url) for url in urls]
    for (what, url, fix), why in zip(wanted, reasons):
        if why:
            problems.append(f"{what} must be downloaded from {url}, which cannot be reached ({why}). Fix: {fix}.")
    pdfs = sorted(rules & {"report_pdf", "gallery_pdf"})
    if pdfs and not shutil.which("wkhtmltopdf"):
        problems.append(f"wkhtmltopdf is not installed; {' and '.join(pdfs)} {'need' if len(pdfs) > 1 else 'needs'} "
                        "it. Fix: sudo apt-get install wkhtmltopdf (./setup.sh does, as root), or ask for the HTML "
                        "only: snakemake --cores all report/report.html report/gallery.html.")
    return problems


def message(problems: list[str]) -> str:
    return (f"pre-flight: this run cannot start; {len(problems)} missing input(s), nothing was run:\n"
            + "\n".join(f"  - {p}" for p in problems))


def before_jobs(workflow, config: dict, plan, dry_run: bool, workdir=None) -> None:
    """The pre-flight of the jobs `workflow` will run: a real run exits naming what they lack, a dry run warns;
    then their cost. `workdir`: where the config's relative paths lie (a dry run checks at exit)."""
    if workflow.dag is None or (dry_run and workflow.scheduler is None):
        return
    with contextlib.chdir(workdir or os.getcwd()):
        _before_jobs(workflow, config, plan, dry_run)


def runs_here(workflow, dry_run: bool) -> bool:
    """Whether the jobs run on this machine. A dry run swaps the executor for Snakemake's local "dryrun" one, but
    keeps a trace of the one it stands for: Snakemake turns `use_threads` on for every non-local executor."""
    if dry_run:
        return not workflow.execution_settings.use_threads
    return workflow.local_exec


def _before_jobs(workflow, config: dict, plan, dry_run: bool) -> None:
    jobs = list(workflow.dag.needrun_jobs(exclude_finished=False))
    rules = {job.rule.name for job in jobs}
    # The rules that declare a `gpu` resource are the ones that run on config["device"].
    gpu_rules = {job.rule.name for job in jobs if "gpu" in job.rule.resources}
    local = runs_here(workflow, dry_run)
    problems = run_problems(config, rules, gpu_rules, local=local)
    if problems and not dry_run:
        sys.exit(message(problems))
    for problem in problems:
        print(f"WARNING: pre-flight: {problem}", file=sys.stderr)
    if workflow.touch:  # --touch trains nothing
        return

    def resource(name):
        value = workflow.global_resources.get(name)
        return getattr(value, "value", value)

    lines = estimate.report(plan, config, [(job.rule.name, job.wildcards_dict, job.threads) for job in jobs],
                            cores=resource("_cores") or os.cpu_count() or 1, local=local,
                            gpu_share=resource("gpu_share"))
    print("\n".join(lines), file=sys.stderr, flush=True)
