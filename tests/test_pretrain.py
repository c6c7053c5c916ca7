"""backbone.source: pretrain — CIFAR-100 (pickle layout or ImageFolder) → ResNet-20 → fine-tuning."""

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from conftest import Killed, kill_after_first, make_project, shipped, snakemake, smoke_config

from cmpt726 import cifar100, data, models
from cmpt726.config import ConfigError, validate_config
from cmpt726.pretrain import RandomCropFlip, learning_rate, pretrain

# One torch thread (and --cores 1): on a shared 2-core machine spin-waiting OpenMP threads slow tiny runs.
pytestmark = pytest.mark.usefixtures("one_torch_thread")
CLASSES100 = [f"class{i:02d}" for i in range(100)]


def _images(rng, labels):
    base = (labels[:, None] * 2).astype(np.int16)
    return np.clip(base + rng.integers(-30, 30, (len(labels), 3072)), 0, 255).astype(np.uint8)


def write_cifar100(root, n_train=300, n_test=100, seed=0):
    """A CIFAR-100 folder in the real pickle layout (train, test, meta)."""
    rng = np.random.default_rng(seed)
    folder = root / cifar100.BATCH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in [("train", n_train), ("test", n_test)]:
        labels = rng.integers(0, 100, n)
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": _images(rng, labels), "fine_labels": labels.tolist(),
                         "coarse_labels": (labels // 5).tolist(), "filenames": [f"{i}.png" for i in range(n)]}, fh)
    with open(folder / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": CLASSES100, "coarse_label_names": [f"s{i}" for i in range(20)]}, fh)
    return folder


def write_imagefolder(root, per_class=(3, 1), seed=0):
    """A CIFAR-100 ImageFolder tree: root/{train,test}/<class>/*.png, 32×32 RGB."""
    rng = np.random.default_rng(seed)
    for split, n in zip(["train", "test"], per_class):
        for label, name in enumerate(CLASSES100):
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            pixels = _images(rng, np.full(n, label)).reshape(n, 3, 32, 32).transpose(0, 2, 3, 1)
            for i in range(n):
                Image.fromarray(np.ascontiguousarray(pixels[i])).save(d / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def c100(tmp_path_factory):
    root = tmp_path_factory.mktemp("c100")
    write_cifar100(root / "pickle")
    write_imagefolder(root / "imagefolder")
    return root


@pytest.fixture(scope="module")
def prepared(c100, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    cifar100.prepare_cifar100(c100 / "pickle" / cifar100.BATCH_DIR, "pickle", out / "train.npz", out / "test.npz",
                              out / "summary.json", verify=False)
    return out


def pretrain_cfg(**overrides) -> dict:
    """The defaults of backbone.pretrain, shrunk."""
    return {**shipped()["backbone"]["pretrain"], "epochs": 2, "batch_size": 64, **overrides}


def run_pretrain(prepared, out, cfg, **kwargs) -> dict:
    """pretrain() on the prepared CIFAR-100, writing out/pretrain.pt, epochs.tsv and summary.json."""
    return pretrain(prepared / "train.npz", prepared / "test.npz", out / "pretrain.pt", out / "epochs.tsv",
                    out / "summary.json", cfg, device="cpu", **kwargs)


def pretrain_project(workdir, tiny_inputs, cifar100_cfg):
    config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
    config["backbone"] = {"source": "pretrain", "pretrain": {"epochs": 2, "batch_size": 64}}
    config["data"]["cifar100"] = cifar100_cfg
    return make_project(workdir, config)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["pickle", "imagefolder"])
def test_pretrain_then_finetune_in_snakemake(layout, c100, tiny_inputs, tmp_path):
    source = ({"root": str(c100 / "pickle"), "verify": False} if layout == "pickle"
              else {"root": str(tmp_path / "unused"), "imagefolder": str(c100 / "imagefolder")})
    workdir = pretrain_project(tmp_path / "proj", tiny_inputs, source)
    targets = ["results/metrics/head/seed0.json"] + (
        ["results/metrics/all/seed0.json", "results/figures/pretrain/curves.png"] if layout == "pickle" else [])
    snakemake(workdir, "--cores", "1", *targets)

    backbone = workdir / "results" / "backbone"
    assert (backbone / "pretrain.pt").exists() and not (backbone / "pretrain.resume.pt").exists()
    rows = (backbone / "pretrain_epochs.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["epoch", "lr", "train_loss", "train_acc", "test_loss", "test_top1", "seconds"]
    assert [r.split("\t")[0] for r in rows[1:]] == ["1", "2"]
    summary = json.loads((backbone / "pretrain_summary.json").read_text())
    assert summary["epochs"] == 2 and summary["published_top1"] == 68.83 and summary["schedule"] == "cosine"
    assert 0 <= summary["final_top1"] <= 100
    prep = json.loads((workdir / "results/data/cifar100/summary.json").read_text())
    assert prep["kind"] == layout and prep["train"]["images"] == 300 and prep["test"]["images"] == 100
    for target in targets[:2]:
        assert 0 <= json.loads((workdir / target).read_text())["accuracy"] <= 100
    if layout == "pickle":  # the report's pretraining figure
        assert (workdir / targets[-1]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # No download rule when the data is there; the fine-tuning consumed the pretrained file.
    assert not (workdir / "results/logs/download_cifar100.log").exists()
    if layout == "pickle":  # a finished pretraining is not redone
        dryrun = snakemake(workdir, "--cores", "1", "-n", *targets)
        assert "Nothing to be done" in dryrun.stdout + dryrun.stderr


@pytest.mark.slow
def test_resume_after_interruption_gives_the_same_weights(prepared, tmp_path):
    cfg = pretrain_cfg(epochs=3, schedule="onecycle", batch_size=128)
    full_dir, resumed_dir = tmp_path / "full", tmp_path / "resumed"
    full = run_pretrain(prepared, full_dir, cfg)
    resume = resumed_dir / "pretrain.resume.pt"
    with pytest.raises(Killed):
        run_pretrain(prepared, resumed_dir, cfg, resume_path=resume, on_epoch=kill_after_first)
    assert resume.exists() and not (resumed_dir / "pretrain.pt").exists()
    resumed = run_pretrain(prepared, resumed_dir, cfg, resume_path=resume)
    assert resumed["resumed_from_epoch"] == 1 and not resume.exists()

    a = torch.load(full_dir / "pretrain.pt", weights_only=True)
    b = torch.load(resumed_dir / "pretrain.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert full["final_top1"] == resumed["final_top1"]
    assert (full_dir / "epochs.tsv").read_text().count("\n") == (resumed_dir / "epochs.tsv").read_text().count("\n")


def test_resume_state_of_another_config_is_ignored(prepared, tmp_path):
    resume = tmp_path / "pretrain.resume.pt"
    torch.save({"fingerprint": "something else", "epoch": 1}, resume)
    assert run_pretrain(prepared, tmp_path, pretrain_cfg(epochs=1), resume_path=resume)["resumed_from_epoch"] is None


def test_checkpoint_loads_strictly_like_the_published_one(prepared, tiny_inputs, tmp_path):
    run_pretrain(prepared, tmp_path, pretrain_cfg(epochs=1))
    state = torch.load(tmp_path / "pretrain.pt", weights_only=True)
    published = torch.load(tiny_inputs / "backbone.pth", weights_only=True)  # chenyaofo-shaped
    assert list(state) == list(published)
    assert all(state[k].shape == published[k].shape and state[k].dtype == published[k].dtype for k in state)
    assert all(v.is_contiguous() for v in state.values())
    models.cifar_resnet20(100).load_state_dict(state, strict=True)
    models.load_backbone_state(tmp_path / "pretrain.pt")


def test_crop_flip_is_a_shifted_window_of_the_padded_image():
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    out = RandomCropFlip(4, True, g)(x)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    flips = 0
    for i in range(len(x)):
        windows = [(dy, dx, f) for dy in range(9) for dx in range(9) for f in (False, True)
                   if torch.equal(out[i], (lambda w: w.flip(-1) if f else w)(padded[i, :, dy:dy + 32, dx:dx + 32]))]
        assert windows, f"image {i} is not a crop of the padded image"
        flips += any(f for *_, f in windows)
    assert 10 < flips < 54  # about half mirrored
    assert torch.equal(RandomCropFlip(0, False, g)(x), x)
    mirrored = RandomCropFlip(0, True, torch.Generator().manual_seed(1))(x)
    assert all(torch.equal(m, i) or torch.equal(m, i.flip(-1)) for m, i in zip(mirrored, x))


def test_learning_rate_schedules():
    cfg = pretrain_cfg(epochs=200, schedule="cosine", lr=0.1, eta_min=0.0)  # the upstream log's
    steps = 196  # 50,000 / 256
    assert learning_rate(cfg, 0, steps) == pytest.approx(0.1)
    assert learning_rate(cfg, 100 * steps, steps) == pytest.approx(0.05)  # half-way: half the rate
    assert learning_rate(cfg, 200 * steps, steps) == pytest.approx(0.0, abs=1e-12)
    values = [learning_rate(cfg, s, steps) for s in range(0, 200 * steps, 97)]
    assert all(a > b for a, b in zip(values, values[1:]))  # falls at every step
    assert learning_rate({**cfg, "eta_min": 0.001}, 200 * steps, steps) == pytest.approx(0.001)
    step = pretrain_cfg(epochs=200, schedule="step", lr=0.1)
    lrs = [learning_rate(step, e * 10, 10) for e in (0, 99, 100, 149, 150, 199)]
    assert lrs == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    one = pretrain_cfg(epochs=10, schedule="onecycle", lr=0.2)
    values = [learning_rate(one, s, 10) for s in range(100)]
    assert values[0] == pytest.approx(0.2 / 25)
    assert max(values) == pytest.approx(0.2) and values[30] == pytest.approx(0.2)
    assert values[-1] == pytest.approx(0.2 / 25 / 1e4)
    assert all(a <= b for a, b in zip(values[:30], values[1:31]))
    assert all(a >= b for a, b in zip(values[30:], values[31:]))


def test_prepared_layouts_agree_on_format(c100, tmp_path):
    for kind, source in [("pickle", c100 / "pickle" / cifar100.BATCH_DIR), ("imagefolder", c100 / "imagefolder")]:
        cifar100.prepare_cifar100(source, kind, tmp_path / f"{kind}_train.npz", tmp_path / f"{kind}_test.npz",
                                  tmp_path / f"{kind}.json", verify=False)
        images, labels, classes = data.load_arrays(tmp_path / f"{kind}_train.npz")
        assert images.dtype == np.uint8 and images.shape[1:] == (3, 32, 32) and labels.dtype == np.int64
        assert classes == CLASSES100 and labels.max() < 100
    images, labels, _ = data.load_arrays(tmp_path / "imagefolder_train.npz")
    assert len(labels) == 300 and np.bincount(labels).tolist() == [3] * 100
    # the PNG pixels come back exactly, in CHW order
    first = np.asarray(Image.open(c100 / "imagefolder" / "train" / CLASSES100[0] / "0.png")).transpose(2, 0, 1)
    assert np.array_equal(images[0], first)


def test_md5_check_names_the_file(c100):
    with pytest.raises(ValueError, match=r"cifar-100-python/train: md5 .* data.cifar100.verify"):
        cifar100.read_pickle_split(c100 / "pickle" / cifar100.BATCH_DIR, "train", verify=True)


def test_imagefolder_takes_precedence_and_config_is_checked(tiny_inputs):
    assert cifar100.source_of({"root": "r", "imagefolder": "t"}) == ("imagefolder", "t")
    assert cifar100.source_of({"root": "r", "imagefolder": None}) == ("pickle", "r/cifar-100-python")
    config = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
    config["backbone"] = {"source": "pretrain"}
    validate_config(config)  # defaults filled: the upstream recipe
    pre = config["backbone"]["pretrain"]
    # the upstream training log's recipe
    assert (pre["epochs"], pre["batch_size"], pre["lr"], pre["schedule"], pre["weight_decay"], pre["eta_min"]) == (
        200, 256, 0.1, "cosine", 0.0005, 0.0)
    assert pre["normalize"] == {"mean": [0.507, 0.4865, 0.4409], "std": [0.2673, 0.2564, 0.2761]}
    assert pre["onecycle"]["warmup"] == 0.3 and config["data"]["cifar100"]["root"] == "data/cifar100"
    bad = smoke_config(tiny_inputs / "cifar10", tiny_inputs / "backbone.pth")
    bad["backbone"] = {"source": "pretrain", "pretrain": {"epoch": 3}}
    with pytest.raises(ConfigError, match="unknown config key backbone.pretrain.epoch"):
        validate_config(bad)
    bad["backbone"] = {"source": "pretrain", "pretrain": {"schedule": "linear"}}
    with pytest.raises(ConfigError, match="backbone.pretrain.schedule"):
        validate_config(bad)
