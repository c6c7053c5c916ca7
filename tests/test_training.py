"""The training loop: features, determinism, the validation split, keep: best, augmentation, resumes, schedules."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cmpt726 import config as cfg
from cmpt726.augment import Cutout, from_settings
from cmpt726.code_digest import module_sources, stage_digest
from cmpt726.data import save_arrays, split_train_val
from cmpt726.features import extract_features
from cmpt726.finetune import schedule, train_variant
from cmpt726.loop import batch_bounds
from cmpt726.models import build_finetune_net, load_finetuned
from conftest import REPO, Killed, kill_after_first, prepared_data, read_yaml, write_backbone


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepared_data(tmp_path_factory.mktemp("train"), n_train=120, n_test=60, n_val=30, data_seed=5,
                         backbone_seed=2)


def settings(**overrides):
    """A variant of config.yaml's training defaults, shrunk (2 epochs, batch 16, lr 0.05) unless overridden."""
    config = read_yaml("config.yaml")
    config["variants"] = {"v": {"epochs": 2, "batch_size": 16, "lr": 0.05, **overrides}}
    config["tuning"] = {"enabled": False}  # some set validation 0
    cfg.validate_config(config)
    return cfg.resolve_variant(config, "v")


def weights(path):
    return load_finetuned(path).state_dict()


def same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def train(root, tmp_path, name, s, seed=0, inputs=None, split=True, summary=None, resume=None, on_epoch=None,
          **spec):
    """train_variant on `root`'s backbone and train.npz (or `inputs`), writing tmp_path/name.pt and name.tsv;
    `spec` adds to the job's spec (code, variant)."""
    paths = {"backbone": root / "backbone.pt", "train": inputs or root / "train.npz", "summary": summary,
             "checkpoint": tmp_path / f"{name}.pt", "epochs": tmp_path / f"{name}.tsv", "resume": resume,
             "split": root / "split.npz" if split else None}
    return train_variant({"seed": seed, "settings": s, "device": "cpu", **spec}, paths, on_epoch=on_epoch)


def losses(history, key="train_loss"):
    return [r[key] for r in history]


