#!/usr/bin/env python
r"""Side-by-side benchmark of the fine-tuning grid on the CPU or a GPU, reported as ratios.

1. training-step throughput of the workflow's loop vs a bare PyTorch loop (same model, batch);
2. a starter-style implementation (DataLoader + per-image PIL transforms, batch 32, the full
   network forward and backward every epoch, BatchNorm drifting) vs the workflow on the 8-variant
   grid at a reduced size: the workflow's functions as Snakemake schedules its jobs (features
   cached once; the jobs one at a time with all threads, then `threads / --threads-per-job` at
   once, as threads_per_job makes Snakemake do on a CPU-only machine), fp32 and bf16 autocast; and
   a real `snakemake --cores THREADS` run of the same grid (every job its own process);
3. feature extraction, head training, full training and evaluation times separately;
4. peak memory (max RSS) of one training job in a fresh process.
Then the full grid (50,000 images, the configured epochs) is extrapolated from 2.

    .venv/bin/python experiments/benchmarks/grid_benchmark.py [--cifar10 DIR] [--backbone PTH] [--train 5000] [--test 2000]
    # a GPU box (four jobs share the card; no Snakemake installed there):
    python3 experiments/benchmarks/grid_benchmark.py --device cuda --threads 8 --threads-per-job 2 --no-snakemake \
        --train 50000 --test 10000 --epochs 10

Without --cifar10 it uses ../shared/data (restored to a temp folder) when present, else random
images; without --backbone a randomly initialised ResNet-20 (throughput does not depend on it;
accuracy comparisons then only check that both implementations agree).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEVICE = "cpu"  # --device
sys.path.insert(0, str(REPO / "workflow"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from cmpt726 import models  # noqa: E402
from cmpt726.config import resolve_variant, uses_cached_features, validate_config  # noqa: E402
from cmpt726.data import load_arrays, prepare_cifar10  # noqa: E402
from cmpt726.evaluation import evaluate_variant  # noqa: E402
from cmpt726.features import extract_features  # noqa: E402
from cmpt726.finetune import train_variant  # noqa: E402
from cmpt726.runtime import ImageBatches  # noqa: E402


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


def benchmark_config() -> dict:
    """config.yaml as the benchmark measures it: the eight variants without augmentation (the starter-style
    loop has none), one seed, no validation split (the starter trains on every image), and no tuning (it measures
    the grid; tuning needs a validation split)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["variants"] = {name: v for name, v in config["variants"].items() if "augment" not in (v or {})}
    config["training"]["validation"] = 0
    config["tuning"]["enabled"] = False
    config["seeds"] = [0]
    return config


def grid_settings(epochs: int, bf16: bool = False) -> dict:
    config = benchmark_config()
    validate_config(config)
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
    """The workflow's train_variant on n_images for one epoch (no validation split: the loop alone)."""
    images, labels, classes = load_arrays(work / "train.npz")
    from cmpt726.data import save_arrays

    n_images = min(n_images, len(labels))

    save_arrays(work / "tp_train.npz", images[:n_images], labels[:n_images], classes)
    s = dict(settings, epochs=1)
    history = train(backbone, work / "tp_train.npz", work / "tp.pt", work / "tp.tsv", s, seed=0, device=DEVICE)
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


def train(backbone, train_path, checkpoint, epochs_path, settings, seed=0, device="cpu") -> list[dict]:
    """finetune.train_variant as a training job calls it: the spec and the job's paths."""
    return train_variant({"seed": seed, "settings": settings, "device": device},
                         {"backbone": backbone, "train": train_path, "checkpoint": checkpoint, "epochs": epochs_path})


def _run_job(stage: str, args: tuple) -> tuple[float, float | None]:
    """One workflow job in a worker process (what one Snakemake job runs): its seconds, and the
    accuracy for an evaluation."""
    tic = time.perf_counter()
    accuracy = None
    if stage == "features":
        extract_features(*args, DEVICE)
    elif stage == "evaluation":
        accuracy = evaluate_variant(*args, device=DEVICE)["accuracy"]
    else:
        train(*args, seed=0, device=DEVICE)
    return time.perf_counter() - tic, accuracy


def _worker_init(threads: int, device: str):
    global DEVICE
    DEVICE = device
    torch.set_num_threads(threads)
    sys.stdout = open(os.devnull, "w")  # the jobs' progress lines go to their logs in the workflow


