"""LeNet-5 for small grey or colour images (8x8 digits up to 32x32 CIFAR and beyond).

Layout (names shared by every model of this package):

* ``features``: ``conv(5x5, 6) -> act -> avgpool -> conv(5x5, 16) -> act ->
  avgpool -> [global average pool] -> flatten``; its output is the vector the
  head sees.
* ``classifier``: ``Linear(120) -> act -> Linear(84) -> act -> Linear(classes)``.

The first convolution pads by 2, as LeNet does for MNIST.  The second pads by
2 only when its input is smaller than 10x10 (8x8 or 16x16 images), so the
network runs at any size from 8x8 up; padding has no parameters, so weights
keep their shapes.  With ``global_pool=True`` the head sees 16 channel means
whatever the resolution, and every parameter transfers between resolutions.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Mapping

from torch import nn

from nntransfer.models.building_blocks import flat_output_size, make_activation, seeded
from nntransfer.models.data_info import data_info

SMALL_INPUT = 10


class LeNet5(nn.Module):
    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        activation: str = "tanh",
        global_pool: bool = False,
    ):
        super().__init__()
        channels, height, width = input_shape
        second_padding = 2 if min(height, width) // 2 < SMALL_INPUT else 0
        layers = OrderedDict(
            conv1=nn.Conv2d(channels, 6, kernel_size=5, padding=2),
            act1=make_activation(activation),
            pool1=nn.AvgPool2d(2),
            conv2=nn.Conv2d(6, 16, kernel_size=5, padding=second_padding),
            act2=make_activation(activation),
            pool2=nn.AvgPool2d(2, ceil_mode=True),
        )
        if global_pool:
            layers["global_pool"] = nn.AdaptiveAvgPool2d(1)
        layers["flatten"] = nn.Flatten()
        self.features = nn.Sequential(layers)
        self.classifier = nn.Sequential(
            OrderedDict(
                fc1=nn.Linear(flat_output_size(self.features, input_shape), 120),
                act1=make_activation(activation),
                fc2=nn.Linear(120, 84),
                act2=make_activation(activation),
                fc3=nn.Linear(84, num_classes),
            )
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def lenet5_model_fn(
    dataloaders: Mapping,
    seed: int,
    *,
    activation: str = "tanh",
    global_pool: bool = False,
    num_classes: int | None = None,
) -> LeNet5:
    """nnfabrik model function: :class:`LeNet5` sized to the image data, seeded init."""
    info = data_info(dataloaders, num_classes)
    with seeded(seed):
        return LeNet5(info.image_shape, info.num_classes, activation=activation, global_pool=global_pool)
