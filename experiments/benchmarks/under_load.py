"""A CPU training step beside a busy process: how much slower than on a quiet machine, by OpenMP wait policy.

    .venv/bin/python experiments/benchmarks/under_load.py [--threads 2] [--steps 30] [--batch 32]

Each measurement is a fresh process (the wait policy is read when OpenMP starts) that times `--steps` full-network
ResNet-20 training steps on random 32×32 images (median seconds a step after 5 warm-up steps). "Busy" runs a
second such process beside it, with the same thread count, for the whole measurement: two jobs on a machine with
as many cores as one job's threads, as when a test run or another job shares the machine. The workflow sets
OMP_WAIT_POLICY=PASSIVE for its jobs (Snakefile); ACTIVE is libgomp's spinning wait. The target: busy within 2×
of quiet with the workflow's policy.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

STEP = """
import statistics, sys, time
import torch
sys.path.insert(0, {workflow!r})
from cmpt726.models import build_finetune_net
torch.set_num_threads({threads})
torch.manual_seed(0)
net = build_finetune_net(None, {{}}, seed=0)
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
x, y = torch.randn({batch}, 3, 32, 32), torch.randint(0, 10, ({batch},))
times = []
for step in range({steps} + 5):
    start = time.perf_counter()
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
    times.append(time.perf_counter() - start)
print(statistics.median(times[5:]))
"""


def step_seconds(policy: str, args, forever: bool = False):
    """A child timing training steps with OMP_WAIT_POLICY=policy (forever: the busy neighbour, never ends)."""
    env = {**os.environ, "OMP_WAIT_POLICY": policy, "OMP_NUM_THREADS": str(args.threads)}
    code = STEP.format(workflow=str(REPO / "workflow"), threads=args.threads, batch=args.batch,
                       steps=10**9 if forever else args.steps)
    if forever:
        return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL)
    return float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                check=True).stdout)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; {args.threads} threads a job, "
          f"batch {args.batch}, median of {args.steps} steps")
    print("policy  | quiet (s/step) | busy (s/step) | busy / quiet")
    for policy in ("PASSIVE", "ACTIVE"):
        quiet = step_seconds(policy, args)
        neighbour = step_seconds(policy, args, forever=True)
        try:
            time.sleep(3)  # the neighbour past its start-up
            busy = step_seconds(policy, args)
        finally:
            neighbour.kill()
            neighbour.wait()
        print(f"{policy:7} | {quiet:14.3f} | {busy:13.3f} | {busy / quiet:12.1f}")


if __name__ == "__main__":
    main()
