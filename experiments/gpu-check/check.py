"""The GPU device check (≈ 2-3 min on one card): what stacking seeds and capturing the step buy, and whether a
stack's member still trains as its lone run.

1. Images a second of batch-32 full-network training steps: K ∈ {1, 3, 18} members as one stack, eager and
   replayed from a CUDA graph, against K separate processes each training one model (the workflow today).
2. Member 0 of a stack of 3 against its net trained alone by torch's SGD on the same batches (3 steps), and seed 0 of
   a stacked job against its train_variant run on the same files (2 epochs of 300 random images, a random backbone,
   where rounding grows step by step): the largest differences in loss and weights.

From the repo root: `python experiments/gpu-check/check.py OUT` (OUT/check.json and a table on stdout);
`--device cpu --members 1 2 --steps 3` runs the same code on a CPU (no capture) to check the script itself.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "workflow"))
from cmpt726 import fake_data, finetune, models  # noqa: E402
from cmpt726.config import resolve_variant, validate_config  # noqa: E402
from cmpt726.data import prepare_cifar10, write_split  # noqa: E402
from cmpt726.stacked import Stack  # noqa: E402

BATCH = 32


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def nets(k: int, device):
    out = []
    for seed in range(k):
        net = models.build_finetune_net(None, {}, seed).to(device).to(memory_format=torch.channels_last)
        net.train()
        out.append(net)
    return out


def batch(k: int, device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    xs = torch.stack([torch.randn(BATCH, 3, 32, 32, generator=g).to(device).contiguous(memory_format=torch.channels_last)
                      for _ in range(k)])  # as train_seeds stacks its members' batches
    ys = torch.randint(0, 10, (k, BATCH), generator=g).to(device)
    return xs, ys


def stacked_rate(k: int, device, steps: int, captured: bool) -> float:
    """Images a second of one stack of k members (k × BATCH images a step)."""
    members = nets(k, device)
    stack = Stack(members, 0.9, False, [5e-4] * k)
    stack._modes_from(members[0])
    xs, ys = batch(k, device)
    lr = torch.full((k,), 0.01, device=device)
    step = stack.captured_step if captured else stack.step
    for _ in range(3):
        step(xs, ys, lr)
    sync(device)
    tic = time.perf_counter()
    for _ in range(steps):
        step(xs, ys, lr)
    sync(device)
    return k * BATCH * steps / (time.perf_counter() - tic)


def one_process(device_name: str, steps: int, barrier: str, k: int, out: str) -> None:
    """One model's plain steps (what train_variant runs), timed after every process has warmed up."""
    device = torch.device(device_name)
    [net] = nets(1, device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    xs, ys = batch(1, device)
    x, y = xs[0], ys[0]

    def step():
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    sync(device)
    Path(barrier, f"ready{os.getpid()}").touch()
    while len(list(Path(barrier).glob("ready*"))) < k:
        time.sleep(0.01)
    tic = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    Path(out).write_text(json.dumps({"start": tic, "end": time.perf_counter()}))


def separate_rate(k: int, device, steps: int) -> float:
    """Images a second of k processes training one model each at once, over the span all of them ran."""
    with tempfile.TemporaryDirectory() as tmp:
        procs = [subprocess.Popen([sys.executable, __file__, "--one-process", str(device), str(steps), tmp, str(k),
                                   f"{tmp}/out{i}.json"]) for i in range(k)]
        for proc in procs:
            if proc.wait() != 0:
                raise RuntimeError(f"a separate process failed ({proc.returncode})")
        spans = [json.loads(Path(f"{tmp}/out{i}.json").read_text()) for i in range(k)]
    wall = max(s["end"] for s in spans) - min(s["start"] for s in spans)
    return k * BATCH * steps / wall


def one_step_against_alone(device, k: int = 3) -> dict:
    """Member 0 of a stack of k after 3 steps on the same batches as its net trained alone by torch's SGD."""
    members = nets(k, device)
    lone = models.build_finetune_net(None, {}, 0).to(device).to(memory_format=torch.channels_last)
    lone.train()
    stack = Stack(members, 0.9, False, [5e-4] * k)
    stack._modes_from(members[0])
    optimizer = torch.optim.SGD(lone.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    losses = []
    for i in range(3):
        xs, ys = batch(k, device, seed=i)
        loss, _ = stack.step(xs, ys, torch.full((k,), 0.01, device=device))
        alone = F.cross_entropy(lone(xs[0]), ys[0])
        optimizer.zero_grad(set_to_none=True)
        alone.backward()
        optimizer.step()
        losses.append(abs(loss[0].item() - alone.item()) / alone.item())
    params = dict(lone.named_parameters())
    return {"loss_rel_diff_per_step": losses,
            "max_weight_diff": max((stack.params[n][0] - params[n]).abs().max().item() for n in stack.params)}


def member_against_alone(device, folder: Path) -> dict:
    """Seed 0 in a stack of 3 against seed 0 alone: 2 epochs at the assignment's setting on 300 random images."""
    root = fake_data.write_cifar10(folder / "c10", n_train=300, n_test=50)
    prepare_cifar10(root, folder / "train.npz", folder / "test.npz", folder / "summary.json", verify=False)
    write_split(folder / "train.npz", folder / "split.npz", n_val=60, seed=0)
    fake_data.write_backbone(folder / "backbone.pt")
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["variants"] = {"all": {"train": "all", "epochs": 2, "validation": 60}}
    config["tuning"] = {"enabled": False}
    validate_config(config)
    settings = resolve_variant(config, "all")  # the assignment's setting (lr 0.001, batch 32), 2 epochs
    common = {"backbone": folder / "backbone.pt", "train": folder / "train.npz", "split": folder / "split.npz"}
    alone = finetune.train_variant({"seed": 0, "settings": settings, "device": device.type},
                                   {**common, "checkpoint": folder / "alone.pt", "epochs": folder / "alone.tsv"})
    files = {name: [folder / f"s{s}{suffix}" for s in range(3)]
             for name, suffix in (("checkpoint", ".pt"), ("epochs", ".tsv"), ("summary", ".json"))}
    together = finetune.train_seeds({"seeds": [0, 1, 2], "settings": settings, "device": device.type},
                                    {**common, **files})
    a = torch.load(folder / "alone.pt", weights_only=True)["state_dict"]
    b = torch.load(folder / "s0.pt", weights_only=True)["state_dict"]
    return {"train_loss_rel_diff": max(abs(x["train_loss"] - y["train_loss"]) / abs(y["train_loss"])
                                       for x, y in zip(together[0], alone)),
            "val_acc_diff": max(abs(x["val_acc"] - y["val_acc"]) for x, y in zip(together[0], alone)),
            "max_weight_diff": max((a[k].float() - b[k].float()).abs().max().item() for k in a)}


def main() -> None:
    if sys.argv[1:2] == ["--one-process"]:
        device, steps, barrier, k, out = sys.argv[2:7]
        return one_process(device, int(steps), barrier, int(k), out)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 3, 18])
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    found = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
             "torch": torch.__version__, "batch": BATCH, "steps": args.steps, "images_per_second": {}}
    print(f"{'K':>3} {'stacked':>10} {'captured':>10} {'separate':>10}   images/s, batch {BATCH} a member")
    for k in args.members:
        row = {"stacked": stacked_rate(k, device, args.steps, captured=False),
               "captured": stacked_rate(k, device, args.steps, captured=True) if device.type == "cuda" else None,
               "separate": separate_rate(k, device, args.steps)}
        found["images_per_second"][k] = row
        print(f"{k:>3} " + " ".join(f"{v:>10.0f}" if v else f"{'-':>10}" for v in row.values()), flush=True)
    found["three_steps_against_alone"] = one_step_against_alone(device)
    print("member 0 of 3, three steps, vs alone:", found["three_steps_against_alone"])
    with tempfile.TemporaryDirectory() as tmp:
        found["member_against_alone"] = member_against_alone(device, Path(tmp))
    print("seed 0 of a stacked job vs its train_variant run, 2 epochs:", found["member_against_alone"])
    (out / "check.json").write_text(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
