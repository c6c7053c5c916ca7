"""Seeds trained as one stacked model: each member against its lone run, a diverging member set aside, the
stacked optimiser against torch's, the CPU path's pinned numbers, and the plan that turns it on (CUDA only)."""

import math

import pytest
import torch
from conftest import make_project, prepared_data, smoke_config, snakemake
from test_training import settings, train, weights

from cmpt726 import finetune, models
from cmpt726.loop import Diverged
from cmpt726.stacked import StackedSGD, fit_stacked

# One intra-op thread: a CPU's float sums, and so these numbers, depend on how many threads share them.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepared_data(tmp_path_factory.mktemp("stack"), n_train=120, n_test=60, n_val=30, data_seed=5,
                         backbone_seed=2)


def stacked(root, tmp_path, s, seeds, **spec):
    """train_seeds on `root`'s inputs, writing tmp_path/s{seed}.pt, .tsv and .json."""
    files = {"checkpoint": ".pt", "epochs": ".tsv", "summary": ".json"}
    paths = {"backbone": root / "backbone.pt", "train": root / "train.npz", "split": root / "split.npz",
             **{name: [tmp_path / f"s{seed}{suffix}" for seed in seeds] for name, suffix in files.items()}}
    return finetune.train_seeds({"seeds": seeds, "settings": s, "device": "cpu", "variant": "v", **spec}, paths)


# A low learning rate keeps the runs apart from chaos: float rounding (a batched convolution sums in another
# order) then stays at rounding's size instead of growing step by step.
FULL = dict(train="all", lr=0.0002, augment={"crop": 4, "flip": True, "cutout": 8}, schedule="onecycle",
            nesterov=True, weight_decay=0.001, head={"hidden": [16], "batchnorm": True})


def test_each_member_of_a_stack_trains_as_its_seed_alone(prepared, tmp_path):
    """One epoch (6 steps, the one-cycle schedule's rise and fall): seed 1's numbers match to 1e-7, seed 0's, more
    sensitive, to 1e-5 in training loss; eval-mode BatchNorm on a random backbone magnifies it in validation loss."""
    s = settings(**{**FULL, "epochs": 1})
    together = stacked(prepared, tmp_path, s, [0, 1])
    for seed in (0, 1):
        [alone] = train(prepared, tmp_path, f"a{seed}", s, seed=seed)
        [mine] = together[seed]
        assert mine["train_loss"] == pytest.approx(alone["train_loss"], rel=1e-4)
        assert mine["val_loss"] == pytest.approx(alone["val_loss"], rel=1e-3)
        assert (mine["lr"], mine["val_acc"]) == pytest.approx((alone["lr"], alone["val_acc"]))
        a, b = weights(tmp_path / f"s{seed}.pt"), weights(tmp_path / f"a{seed}.pt")
        assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) < 1e-3
    moved = weights(tmp_path / "s1.pt")["backbone.conv1.weight"] - models.load_backbone_state(
        prepared / "backbone.pt")["conv1.weight"]
    assert moved.abs().max() > 1e-4  # the members trained, and seeds 0 and 1 differ:
    assert not torch.equal(weights(tmp_path / "s0.pt")["head.0.weight"], weights(tmp_path / "s1.pt")["head.0.weight"])


def test_stacked_heads_on_cached_features_train_as_alone(prepared, tmp_path):
    from cmpt726.features import extract_features

    s = settings(train="head", head={"hidden": [16], "batchnorm": True}, weight_decay=0.001)
    extract_features(prepared / "backbone.pt", prepared / "train.npz", tmp_path / "f.npz", s["normalize"], "cpu")
    paths = {"backbone": prepared / "backbone.pt", "train": tmp_path / "f.npz", "split": prepared / "split.npz",
             "checkpoint": [tmp_path / "h0.pt", tmp_path / "h1.pt"], "epochs": [tmp_path / "h0.tsv", tmp_path / "h1.tsv"],
             "summary": [tmp_path / "h0.json", tmp_path / "h1.json"]}
    together = finetune.train_seeds({"seeds": [0, 1], "settings": s, "device": "cpu"}, paths)
    alone = train(prepared, tmp_path, "a1", s, seed=1, inputs=tmp_path / "f.npz")
    assert [r["train_loss"] for r in together[1]] == pytest.approx([r["train_loss"] for r in alone], rel=1e-5)
    assert [r["val_acc"] for r in together[1]] == pytest.approx([r["val_acc"] for r in alone], abs=1e-4)


def runs_of(root, s, seeds, lrs):
    data = finetune.load_training_data(s, torch.device("cpu"), {"backbone": root / "backbone.pt",
                                                                "train": root / "train.npz",
                                                                "split": root / "split.npz"})
    state = models.load_backbone_state(root / "backbone.pt")
    return data, [finetune.make_run({**s, "lr": lr}, seed, torch.device("cpu"), state, data)
                  for seed, lr in zip(seeds, lrs)]


