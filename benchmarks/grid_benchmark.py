#!/usr/bin/env python
"""Side-by-side benchmark of the fine-tuning grid (issue 6) on the CPU or a GPU, reported as ratios.

1. training-step throughput of the workflow's loop vs a bare PyTorch loop (same model, batch);
2. a starter-style implementation (DataLoader + per-image PIL transforms, batch 32, the full
   network forward and backward every epoch, BatchNorm drifting) vs the workflow's functions
   (features cached once, lean loop) on the 8-variant grid at a reduced size, fp32, then the
   workflow again with bf16 autocast;
3. feature extraction, head training, full training and evaluation times separately;
4. peak memory (max RSS) of one training job in a fresh process.
Then the full grid (50,000 images, the configured epochs) is extrapolated from 2.

    .venv/bin/python benchmarks/grid_benchmark.py [--cifar10 DIR] [--backbone PTH] [--train 5000] [--test 2000]
    python3 benchmarks/grid_benchmark.py --device cuda --train 50000 --test 10000 --epochs 10   # a GPU box

Without --cifar10 it uses ../shared/data (restored to a temp folder) when present, else random
images; without --backbone a randomly initialised ResNet-20 (throughput does not depend on it;
accuracy comparisons then only check that both implementations agree).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEVICE = "cpu"  # --device
sys.path.insert(0, str(REPO / "workflow"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from cmpt726 import models  # noqa: E402
from cmpt726.config import resolve_variant, uses_cached_features  # noqa: E402
from cmpt726.data import load_arrays, prepare_cifar10  # noqa: E402
from cmpt726.evaluation import evaluate_variant  # noqa: E402
from cmpt726.training import ImageBatches, extract_features, train_variant  # noqa: E402


# --------------------------------------------------------------------------- inputs
def real_or_random_cifar10(args, work: Path) -> Path:
    if args.cifar10:
        return Path(args.cifar10)
    shared = REPO.parent / "shared" / "data" / "restore.py"
    if shared.exists():
        subprocess.run([sys.executable, str(shared), str(work), "--only", "cifar10"], check=True, capture_output=True)
        return work / "cifar-10-batches-py"
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import write_cifar10

    return write_cifar10(work / "random", n_train=args.train, n_test=args.test)


def prepared_subset(args, work: Path):
    folder = real_or_random_cifar10(args, work)
    prepare_cifar10(folder, work / "train.npz", work / "test.npz", work / "summary.json", verify=False,
                    subset_train=args.train, subset_test=args.test)
    backbone = work / "backbone.pt"
    if args.backbone:
        torch.save(models.load_backbone_state(args.backbone), backbone)
    else:
        torch.manual_seed(0)
        torch.save(models.cifar_resnet20(100).state_dict(), backbone)
    return folder, backbone


def grid_settings(epochs: int, bf16: bool = False) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    out = {}
    for name in config["variants"]:
        s = resolve_variant(config, name)
        s.update(epochs=min(s["epochs"], epochs), bf16=bf16)
        out[name] = s
    return out, config


# --------------------------------------------------------------------------- 1. loop throughput
def bare_loop_throughput(train_path, backbone, batch_size, n_steps) -> float:
    images, labels, _ = load_arrays(train_path)
    torch.manual_seed(0)
    model = models.build_finetune_net(models.load_backbone_state(backbone), {"hidden": []}, 0)
    model.to(DEVICE, memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    x = ImageBatches(torch.from_numpy(images).to(DEVICE), [0.49, 0.48, 0.45], [0.2, 0.2, 0.2], channels_last=True)
    y = torch.from_numpy(labels).to(DEVICE)
    perm = torch.randperm(len(y), device=DEVICE)
    steps = [perm[i:i + batch_size] for i in range(0, len(perm) - batch_size + 1, batch_size)]
    steps = (steps * (n_steps // max(len(steps), 1) + 1))[:n_steps]  # same step count as the workflow side
    for index in steps[:5]:  # warm-up
        loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
        opt.zero_grad()
        loss.backward()
        opt.step()
    synchronize()
    tic = time.perf_counter()
    for index in steps:
        loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
        opt.zero_grad()
        loss.backward()
        opt.step()
    synchronize()
    return len(steps) * batch_size / (time.perf_counter() - tic)


def synchronize():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def workflow_loop_throughput(work, backbone, settings, n_images) -> float:
    """The workflow's train_variant on n_images for one epoch; a 10-image test set keeps evaluation out."""
    images, labels, classes = load_arrays(work / "train.npz")
    from cmpt726.data import save_arrays

    n_images = min(n_images, len(labels))

    save_arrays(work / "tp_train.npz", images[:n_images], labels[:n_images], classes)
    save_arrays(work / "tp_test.npz", images[:10], labels[:10], classes)
    s = dict(settings, epochs=1)
    history = train_variant(backbone, work / "tp_train.npz", work / "tp_test.npz", work / "tp.pt", work / "tp.tsv",
                            s, seed=0, device=DEVICE)
    return n_images / history[0]["seconds"]


