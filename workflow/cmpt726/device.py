"""Where jobs run: the one place that looks at the machine's GPU and CPU (torch only inside the jobs' functions)."""

import platform
import re
import shutil
import subprocess
from pathlib import Path

# torch 2.14.1's wheels are CUDA 13.0 builds: NVIDIA's drivers below 580 cannot run them.
MIN_DRIVER = 580
# CPU flags of bf16 instructions (x86: AVX512-BF16, AMX; Arm: bf16). Without one, torch emulates bf16
# autocast on the CPU, about 10x slower than fp32 (experiments/benchmarks/README.md).
BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


def nvidia_present() -> bool:
    """An NVIDIA device node or nvidia-smi on this machine (no torch needed)."""
    return Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi") is not None


def nvidia_driver() -> tuple[bool, int | None]:
    """(an NVIDIA GPU is present, the driver's major version when nvidia-smi says it)."""
    present = nvidia_present()
    if not shutil.which("nvidia-smi"):
        return present, None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return present, None
    versions = [int(m.group(1)) for m in re.finditer(r"^\s*(\d+)\.", out, re.MULTILINE)]
    return present, (min(versions) if versions else None)


def gpus_per_job(device: str, present: bool | None = None) -> int:
    """The `gpu` resource a heavy job claims: 1 when it will run on CUDA (`auto`: where an NVIDIA driver shows)."""
    if device in ("cpu", "cuda"):
        return int(device == "cuda")
    return int(nvidia_present() if present is None else present)


def _cpuinfo(*keys: str) -> str | None:
    """The value of the first line of /proc/cpuinfo whose key is one of `keys`; None where there is none."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in keys:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    """The CPU's feature flags (x86 "flags", Arm "Features"); empty where unknown."""
    return set((_cpuinfo("flags", "Features") or "").split())


def native_bf16(device: str, present: bool | None = None, flags: set[str] | None = None) -> bool:
    """What `bf16: auto` means here: on only for CPU jobs on a CPU with bf16 instructions (experiments/benchmarks;
    on a GPU it did not pay for this small network, experiments/gpu-first-session)."""
    if gpus_per_job(device, present):
        return False
    return bool((cpu_flags() if flags is None else flags) & BF16_FLAGS)


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def runs_on_cpu(device: str) -> bool:
    """Whether a job with config `device` runs on the CPU here (`auto` asks torch)."""
    if device == "auto":
        import torch

        return not torch.cuda.is_available()
    return device == "cpu"


def resolve(name: str = "auto", say=print):
    """The torch device of config `device`; the log says which one it took and why (a CPU fallback is seen)."""
    import torch

    available = torch.cuda.is_available()
    if name == "cuda" and not available:
        raise RuntimeError("config key device: cuda was asked for but torch sees no CUDA device "
                           f"({_no_cuda_reason()}); use device: auto or cpu")
    if name == "auto":
        name = "cuda" if available else "cpu"
        say(f"device: auto took {name} ({'torch sees a CUDA device' if available else _no_cuda_reason()})")
        if not available and torch.version.cuda:
            say(f"WARNING: this torch is a CUDA {torch.version.cuda} build but sees no usable GPU: "
                f"this job runs on the CPU. On a GPU node, check the NVIDIA driver (>= {MIN_DRIVER} for CUDA 13).")
    else:
        say(f"device: {name} (config key device)")
    return torch.device(name)


def _no_cuda_reason() -> str:
    """Why torch sees no CUDA device: a CPU-only build, no driver, or a driver it cannot use."""
    import torch

    if not torch.version.cuda:
        return "this torch build has no CUDA"
    try:
        count = torch.cuda.device_count()
    except RuntimeError as error:  # e.g. a driver too old for this build
        return f"CUDA unusable: {error}"
    return "no NVIDIA GPU is visible" if count == 0 else "CUDA is not available to torch"


def name(device) -> str:
    """What ran a job, for the report's provenance: the GPU's name, else the CPU's model name."""
    if device.type == "cuda":
        import torch

        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"{device.type}: {cpu_model()}"