@pytest.mark.parametrize("head", [{"hidden": []}, {"hidden": [32], "batchnorm": True, "dropout": 0.2}])
def test_cached_features_train_the_same_head_as_the_full_network(prepared, tmp_path, head):
    s = settings(train="head", head=head)
    assert cfg.uses_cached_features(s)
    extract_features(prepared / "backbone.pt", prepared / "train.npz", tmp_path / "f_train.npz", s["normalize"], "cpu")
    cached = train(prepared, tmp_path, "cached", s, seed=7, inputs=tmp_path / "f_train.npz")
    full = train(prepared, tmp_path, "full", s, seed=7)
    a, b = weights(tmp_path / "cached.pt"), weights(tmp_path / "full.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-4, rtol=1e-4), key
    assert losses(cached, "val_acc") == pytest.approx(losses(full, "val_acc"), abs=1e-6)
    assert losses(cached) == pytest.approx(losses(full), rel=1e-4)
    init = build_finetune_net(None, s["head"], seed=7).state_dict()  # the head both paths started from
    first = next(k for k in a if k.startswith("head.") and k.endswith("weight"))
    assert not torch.equal(init[first], a[first])  # so the comparison is of trained heads


def test_cpu_training_is_deterministic(prepared, tmp_path):
    s = settings(train="all", head={"dropout": 0.2})
    h1, h2 = (train(prepared, tmp_path, name, s, seed=3) for name in "ab")
    assert losses(h1) == losses(h2)
    assert same_weights(weights(tmp_path / "a.pt"), weights(tmp_path / "b.pt"))
    assert losses(train(prepared, tmp_path, "c", s, seed=4)) != losses(h1)  # the seed matters


def test_split_is_stratified_disjoint_and_fixed_by_its_seed():
    labels = np.random.default_rng(1).integers(0, 10, 5000)
    train, val = split_train_val(labels, 500, seed=0)
    assert len(val) == 500 and len(train) == 4500
    assert np.intersect1d(train, val).size == 0 and np.union1d(train, val).size == 5000
    # each class gives its share of the 500 (within one image of the exact proportion)
    share = np.bincount(labels[val], minlength=10) - 500 * np.bincount(labels, minlength=10) / 5000
    assert np.all(np.abs(share) < 1)
    again, other = split_train_val(labels, 500, seed=0), split_train_val(labels, 500, seed=1)
    assert np.array_equal(again[1], val) and not np.array_equal(other[1], val)
    with pytest.raises(ValueError, match="training.validation: 5000 must lie between 1 and 4999"):
        split_train_val(labels, 5000, seed=0)


def test_training_uses_only_the_training_part_of_the_split(prepared, tmp_path, capsys):
    train(prepared, tmp_path, "m", settings(train="head", epochs=1), summary=tmp_path / "s.json")
    assert "90 training images, 30 held out" in capsys.readouterr().out
    summary = json.loads((tmp_path / "s.json").read_text())
    assert (summary["images"], summary["validation_images"]) == (90, 30)


@pytest.fixture(scope="module")
def contrary(tmp_path_factory):
    """Dark and bright images, validation labels the opposite of training's: the best validation epoch is
    an early one, whatever the machine's float rounding."""
    root = tmp_path_factory.mktemp("contrary")
    rng = np.random.default_rng(0)
    bright = np.tile([0, 1], 100)
    images = (30 + 190 * bright[:, None] + rng.integers(-5, 6, (200, 3072))).astype(np.uint8).reshape(-1, 3, 32, 32)
    labels = bright.copy()
    labels[150:] = 1 - labels[150:]
    save_arrays(root / "train.npz", images, labels.astype(np.int64), [f"c{i}" for i in range(10)])
    np.savez(root / "split.npz", train=np.arange(150), val=np.arange(150, 200))
    write_backbone(root / "backbone.pt", seed=0)
    return root


def test_keep_best_keeps_the_epoch_with_the_best_validation_accuracy(contrary, tmp_path):
    """keep: best ends with the weights of the best validation epoch: those of a run stopped there."""
    s = settings(train="head", epochs=4, lr=0.01, keep="best")
    accs = losses(train(contrary, tmp_path, "best", s, seed=1, summary=tmp_path / "best.json"), "val_acc")
    kept = int(np.argmax(accs)) + 1  # the first best epoch
    assert kept < len(accs) and accs[-1] < accs[kept - 1], accs  # best and last differ: the test can tell them apart
    summary = json.loads((tmp_path / "best.json").read_text())
    assert summary["kept_epoch"] == kept and summary["kept_val_acc"] == accs[kept - 1]
    assert torch.load(tmp_path / "best.pt", weights_only=True)["epoch"] == kept
    stopped = train(contrary, tmp_path, "stop", {**s, "epochs": kept, "keep": "last"}, seed=1)
    assert losses(stopped, "val_acc") == accs[:kept]
    assert same_weights(weights(tmp_path / "best.pt"), weights(tmp_path / "stop.pt"))
    train(contrary, tmp_path, "last", {**s, "keep": "last"}, seed=1)
    assert not same_weights(weights(tmp_path / "best.pt"), weights(tmp_path / "last.pt"))


def test_without_a_split_every_image_trains_and_the_last_epoch_is_kept(prepared, tmp_path):
    history = train(prepared, tmp_path, "m", settings(train="head", validation=0), split=False,
                    summary=tmp_path / "s.json")
    assert all(r["val_acc"] is None for r in history)
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary == {**summary, "keep": "last", "kept_epoch": 2, "images": 120, "validation_images": 0}
    assert (tmp_path / "m.tsv").read_text().splitlines()[1].split("\t")[3:5] == ["", ""]


def test_cutout_paints_one_clipped_square_per_image_with_the_fill():
    x = torch.full((64, 3, 32, 32), 7, dtype=torch.uint8)
    out = Cutout(8, torch.Generator().manual_seed(0), fill=(100, 110, 120))(x)
    painted = out[:, 0] == 100
    assert torch.equal(painted, out[:, 2] == 120)  # the same square in every channel
    sizes = painted.sum((1, 2))
    assert sizes.max() == 64 and sizes.min() > 0  # whole 8×8 squares, some clipped at the border
    rows, cols = painted.any(2), painted.any(1)
    assert torch.all(painted.sum((1, 2)) == rows.sum(1) * cols.sum(1))  # a rectangle
    assert torch.equal(out[~painted[:, None].expand_as(out)], x[~painted[:, None].expand_as(x)])


def test_augmentation_is_seeded_and_changes_the_batch():
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    a, b, c = (from_settings({"crop": 4, "flip": True, "cutout": 8}, torch.Generator().manual_seed(seed), [0.5] * 3)(x)
               for seed in (3, 3, 4))
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, x)
    assert from_settings({"crop": 0, "flip": False, "cutout": 0}, torch.Generator(), [0.5] * 3) is None