# --------------------------------------------------------------------------- 2. starter-style grid
def starter_style_variant(train_path, test_path, backbone, s, seed) -> float:
    """The course starter's way: PIL per image, DataLoader, full forward/backward, BN drifting."""
    import torchvision.transforms as T
    from PIL import Image

    class ArrayDataset(torch.utils.data.Dataset):
        def __init__(self, path):
            images, self.labels, _ = load_arrays(path)
            self.images = images.transpose(0, 2, 3, 1)  # HWC, as torchvision's CIFAR10 keeps them
            self.transform = T.Compose([T.ToTensor(), T.Normalize(s["normalize"]["mean"], s["normalize"]["std"])])

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])

    torch.manual_seed(seed)
    model = models.build_finetune_net(models.load_backbone_state(backbone), s["head"], seed).to(DEVICE)
    trained = model.head.parameters() if s["train"] == "head" else (
        model.backbone.parameters() if s["train"] == "backbone" else model.parameters())
    opt = torch.optim.SGD(trained, lr=s["lr"], momentum=s["momentum"], weight_decay=s["weight_decay"])
    loader = torch.utils.data.DataLoader(ArrayDataset(train_path), batch_size=32, shuffle=True, num_workers=2)
    for _ in range(s["epochs"]):
        model.train()  # the starter never froze BatchNorm: statistics drift even when "frozen"
        for x, y in loader:
            x, y = x.to(DEVICE), y.to(DEVICE)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()  # gradients through the whole network, whatever the optimiser holds
            opt.step()
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(ArrayDataset(test_path), batch_size=32, num_workers=2):
            correct += (model(x.to(DEVICE)).argmax(1).cpu() == y).sum().item()
            total += len(y)
    return 100.0 * correct / total


def starter_grid(work, backbone, grid) -> dict:
    out = {}
    for name, s in grid.items():
        tic = time.perf_counter()
        acc = starter_style_variant(work / "train.npz", work / "test.npz", backbone, s, seed=0)
        out[name] = {"accuracy": acc, "seconds": time.perf_counter() - tic}
        print(f"  starter  {name:14s} {acc:6.2f}%  {out[name]['seconds']:6.1f} s", flush=True)
    return out


def workflow_grid(work, backbone, grid, tag) -> dict:
    """The workflow's own functions, in the order Snakemake runs them (features once, shared)."""
    out = {"variants": {}, "stages": {"features": 0.0, "head_training": 0.0, "full_training": 0.0, "evaluation": 0.0}}
    normalize = next(iter(grid.values()))["normalize"]
    tic = time.perf_counter()
    for split in ("train", "test"):
        extract_features(backbone, work / f"{split}.npz", work / f"feat_{tag}_{split}.npz", normalize, DEVICE)
    out["stages"]["features"] = time.perf_counter() - tic
    for name, s in grid.items():
        cached = uses_cached_features(s)
        train_in = work / (f"feat_{tag}_train.npz" if cached else "train.npz")
        test_in = work / (f"feat_{tag}_test.npz" if cached else "test.npz")
        tic = time.perf_counter()
        train_variant(backbone, train_in, test_in, work / f"{tag}_{name}.pt", work / f"{tag}_{name}.tsv", s, seed=0,
                      device=DEVICE)
        trained = time.perf_counter()
        metrics = evaluate_variant(work / f"{tag}_{name}.pt", test_in, work / f"{tag}_{name}.scores.tsv",
                                   work / f"{tag}_{name}.json", s["normalize"], s["channels_last"], device=DEVICE)
        done = time.perf_counter()
        out["stages"]["head_training" if cached else "full_training"] += trained - tic
        out["stages"]["evaluation"] += done - trained
        out["variants"][name] = {"accuracy": metrics["accuracy"], "seconds": done - tic}
        print(f"  workflow {tag:4s} {name:14s} {metrics['accuracy']:6.2f}%  {done - tic:6.1f} s", flush=True)
    return out