def workflow_grid(work, backbone, grid, tag, jobs_at_once: int, threads: int) -> dict:
    """The workflow's own functions as Snakemake schedules them: the jobs of the DAG (features once,
    shared; a training and an evaluation job per variant) on `jobs_at_once` workers of `threads`
    threads each, a job starting as soon as its inputs exist (what --cores N with threads_per_job
    does on a CPU-only machine). Worker start-up is outside the clock; the real Snakemake run
    (snakemake_grid) includes every job's process start."""
    import concurrent.futures as cf
    import multiprocessing

    normalize = next(iter(grid.values()))["normalize"]
    feats = {split: work / f"feat_{tag}_{split}.npz" for split in ("train", "test")}
    jobs, needs = {}, {}
    for split in ("train", "test"):
        jobs[f"features/{split}"] = ("features", None, (backbone, work / f"{split}.npz", feats[split], normalize))
        needs[f"features/{split}"] = []
    for name, s in grid.items():
        cached = uses_cached_features(s)
        train_in, test_in = (feats["train"], feats["test"]) if cached else (work / "train.npz", work / "test.npz")
        ckpt = work / f"{tag}_{name}.pt"
        jobs[f"train/{name}"] = ("head_training" if cached else "full_training", name,
                                 (backbone, train_in, ckpt, work / f"{tag}_{name}.tsv", s))
        needs[f"train/{name}"] = ["features/train", "features/test"] if cached else []
        jobs[f"evaluate/{name}"] = ("evaluation", name, (ckpt, test_in, work / f"{tag}_{name}.scores.tsv",
                                                        work / f"{tag}_{name}.json", s["normalize"],
                                                        s["channels_last"]))
        needs[f"evaluate/{name}"] = [f"train/{name}"]

    out = {"variants": {n: {"seconds": 0.0, "train_seconds": 0.0, "eval_seconds": 0.0} for n in grid},
           "stages": {"features": 0.0, "head_training": 0.0, "full_training": 0.0, "evaluation": 0.0}}
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as Snakemake's jobs are
    with cf.ProcessPoolExecutor(jobs_at_once, mp_context=context, initializer=_worker_init,
                                initargs=(threads, DEVICE)) as pool:
        list(pool.map(time.sleep, [0.5] * jobs_at_once))  # start the workers before the clock
        done, running, tic = set(), {}, time.perf_counter()
        while len(done) < len(jobs):
            for key in jobs:
                if key not in done and key not in running.values() and all(n in done for n in needs[key]) \
                        and len(running) < jobs_at_once:
                    stage, _, args = jobs[key]
                    running[pool.submit(_run_job, stage, args)] = key
            finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                key = running.pop(future)
                done.add(key)
                stage, name, _ = jobs[key]
                seconds, accuracy = future.result()
                out["stages"][stage] += seconds
                if name is None:  # a feature job, shared by the frozen-backbone variants
                    continue
                variant = out["variants"][name]
                variant["seconds"] += seconds
                variant["eval_seconds" if stage == "evaluation" else "train_seconds"] += seconds
                if stage == "evaluation":
                    variant["accuracy"] = accuracy
                    print(f"  workflow {tag:4s} {name:14s} {accuracy:6.2f}%  {variant['seconds']:6.1f} s", flush=True)
        out["wall"] = time.perf_counter() - tic
    return out


def snakemake_grid(work, folder, backbone, args, threads_per_job: int) -> tuple[float, float]:
    """The real thing: `snakemake --cores N` on the grid's evaluation targets (train and evaluate
    every variant, features cached), data and backbone prepared beforehand and not timed. Every job
    is its own Python process, so this includes the start-up the in-process schedule leaves out."""
    project = work / "snakemake"
    project.mkdir()
    config = benchmark_config()
    config["data"]["cifar10"] = {"root": str(folder.parent), "verify": False}
    config["data"]["subset"] = {"train": args.train, "test": args.test}
    config["backbone"] = {"source": "path", "path": str(backbone)}
    config["training"]["epochs"] = args.epochs
    config.update(device=DEVICE, threads_per_job=threads_per_job)
    (project / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow")}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", str(args.threads)]
    if DEVICE == "cuda":  # let the jobs share the card (profiles/default allows one GPU job at a time)
        cmd += ["--resources", f"gpu={max(1, args.threads // threads_per_job)}"]

    def snakemake(*targets):
        proc = subprocess.run([*cmd, *targets], cwd=project, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"snakemake {' '.join(targets)} failed:\n{proc.stderr[-3000:]}")

    snakemake("results/data/cifar10/train.npz", "results/data/cifar10/test.npz", "results/backbone/path.pt")
    targets = [f"results/metrics/{name}/seed0.json" for name in config["variants"]]
    tic = time.perf_counter()
    snakemake(*targets)
    seconds = time.perf_counter() - tic
    # Snakemake's fixed start-up (plugins, DAG, nothing to run) within that: a dry run of the finished grid.
    tic = time.perf_counter()
    snakemake("-n", *targets)
    return seconds, time.perf_counter() - tic