def test_a_diverging_member_is_named_and_leaves_the_others_as_they_were(prepared):
    """The same stack with its middle member healthy, then diverging at its first step: the others' numbers do not
    move a bit."""
    s = settings(**{**FULL, "epochs": 1})
    outcome = {}
    for middle in (2.5e-4, 1e20):
        data, three = runs_of(prepared, s, [0, 1, 2], [2e-4, middle, 3e-4])
        histories, kept, diverged = fit_stacked(three, data.held_out, [None] * 3, describe="variant v")
        outcome[middle] = histories, diverged, [three[k].net.state_dict() for k in (0, 2)]
    (healthy, none, weights_healthy), (histories, diverged, weights_beside) = outcome.values()
    assert none == {} and list(diverged) == [1]
    assert diverged[1].startswith("training of variant v, seed 1 diverged: training loss")
    assert "at learning rate 1e+20" in diverged[1]
    for k in (0, 2):
        assert [(r["train_loss"], r["val_loss"]) for r in histories[k]] == \
            [(r["train_loss"], r["val_loss"]) for r in healthy[k]]
    for a, b in zip(weights_healthy, weights_beside):
        assert all(torch.equal(a[key], b[key]) for key in a)
        assert all(torch.isfinite(v).all() for v in b.values() if v.is_floating_point())


def test_a_stacked_job_whose_seed_diverges_fails_naming_it(prepared, tmp_path):
    with pytest.raises(Diverged, match=r"variant v, seed 0 diverged: training loss .* at learning rate 1e\+20.*"
                                       r"seed 1 diverged"):
        stacked(prepared, tmp_path, settings(train="all", lr=1e20), [0, 1])
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_the_stacked_optimiser_is_torch_sgd_with_a_rate_and_decay_per_member(momentum, nesterov):
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(3, 4, 5, generator=gen)
    lrs, decays = [0.1, 0.01, 0.5], [0.0, 1e-3, 5e-2]
    stack = {"w": start.clone().requires_grad_(True)}
    sgd = StackedSGD(stack, momentum, nesterov, torch.tensor(decays))
    alone = [start[k].clone().requires_grad_(True) for k in range(3)]
    optimisers = [torch.optim.SGD([p], lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
                  for p, lr, wd in zip(alone, lrs, decays)]
    for _ in range(4):
        grads = torch.randn(3, 4, 5, generator=gen)
        sgd.step([grads], torch.tensor(lrs))
        for k, (p, opt) in enumerate(zip(alone, optimisers)):
            p.grad = grads[k].clone()
            opt.step()
    for k in range(3):
        assert torch.allclose(stack["w"][k], alone[k], rtol=1e-5, atol=1e-6), k  # rounding: fused vs not


# A full-network run with augmentation, a schedule and a BatchNorm head (lr 0.002, seed 3), as the code before
# stacking trained it; the path without a stack must keep training exactly so.
BEFORE_STACKING = [
    (2.2981304592556424, 10.0, 2.3508834838867188, 0.0),
    (2.236885579427083, 14.444444444444445, 2.2437334060668945, 10.000000149011612),
]


def test_the_cpu_path_trains_as_before_stacking(prepared, tmp_path):
    history = train(prepared, tmp_path, "m", settings(**{**FULL, "lr": 0.002}), seed=3)
    got = [(r["train_loss"], r["train_acc"], r["val_loss"], r["val_acc"]) for r in history]
    assert got == [pytest.approx(row, rel=1e-6) for row in BEFORE_STACKING]
    assert all(math.isfinite(v) for row in got for v in row)


def plan_of(proc) -> str:
    return proc.stdout.split("Job stats:")[1].split("Reasons:")[0] if "Job stats:" in proc.stdout else proc.stdout


def test_stacking_is_planned_only_when_asked_for_and_on_cuda(tiny_inputs, tmp_path):
    config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth", seeds=[0, 1])
    config["variants"]["one"] = {"train": "all", "seeds": [5]}
    config["cuda"] = {"stack_seeds": True}
    workdir = make_project(tmp_path / "project", config)
    jobs = plan_of(snakemake(workdir, "-n", "--cores", "2", "--config", "device=cuda"))
    counts = {line.split()[0]: int(line.split()[-1]) for line in jobs.splitlines() if line.split()[-1:] != []
              and line.split()[-1].isdigit()}
    # `all` has two seeds: one stacked job; `one` has a single seed and `head` runs on the CPU (cuda.heads_on_cpu):
    # their seeds train alone
    assert counts["train_seeds_0_1"] == 1 and counts["train_variant"] == 3, jobs
    on_cpu = plan_of(snakemake(workdir, "-n", "--cores", "2"))
    assert "train_seeds" not in on_cpu and "train_variant" in on_cpu  # GPU only: on a CPU every seed is a job
