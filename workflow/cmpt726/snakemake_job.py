"""The one place that knows Snakemake's `script:` object: every script is `run(snakemake, lambda smk: f(...))`.

The log gets the output and the traceback, the terminal one line; torch gets the rule's threads; a job whose
inputs changed while it ran fails, so that its outputs are not taken as up to date.
"""

import contextlib
import os
import sys
import traceback

from .device import BF16_FLAGS, cpu_flags, runs_on_cpu


def set_threads(threads: int) -> None:
    """Pin intra-op threads before torch starts its pool (and after, if it already did)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def asks_bf16(value) -> bool:
    """Whether any `bf16: true` lies in a rule's params, however deeply nested."""
    if isinstance(value, dict):
        return value.get("bf16") is True or any(asks_bf16(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(asks_bf16(v) for v in value)
    return False


def slow_bf16_warning(params: dict, on_cpu: bool, flags: set[str]) -> str | None:
    """The warning for a job that asks for bf16 autocast on a CPU without bf16 instructions, else None."""
    if not on_cpu or not flags or flags & BF16_FLAGS or not asks_bf16(params):
        return None
    return ("WARNING: bf16 autocast asked for on a CPU without bf16 instructions (no avx512_bf16, amx_bf16 or "
            "bf16 flag): torch emulates it, about 10x slower than fp32 (experiments/benchmarks/README.md). For this machine "
            "set bf16: false where the config sets it (training, variants, tuning.settings, backbone.pretrain).")


def stamps(paths) -> dict[str, tuple | None]:
    """Each path's (size, mtime_ns), None where it is missing: what a job read, to compare after it ran."""
    found = {}
    for path in map(str, paths):
        try:
            info = os.stat(path)
            found[path] = (info.st_size, info.st_mtime_ns)
        except OSError:
            found[path] = None
    return found


def paths(smk) -> dict:
    """A job's named inputs and outputs as one dict (name → path or list of paths): what entry points take."""
    return {**dict(smk.input.items()), **dict(smk.output.items())}


def run(smk, main) -> None:
    set_threads(max(1, int(smk.threads)))
    log_path = smk.log[0] if len(smk.log) else os.devnull
    terminal = sys.stderr
    params = dict(smk.params.items()) if hasattr(getattr(smk, "params", None), "items") else {}
    # The device and the CPU's flags are looked up only for the jobs that ask for bf16.
    spec = params.get("spec")
    device = params.get("device") or (spec.get("device") if isinstance(spec, dict) else None) or "auto"
    warning = slow_bf16_warning(params, runs_on_cpu(str(device)), cpu_flags()) if asks_bf16(params) else None
    if warning:
        print(f"rule {smk.rule}: {warning}", file=terminal)
    with open(log_path, "w", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        if warning:
            print(warning)
        print(f"threads {max(1, int(smk.threads))}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
        try:
            inputs = stamps(getattr(smk, "input", []))
            main(smk)
            # A file replaced while the job read it: the outputs may mix old and new, and its new mtime may be
            # older than theirs, so Snakemake would call them up to date. Failing removes them.
            if moved := [path for path, stamp in stamps(inputs).items() if stamp != inputs[path]]:
                raise RuntimeError(f"input changed while the job read it: {', '.join(moved)}; run again")
        except Exception as error:  # the job fails either way; say why in one line where the user looks
            traceback.print_exc(file=log)
            print(f"ERROR in rule {smk.rule}: {error} (log: {log_path})", file=terminal)
            sys.exit(1)
