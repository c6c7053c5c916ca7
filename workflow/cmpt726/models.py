"""ResNet-20 for CIFAR (chenyaofo's `CifarResNet`: the published weights load strictly) and the fine-tuning head."""

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1, conv3x3

FEATURES = 64
NUM_CLASSES = 10


class CifarResNet(nn.Module):
    """conv 16 → 3 stages of BasicBlocks at 16/32/64 channels → avgpool → fc."""

    def __init__(self, layers=(3, 3, 3), num_classes: int = 100):
        super().__init__()
        self.inplanes = 16
        self.conv1 = conv3x3(3, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, layers[0])
        self.layer2 = self._make_layer(32, layers[1], stride=2)
        self.layer3 = self._make_layer(64, layers[2], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(FEATURES, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 64-d output of the global average pool: where we cut the network."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def cifar_resnet20(num_classes: int = 100) -> CifarResNet:
    return CifarResNet((3, 3, 3), num_classes)


def load_backbone_state(path) -> dict:
    """Read a CifarResNet-20 state_dict, naming the file when it is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"backbone checkpoint {path} cannot be read ({type(error).__name__}: {error}); "
                         "it may be truncated or not a torch file") from error
    return check_backbone_state(state, f"backbone checkpoint {path}")


def check_backbone_state(state, source: str) -> dict:
    """`state` (unwrapped from {"state_dict": …}) if it loads strictly into cifar_resnet20(100), else ValueError."""
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    try:
        cifar_resnet20(100).load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise ValueError(f"{source} is not a CIFAR-100 ResNet-20 state_dict: {error}") from error
    for key, tensor in state.items():  # weights read back: finite, BatchNorm variances not negative
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"{source}: {key} holds a NaN or infinity")
        if key.endswith("running_var") and (tensor < 0).any():
            raise ValueError(f"{source}: {key} holds a negative BatchNorm variance")
    return state


def build_head(hidden=(), batchnorm: bool = False, dropout: float = 0.0) -> nn.Sequential:
    """64 → hidden… → 10. Each hidden layer: Linear, [BatchNorm], ReLU; dropout before every Linear."""
    layers: list[nn.Module] = []
    width = FEATURES
    for out in hidden:
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(width, out))
        if batchnorm:
            layers.append(nn.BatchNorm1d(out))
        layers.append(nn.ReLU(inplace=True))
        width = out
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width, NUM_CLASSES))
    return nn.Sequential(*layers)


class FineTuneNet(nn.Module):
    """The pretrained backbone cut at the pool, with a new 10-class head."""

    def __init__(self, backbone: CifarResNet, head: nn.Sequential):
        super().__init__()
        backbone.fc = nn.Identity()  # the CIFAR-100 classifier is not used
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone.features(x))


def build_finetune_net(backbone_state: dict | None, head_cfg: dict, seed: int) -> FineTuneNet:
    """Backbone weights from `backbone_state`; head initialised from `seed` (same head as the cached path)."""
    torch.manual_seed(seed)
    head = build_head(**head_cfg)
    backbone = cifar_resnet20(100)
    if backbone_state is not None:
        backbone.load_state_dict(backbone_state, strict=True)
    return FineTuneNet(backbone, head)


def trainable_parameters(model: FineTuneNet, train: str, replicate_2019_bugs: bool = False) -> list[nn.Parameter]:
    """Freeze what `train` leaves out and return what the optimiser gets (the 2019 bug: a head's last Linear only)."""
    parts = {"head": [model.head], "backbone": [model.backbone], "all": [model.backbone, model.head]}[train]
    for p in model.parameters():
        p.requires_grad_(False)
    trained = [p for module in parts for p in module.parameters()]
    if replicate_2019_bugs and train != "backbone" and len(model.head) > 1:
        head_params = {id(p) for p in model.head.parameters()}
        last = list(model.head[-1].parameters())
        trained = [p for p in trained if id(p) not in head_params] + last
    for p in trained:
        p.requires_grad_(True)
    return trained


def set_train_mode(model: FineTuneNet, train: str, replicate_2019_bugs: bool = False) -> None:
    """model.train(), but a frozen part stays in eval mode so its BatchNorm statistics do not drift."""
    model.train()
    if train == "head" and not replicate_2019_bugs:
        model.backbone.eval()
    if train == "backbone":
        model.head.eval()


def load_finetuned(checkpoint_path) -> FineTuneNet:
    try:
        ckpt = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        model = build_finetune_net(None, ckpt["head"], seed=0)
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except Exception as error:
        raise ValueError(f"checkpoint {checkpoint_path} cannot be loaded ({type(error).__name__}: {error}); "
                         "delete it to retrain") from error
    return model
