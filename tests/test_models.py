"""The model: published-layout strict loads, head shapes, frozen means frozen."""

import pytest
import torch

from cmpt726 import models


def chenyaofo_keys():
    """The parameter/buffer names of chenyaofo's cifar100_resnet20 (3 stages × 3 BasicBlocks)."""
    def bn(p):
        return [f"{p}.{b}" for b in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]

    keys = ["conv1.weight", *bn("bn1")]
    for p in (f"layer{stage}.{block}" for stage in (1, 2, 3) for block in range(3)):
        keys += [f"{p}.conv1.weight", f"{p}.conv2.weight", *bn(f"{p}.bn1"), *bn(f"{p}.bn2")]
        if p in ("layer2.0", "layer3.0"):
            keys += [f"{p}.downsample.0.weight", *bn(f"{p}.downsample.1")]
    return keys + ["fc.weight", "fc.bias"]


def test_state_dict_has_the_published_names_and_shapes():
    state = models.cifar_resnet20(100).state_dict()
    assert sorted(state) == sorted(chenyaofo_keys())
    assert state["conv1.weight"].shape == (16, 3, 3, 3)
    assert state["layer2.0.downsample.0.weight"].shape == (32, 16, 1, 1)
    assert state["layer3.2.conv2.weight"].shape == (64, 64, 3, 3)
    assert state["fc.weight"].shape == (100, 64)
    assert sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k) == 278324


def test_strict_load_accepts_chenyaofo_state_and_rejects_others(tmp_path):
    torch.manual_seed(1)
    good = models.cifar_resnet20(100).state_dict()
    torch.save(good, tmp_path / "good.pth")
    loaded = models.load_backbone_state(tmp_path / "good.pth")
    assert all(torch.equal(loaded[k], good[k]) for k in good)
    bad = dict(good)
    bad.pop("layer3.2.bn2.running_var")
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth.*not a CIFAR-100 ResNet-20"):
        models.load_backbone_state(tmp_path / "bad.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "good.pth").read_bytes()[:1000])
    with pytest.raises(ValueError, match="cut.pth cannot be read"):
        models.load_backbone_state(tmp_path / "cut.pth")


@pytest.mark.parametrize("head, shapes", [
    ({"hidden": []}, [(10, 64)]),
    ({"hidden": [256], "batchnorm": True}, [(256, 64), (10, 256)]),
    ({"hidden": [128, 32], "dropout": 0.2}, [(128, 64), (32, 128), (10, 32)]),
])
def test_head_shapes(head, shapes):
    net = models.build_finetune_net(None, head, seed=0)
    linear = [m.weight.shape for m in net.head if isinstance(m, torch.nn.Linear)]
    assert [tuple(s) for s in linear] == shapes
    assert net(torch.randn(4, 3, 32, 32)).shape == (4, 10)
    has_bn = any(isinstance(m, torch.nn.BatchNorm1d) for m in net.head)
    assert has_bn == bool(head.get("batchnorm") and head["hidden"])
    assert any(isinstance(m, torch.nn.Dropout) for m in net.head) == bool(head.get("dropout"))


def _snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _one_step(train, replicate_2019_bugs=False, head=None):
    torch.manual_seed(0)
    net = models.build_finetune_net(models.cifar_resnet20(100).state_dict(),
                                    head or {"hidden": [256], "batchnorm": True}, 0)
    params = models.trainable_parameters(net, train, replicate_2019_bugs)
    before_backbone, before_head = _snapshot(net.backbone), _snapshot(net.head)
    models.set_train_mode(net, train, replicate_2019_bugs)
    opt = torch.optim.SGD(params, lr=0.5, momentum=0.9)
    loss = torch.nn.functional.cross_entropy(net(torch.randn(16, 3, 32, 32) * 3), torch.randint(0, 10, (16,)))
    loss.backward()
    opt.step()
    return net, params, _changed(before_backbone, net.backbone), _changed(before_head, net.head)


def _changed(before, module):
    return {k for k, v in module.state_dict().items() if not torch.equal(v, before[k])}


def test_frozen_backbone_is_unchanged_weights_and_bn_statistics():
    net, params, backbone_changed, head_changed = _one_step("head")
    assert backbone_changed == set()  # weights and running stats
    assert not net.backbone.training
    assert all(not p.requires_grad for p in net.backbone.parameters())
    assert {"0.weight", "1.running_mean", "3.weight"} <= head_changed  # the whole head learns


def test_head_stays_at_init_when_only_the_backbone_trains():
    net, params, backbone_changed, head_changed = _one_step("backbone", head={"hidden": []})
    assert head_changed == set()
    assert "conv1.weight" in backbone_changed and "bn1.running_mean" in backbone_changed
    assert all(not p.requires_grad for p in net.head.parameters())


def test_replicate_2019_bugs_reproduce_drifting_bn_and_the_untrained_hidden_layer():
    net, params, backbone_changed, head_changed = _one_step("head", replicate_2019_bugs=True)
    assert "bn1.running_mean" in backbone_changed  # BN statistics drift in the "frozen" backbone
    assert not any(k.endswith("weight") and "bn" not in k and "conv" in k for k in backbone_changed)
    assert "0.weight" not in head_changed and "3.weight" in head_changed  # only the last Linear learns
    assert "1.running_mean" in head_changed
