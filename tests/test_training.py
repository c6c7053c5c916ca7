"""The training loop: cached features = recomputed features, determinism on CPU."""

import pytest
import torch
import yaml

from cmpt726 import config as cfg
from cmpt726.data import prepare_cifar10
from cmpt726.models import build_finetune_net
from cmpt726.features import extract_features
from cmpt726.finetune import load_finetuned, train_variant
from conftest import REPO, write_backbone, write_cifar10


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    folder = write_cifar10(root / "c10", n_train=120, n_test=60, seed=5)
    prepare_cifar10(folder, root / "train.npz", root / "test.npz", root / "summary.json", verify=False)
    write_backbone(root / "backbone.pt", seed=2)
    return root


def settings(**overrides):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["variants"] = {"v": overrides}
    s = cfg.resolve_variant(config, "v")
    s.update(epochs=2, batch_size=16, lr=0.05)
    return s


@pytest.mark.parametrize("head", [{"hidden": []}, {"hidden": [32], "batchnorm": True, "dropout": 0.2}])
def test_cached_features_train_the_same_head_as_the_full_network(prepared, tmp_path, head):
    s = settings(train="head", head=head)
    assert cfg.uses_cached_features(s)
    for split in ("train", "test"):
        extract_features(prepared / "backbone.pt", prepared / f"{split}.npz", tmp_path / f"f_{split}.npz", s["normalize"], "cpu")
    cached = train_variant(prepared / "backbone.pt", tmp_path / "f_train.npz", tmp_path / "f_test.npz",
                           tmp_path / "cached.pt", tmp_path / "cached.tsv", s, seed=7, device="cpu")
    full = train_variant(prepared / "backbone.pt", prepared / "train.npz", prepared / "test.npz",
                         tmp_path / "full.pt", tmp_path / "full.tsv", s, seed=7, device="cpu")
    a, b = load_finetuned(tmp_path / "cached.pt").state_dict(), load_finetuned(tmp_path / "full.pt").state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-4, rtol=1e-4), key
    assert [r["test_acc"] for r in cached] == pytest.approx([r["test_acc"] for r in full], abs=1e-6)
    assert [r["train_loss"] for r in cached] == pytest.approx([r["train_loss"] for r in full], rel=1e-4)
    init = build_finetune_net(None, s["head"], seed=7).state_dict()  # the head both paths started from
    first = next(k for k in a if k.startswith("head.") and k.endswith("weight"))
    assert not torch.equal(init[first], a[first])  # so the comparison is of trained heads


def test_cpu_training_is_deterministic(prepared, tmp_path):
    s = settings(train="all", head={"dropout": 0.2})
    runs = []
    for name in ("a", "b"):
        history = train_variant(prepared / "backbone.pt", prepared / "train.npz", prepared / "test.npz",
                                tmp_path / f"{name}.pt", tmp_path / f"{name}.tsv", s, seed=3, device="cpu")
        runs.append((history, load_finetuned(tmp_path / f"{name}.pt").state_dict()))
    (h1, w1), (h2, w2) = runs
    assert [r["train_loss"] for r in h1] == [r["train_loss"] for r in h2]
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    third = train_variant(prepared / "backbone.pt", prepared / "train.npz", prepared / "test.npz",
                          tmp_path / "c.pt", tmp_path / "c.tsv", s, seed=4, device="cpu")
    assert [r["train_loss"] for r in third] != [r["train_loss"] for r in h1]  # the seed matters