# --------------------------------------------------------------------------- 4. memory
def peak_memory_mb(work, backbone, s) -> float:
    code = (f"import sys; sys.path.insert(0, {str(REPO / 'workflow')!r});"
            "from cmpt726.finetune import train_variant;"
            f"train_variant({{'seed': 0, 'device': {DEVICE!r}, 'settings': {json.dumps(dict(s, epochs=1))}}},"
            f" {{'backbone': {str(backbone)!r}, 'train': {str(work / 'train.npz')!r},"
            f" 'checkpoint': {str(work / 'mem.pt')!r}, 'epochs': {str(work / 'mem.tsv')!r}}})")
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
    ap.add_argument("--threads-per-job", type=int, default=1,
                    help="the workflow's threads_per_job: --threads / this many jobs run side by side")
    ap.add_argument("--no-snakemake", action="store_true", help="skip the real Snakemake run of the grid")
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
        # This VM's speed drifts by ±10 % from minute to minute: alternate the two loops and take medians.
        rounds = [(bare_loop_throughput(work / "train.npz", backbone, 32, n_steps=n_steps),
                   workflow_loop_throughput(work, backbone, all_settings, n_images=n_steps * 32)) for _ in range(5)]
        bare, lean = (float(np.median(column)) for column in zip(*rounds))
        ratio = float(np.median([w / b for b, w in rounds]))
        print("  rounds (bare, workflow img/s): " + ", ".join(f"({b:.0f}, {w:.0f})" for b, w in rounds))
        print(f"  median: bare {bare:.0f} img/s, workflow {lean:.0f} img/s, median ratio {ratio:.3f}")

        print("2. 8-variant grid")
        packed = (max(1, args.threads // args.threads_per_job), min(args.threads_per_job, args.threads))
        one_at_a_time = workflow_grid(work, backbone, grid, "seq", 1, args.threads)
        ours = workflow_grid(work, backbone, grid, "fp32", *packed)
        starter = starter_grid(work, backbone, grid)
        bf16_grid, _ = grid_settings(args.epochs, bf16=True)
        ours_bf16 = workflow_grid(work, backbone, bf16_grid, "bf16", *packed)
        real, startup = (None, None) if args.no_snakemake else snakemake_grid(work, folder, backbone, args, packed[1])
        mem = peak_memory_mb(work, backbone, all_settings)

    t_starter = sum(v["seconds"] for v in starter.values())
    t_seq, t_ours, t_bf16 = one_at_a_time["wall"], ours["wall"], ours_bf16["wall"]

    # Extrapolation to the full grid (50,000 training and 10,000 test images, the configured
    # epochs): each job's seconds × its size ratio, the job-seconds spread over the workers (the
    # four equal image-variant jobs dominate and pack evenly). Training jobs scale with their
    # training images × epochs, which overstates their per-epoch test passes (those scale 5× per
    # epoch from 2,000 to 10,000 test images, training 10× from 5,000 to 50,000).
    full_epochs = {name: resolve_variant(config, name)["epochs"] for name in grid}
    n_tr, n_te = args.train, args.test
    scale_train = {name: 50000 / n_tr * full_epochs[name] / grid[name]["epochs"] for name in grid}

    def full_grid_hours(variants, feature_seconds=0.0, workers=1):
        job_seconds = feature_seconds * 60000 / (n_tr + n_te)
        for name, v in variants.items():
            job_seconds += v["train_seconds"] * scale_train[name] + v.get("eval_seconds", 0.0) * 10000 / n_te
        return job_seconds / workers / 3600

    # The starter's variants are single runs (training and its test pass): all scaled as training.
    est = {"starter": full_grid_hours({n: {"train_seconds": v["seconds"]} for n, v in starter.items()}),
           "workflow_fp32_one_at_a_time": full_grid_hours(one_at_a_time["variants"],
                                                          one_at_a_time["stages"]["features"]),
           "workflow_fp32": full_grid_hours(ours["variants"], ours["stages"]["features"], packed[0])}

    result = {
        "device": DEVICE, "machine": platform.processor() or platform.machine(), "threads": args.threads,
        "jobs_at_once": packed[0], "threads_per_job": packed[1],
        "torch": torch.__version__, "train": args.train, "test": args.test, "epochs": args.epochs,
        "throughput": {"bare_img_s": bare, "workflow_img_s": lean, "ratio": ratio, "rounds": rounds},
        "grid_seconds": {"starter": t_starter, "workflow_fp32_one_at_a_time": t_seq, "workflow_fp32": t_ours,
                         "workflow_bf16": t_bf16, "snakemake_fp32": real, "snakemake_startup": startup},
        "speedup": {"fp32_one_at_a_time": t_starter / t_seq, "fp32": t_starter / t_ours, "bf16": t_starter / t_bf16,
                    "snakemake_fp32": t_starter / real if real else None},
        "stages_fp32_job_seconds": ours["stages"], "stages_bf16_job_seconds": ours_bf16["stages"],
        "stages_fp32_one_at_a_time": one_at_a_time["stages"],
        "accuracy": {n: {"starter": starter[n]["accuracy"], "fp32_one_at_a_time": one_at_a_time["variants"][n]["accuracy"],
                         "fp32": ours["variants"][n]["accuracy"], "bf16": ours_bf16["variants"][n]["accuracy"]}
                     for n in grid},
        "peak_rss_mb_train_all": mem,
        "extrapolated_full_grid_hours": est,
    }
    k, t = packed
    print("\n## Results\n")
    print("| measure | value |\n|---|---|")
    print(f"| loop throughput: workflow / bare PyTorch (medians of 5 alternating rounds; median ratio) | "
          f"{lean:.0f} / {bare:.0f} img/s, **{ratio:.2f}×** |")
    print(f"| grid: starter-style / workflow fp32, one job at a time ({args.threads} threads) | "
          f"{t_starter:.1f} s / {t_seq:.1f} s = **{t_starter / t_seq:.2f}×** |")
    print(f"| grid: starter-style / workflow fp32, {k} jobs at once × {t} thread(s) | "
          f"{t_starter:.1f} s / {t_ours:.1f} s = **{t_starter / t_ours:.2f}×** |")
    print(f"| grid: starter-style / workflow bf16, {k} jobs at once × {t} thread(s) | "
          f"{t_starter:.1f} s / {t_bf16:.1f} s = **{t_starter / t_bf16:.2f}×** |")
    if real:
        print(f"| grid: starter-style / real `snakemake --cores {args.threads}` fp32 (threads_per_job {t}, "
              f"every job its own process) | {t_starter:.1f} s / {real:.1f} s = **{t_starter / real:.2f}×** |")
        print(f"| … of which Snakemake's start-up (a dry run of the finished grid) | {startup:.1f} s |")
    for stage, sec in one_at_a_time["stages"].items():
        print(f"| fp32 stage, one job at a time: {stage.replace('_', ' ')} | {sec:.1f} s |")
    for stage, sec in ours["stages"].items():
        print(f"| fp32 stage, {k} at once (job-seconds): {stage.replace('_', ' ')} | {sec:.1f} s |")
    print(f"| peak RSS of a training job ('all', 1 epoch) | {mem:.0f} MB |")
    print(f"| full grid extrapolated (50,000 images, configured epochs): starter-style | {est['starter']:.2f} h |")
    print(f"| full grid extrapolated: workflow fp32, one job at a time | {est['workflow_fp32_one_at_a_time']:.2f} h |")
    print(f"| full grid extrapolated: workflow fp32, {k} jobs at once | {est['workflow_fp32']:.2f} h |")
    print("\n| variant | starter-style acc. | workflow fp32 (one at a time) | fp32 (packed) | bf16 |\n|---|---|---|---|---|")
    for n, a in result["accuracy"].items():
        print(f"| {n} | {a['starter']:.2f} | {a['fp32_one_at_a_time']:.2f} | {a['fp32']:.2f} | {a['bf16']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