def test_augmented_training_is_deterministic_and_resumes_exactly(prepared, tmp_path):
    s = settings(train="all", epochs=3, augment={"crop": 4, "flip": True, "cutout": 8})
    assert not cfg.uses_cached_features({**s, "train": "head"})  # augmenting heads never use the cache
    h1, h2 = (train(prepared, tmp_path, name, s, seed=2) for name in "ab")
    assert losses(h1) == losses(h2) and same_weights(weights(tmp_path / "a.pt"), weights(tmp_path / "b.pt"))
    plain = train(prepared, tmp_path, "p", {**s, "augment": {"crop": 0, "flip": False, "cutout": 0}}, seed=2)
    assert losses(plain) != losses(h1)  # the augmentation did something
    resume = tmp_path / "r.resume.pt"
    with pytest.raises(Killed):
        train(prepared, tmp_path, "r", s, seed=2, resume=resume, on_epoch=kill_after_first)
    assert resume.exists() and not (tmp_path / "r.pt").exists()
    h3 = train(prepared, tmp_path, "r", s, seed=2, resume=resume)
    assert not resume.exists()
    assert losses(h3) == losses(h1) and losses(h3, "val_acc") == losses(h1, "val_acc")
    assert same_weights(weights(tmp_path / "r.pt"), weights(tmp_path / "a.pt"))


def test_a_resume_state_of_other_code_is_refused(prepared, tmp_path, capsys):
    """Kill after epoch 1, edit the code that trains (loop.py), rerun: it starts over; unedited, it resumes."""
    package = tmp_path / "copy"
    shutil.copytree(REPO / "workflow" / "cmpt726", package / "cmpt726")
    before = stage_digest("train", package)
    assert before == stage_digest("train")  # a direct caller's default: the package's own digest
    loop = package / "cmpt726" / "loop.py"
    loop.write_text(loop.read_text().replace("loss = F.cross_entropy(logits.float(), target)",
                                             "loss = F.cross_entropy(logits.float(), target, label_smoothing=0.1)"))
    after = stage_digest("train", package)
    assert after != before

    s = settings(train="head", epochs=2)
    for name, rerun_code, resumes in [("edited", after, False), ("same", before, True)]:
        with pytest.raises(Killed):
            train(prepared, tmp_path, name, s, split=False, resume=tmp_path / f"{name}.resume", code=before,
                  on_epoch=kill_after_first)
        capsys.readouterr()
        train(prepared, tmp_path, name, s, split=False, resume=tmp_path / f"{name}.resume", code=rerun_code)
        out = capsys.readouterr().out
        assert ("resuming from" in out) == resumes, out
        assert ("other code" in out) == (not resumes), out


def test_a_diverging_run_fails_at_once_naming_variant_epoch_and_lr(prepared, tmp_path):
    # 1e20 overflows in epoch 1 on every CPU (at 1e8 an AVX2-only EPYC reached nan only in epoch 3)
    s = settings(train="all", lr=1e20, epochs=3)
    with pytest.raises(FloatingPointError, match=r"variant big, seed 0 diverged: training loss (nan|inf) in epoch 1 "
                                                 r"at learning rate 1e\+20"):
        train(prepared, tmp_path, "m", s, resume=tmp_path / "m.resume", variant="big")
    assert list(tmp_path.iterdir()) == []  # no model, no table, no resume state to continue from


