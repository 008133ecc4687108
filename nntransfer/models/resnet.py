"""ResNet-18/34/50 for inputs from 8x8 to ImageNet size.

Layout (names shared by every model of this package):

* ``features``: ``conv1 -> bn1 -> relu -> [maxpool] -> layer1..layer4 ->
  global_pool -> flatten``; it maps an image to one vector.
* ``classifier``: the final ``Linear``.

Inside ``features`` the names are torchvision's (``conv1``, ``bn1``,
``layer1.0.conv1`` ...), so a torchvision ResNet state_dict loads after
renaming ``conv1``/``bn1``/``layer*`` to ``features.*`` and ``fc`` to
``classifier`` (given the ImageNet stem).

The stem adapts to small inputs: ``stem="small"`` is the CIFAR stem (3x3
convolution, stride 1, no max-pool), ``"imagenet"`` the 7x7/stride-2 stem with
max-pool; ``"auto"`` picks "small" below 96 pixels.  ResNets always end in
global average pooling, so with a fixed stem every parameter transfers
between input resolutions.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Mapping

from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from nntransfer.errors import ConfigError
from nntransfer.models.building_blocks import seeded
from nntransfer.models.data_info import data_info

DEPTHS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}
STEMS = ("auto", "small", "imagenet")
IMAGENET_STEM_FROM = 96


class ResNet(nn.Module):
    def __init__(
        self,
        depth: int,
        input_shape: tuple[int, int, int],
        num_classes: int,
        stem: str = "auto",
        base_width: int = 64,
        zero_init_residual: bool = False,
    ):
        super().__init__()
        if depth not in DEPTHS:
            raise ConfigError(f"ResNet depth must be one of {sorted(DEPTHS)}; got {depth}.")
        if stem not in STEMS:
            raise ConfigError(f"`stem` must be one of {list(STEMS)}; got {stem!r}.")
        if int(base_width) < 1:
            raise ConfigError(f"`base_width` must be a positive integer; got {base_width}.")
        block, blocks_per_stage = DEPTHS[depth]
        channels, height, width = input_shape
        if stem == "auto":
            stem = "imagenet" if min(height, width) >= IMAGENET_STEM_FROM else "small"
        self.stem = stem
        layers = OrderedDict()
        if stem == "imagenet":
            layers["conv1"] = nn.Conv2d(channels, base_width, 7, stride=2, padding=3, bias=False)
        else:
            layers["conv1"] = nn.Conv2d(channels, base_width, 3, stride=1, padding=1, bias=False)
        layers["bn1"] = nn.BatchNorm2d(base_width)
        layers["relu"] = nn.ReLU(inplace=True)
        if stem == "imagenet":
            layers["maxpool"] = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_planes = base_width
        for stage, count in enumerate(blocks_per_stage):
            planes = base_width * 2**stage
            stride = 1 if stage == 0 else 2
            stage_blocks = []
            for index in range(count):
                downsample = None
                if index == 0 and (stride != 1 or in_planes != planes * block.expansion):
                    downsample = nn.Sequential(
                        nn.Conv2d(in_planes, planes * block.expansion, 1, stride=stride, bias=False),
                        nn.BatchNorm2d(planes * block.expansion),
                    )
                stage_blocks.append(
                    block(in_planes, planes, stride if index == 0 else 1, downsample)
                )
                in_planes = planes * block.expansion
            layers[f"layer{stage + 1}"] = nn.Sequential(*stage_blocks)
        layers["global_pool"] = nn.AdaptiveAvgPool2d(1)
        layers["flatten"] = nn.Flatten()
        self.features = nn.Sequential(layers)
        self.classifier = nn.Linear(in_planes, num_classes)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        """torchvision's initialisation, so from-scratch runs match its ResNets."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, Bottleneck):
                    nn.init.zeros_(module.bn3.weight)
                elif isinstance(module, BasicBlock):
                    nn.init.zeros_(module.bn2.weight)

    def forward(self, x):
        return self.classifier(self.features(x))


def resnet_model_fn(
    dataloaders: Mapping,
    seed: int,
    *,
    depth: int = 18,
    stem: str = "auto",
    base_width: int = 64,
    zero_init_residual: bool = False,
    num_classes: int | None = None,
) -> ResNet:
    """nnfabrik model function: a :class:`ResNet` of ``depth`` 18, 34 or 50.

    ``base_width`` scales all stages (64 is the standard width; 8 or 16 make
    small, fast networks for digits).
    """
    info = data_info(dataloaders, num_classes)
    with seeded(seed):
        return ResNet(
            int(depth),
            info.image_shape,
            info.num_classes,
            stem=stem,
            base_width=base_width,
            zero_init_residual=zero_init_residual,
        )