# --------------------------------------------------------------------------- 4. memory
def peak_memory_mb(work, backbone, s) -> float:
    code = (f"import sys; sys.path.insert(0, {str(REPO / 'workflow')!r});"
            "from cmpt726.training import train_variant;"
            f"train_variant({str(backbone)!r}, {str(work / 'train.npz')!r}, {str(work / 'test.npz')!r},"
            f" {str(work / 'mem.pt')!r}, {str(work / 'mem.tsv')!r}, {json.dumps(dict(s, epochs=1))}, 0, {DEVICE!r})")
    code = code.replace("true", "True").replace("false", "False").replace("null", "None")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cifar10", help="folder holding the CIFAR-10 python batches")
    ap.add_argument("--backbone", help="a CIFAR-100 ResNet-20 state_dict")
    ap.add_argument("--train", type=int, default=5000)
    ap.add_argument("--test", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder, backbone = prepared_subset(args, work)
        grid, config = grid_settings(args.epochs)
        all_settings = grid["all"]
        where = torch.cuda.get_device_name() if DEVICE == "cuda" else platform.processor() or platform.machine()
        print(f"# grid benchmark on {DEVICE}: {where}, {args.threads} threads, "
              f"torch {torch.__version__}, data {folder.name}, {args.train} train / {args.test} test, "
              f"{args.epochs} epochs")

        print("1. loop throughput (batch 32, 'all', channels_last)")
        n_steps = min(80 * 32, args.train) // 32
        bare = bare_loop_throughput(work / "train.npz", backbone, 32, n_steps=n_steps)
        lean = workflow_loop_throughput(work, backbone, all_settings, n_images=min(80 * 32, args.train))
        bare2 = bare_loop_throughput(work / "train.npz", backbone, 32, n_steps=n_steps)  # bracket against drift
        bare = (bare + bare2) / 2
        print(f"  bare {bare:.0f} img/s, workflow {lean:.0f} img/s, ratio {lean / bare:.3f}")

        print("2. 8-variant grid")
        ours = workflow_grid(work, backbone, grid, "fp32")
        starter = starter_grid(work, backbone, grid)
        bf16_grid, _ = grid_settings(args.epochs, bf16=True)
        ours_bf16 = workflow_grid(work, backbone, bf16_grid, "bf16")

        t_starter = sum(v["seconds"] for v in starter.values())
        t_ours = sum(ours["stages"].values())
        t_bf16 = sum(ours_bf16["stages"].values())
        mem = peak_memory_mb(work, backbone, all_settings)

        # Extrapolation to the full grid: per-image costs of each stage × the full sizes.
        full_epochs = {name: resolve_variant(config, name)["epochs"] for name in grid}
        n_tr, n_te = args.train, args.test
        scale_train = {name: 50000 / n_tr * full_epochs[name] / grid[name]["epochs"] for name in grid}
        est = ours["stages"]["features"] * (60000 / (n_tr + n_te))
        for name, s in grid.items():
            est += ours["variants"][name]["seconds"] * scale_train[name]
        est_starter = sum(starter[n]["seconds"] * scale_train[n] for n in grid)

    result = {
        "device": DEVICE, "machine": platform.processor() or platform.machine(), "threads": args.threads,
        "torch": torch.__version__, "train": args.train, "test": args.test, "epochs": args.epochs,
        "throughput": {"bare_img_s": bare, "workflow_img_s": lean, "ratio": lean / bare},
        "grid_seconds": {"starter": t_starter, "workflow_fp32": t_ours, "workflow_bf16": t_bf16},
        "speedup": {"fp32": t_starter / t_ours, "bf16": t_starter / t_bf16},
        "stages_fp32": ours["stages"], "stages_bf16": ours_bf16["stages"],
        "accuracy": {n: {"starter": starter[n]["accuracy"], "fp32": ours["variants"][n]["accuracy"],
                         "bf16": ours_bf16["variants"][n]["accuracy"]} for n in grid},
        "peak_rss_mb_train_all": mem,
        "extrapolated_full_grid_hours": {"workflow_fp32": est / 3600, "starter": est_starter / 3600},
    }
    print("\n## Results\n")
    print(f"| measure | value |\n|---|---|")
    print(f"| loop throughput: workflow / bare PyTorch | {lean:.0f} / {bare:.0f} img/s = **{lean / bare:.2f}×** |")
    print(f"| grid: starter-style / workflow fp32 | {t_starter:.1f} s / {t_ours:.1f} s = **{t_starter / t_ours:.2f}×** |")
    print(f"| grid: starter-style / workflow bf16 | {t_starter:.1f} s / {t_bf16:.1f} s = **{t_starter / t_bf16:.2f}×** |")
    for stage, sec in ours["stages"].items():
        print(f"| fp32 stage: {stage.replace('_', ' ')} | {sec:.1f} s |")
    print(f"| peak RSS of a training job ('all', 1 epoch) | {mem:.0f} MB |")
    print(f"| full grid extrapolated (50,000 images, configured epochs), workflow fp32 | {est / 3600:.2f} h |")
    print(f"| full grid extrapolated, starter-style | {est_starter / 3600:.2f} h |")
    print("\n| variant | starter-style acc. | workflow fp32 | workflow bf16 |\n|---|---|---|---|")
    for n, a in result["accuracy"].items():
        print(f"| {n} | {a['starter']:.2f} | {a['fp32']:.2f} | {a['bf16']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