def test_batch_bounds_never_leave_a_batch_of_one():
    assert batch_bounds(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert batch_bounds(9, 3) == [(0, 3), (3, 6), (6, 9)]
    assert batch_bounds(1, 4) == [(0, 1)]
    assert batch_bounds(5, 4) == [(0, 5)]


def test_a_batchnorm_head_trains_when_one_image_is_left_over(prepared, tmp_path):
    """90 training images (120 minus 30 held out) in batches of 89: the last would hold one image."""
    s = settings(train="all", epochs=1, batch_size=89, head={"hidden": [8], "batchnorm": True})
    history = train(prepared, tmp_path, "m", s)
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"])


# A cached-feature head run (`prepared`, seed 7) by the code before training.schedule existed: the constant
# schedule must train exactly as the loop always did.
BEFORE_SCHEDULES = [
    (1, 2.289625718858507, 11.11111111111111, 2.609055519104004, 10.000000149011612),
    (2, 1.91253662109375, 30.0, 2.5352590084075928, 10.000000149011612),
    (3, 1.841623772515191, 28.88888888888889, 1.9072582721710205, 30.000001192092896),
]


@pytest.fixture(scope="module")
def head_features(prepared, tmp_path_factory):
    s = settings(train="head")
    path = tmp_path_factory.mktemp("feat") / "f_train.npz"
    extract_features(prepared / "backbone.pt", prepared / "train.npz", path, s["normalize"], "cpu")
    return path


def head_settings(**overrides):
    return settings(train="head", epochs=3, head={"hidden": [32], "batchnorm": True, "dropout": 0.2},
                    weight_decay=0.001, **overrides)


def test_constant_schedule_trains_as_before_schedules_existed(prepared, head_features, tmp_path):
    s = head_settings()
    assert (s["schedule"], s["nesterov"]) == ("constant", False)  # the default: the assignment's setting
    history = train(prepared, tmp_path, "m", s, seed=7, inputs=head_features)
    got = [(r["epoch"], r["train_loss"], r["train_acc"], r["val_loss"], r["val_acc"]) for r in history]
    assert got == [pytest.approx(row, rel=1e-6) for row in BEFORE_SCHEDULES]
    assert (tmp_path / "m.tsv").read_text().split("\n")[0].split("\t") == \
        ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]


def test_schedules_shape_the_learning_rate_per_step():
    assert schedule(head_settings(), 10) is None
    cosine = schedule(head_settings(schedule="cosine"), 10)  # 3 epochs × 10 steps
    assert cosine(0) == pytest.approx(0.05) and cosine(15) == pytest.approx(0.025) and cosine(30) == pytest.approx(0)
    one = schedule(head_settings(schedule="onecycle", onecycle={"warmup": 0.2}), 10)
    lrs = [one(step) for step in range(30)]
    assert lrs[0] == pytest.approx(0.05 / 25) and max(lrs) == pytest.approx(0.05) and int(np.argmax(lrs)) == 6
    assert lrs[-1] == pytest.approx(0.05 / 25 / 10000)
    assert all(a <= b for a, b in zip(lrs[:6], lrs[1:7])) and all(a >= b for a, b in zip(lrs[6:], lrs[7:]))


def test_a_schedule_changes_training_and_resumes_exactly(prepared, head_features, tmp_path):
    """A onecycle run differs from the constant one; killed after epoch 1, it resumes to the same numbers."""
    s = head_settings(schedule="onecycle", nesterov=True)
    whole = train(prepared, tmp_path, "a", s, seed=7, inputs=head_features)
    assert losses(whole) != pytest.approx([row[1] for row in BEFORE_SCHEDULES])
    with pytest.raises(Killed):
        train(prepared, tmp_path, "b", s, seed=7, inputs=head_features, resume=tmp_path / "b.resume.pt",
              on_epoch=kill_after_first)
    resumed = train(prepared, tmp_path, "b", s, seed=7, inputs=head_features, resume=tmp_path / "b.resume.pt")
    assert losses(resumed) == losses(whole)
    assert same_weights(weights(tmp_path / "a.pt"), weights(tmp_path / "b.pt"))


def test_training_code_digest_leaves_the_report_side_out():
    """A report-side helper in a training module would retrain every variant when it changed: none is there."""
    files = {Path(p).relative_to(REPO / "workflow").as_posix() for p in module_sources(REPO / "workflow", "finetune")}
    assert {"cmpt726/finetune.py", "cmpt726/loop.py"} <= files, files
    report_side = {"cmpt726/tuning/choice.py", "cmpt726/tuning/summary.py", "cmpt726/stats.py", "cmpt726/plotting.py"}
    assert not files & report_side and not any(f.startswith(("cmpt726/report/", "cmpt726/analysis/")) for f in files), files
