"""VGG-11 and VGG-16, with or without BatchNorm, for inputs from 8x8 to ImageNet size.

Layout (names shared by every model of this package):

* ``features``: the convolution stack, then global average pooling
  (``global_pool=True``) or nothing, then ``flatten``.
* ``classifier``: ``Linear -> ReLU -> Dropout -> Linear -> ReLU -> Dropout ->
  Linear`` with ``classifier_width`` hidden units (4096 in the paper).

The convolution stack has torchvision's layer order and indices
(``features.0``, ``features.3`` ...), and so has the classifier, so torchvision
VGG weights load by name.  VGG halves the resolution five times; for inputs
smaller than 32 pixels the last max-pools become ``Identity`` (kept as
placeholders so the indices, and thus the state_dict keys, never change).

With ``global_pool=False`` (classic VGG) the first classifier layer sees the
flattened feature map, so its shape depends on the input resolution; with
``global_pool=True`` it sees the last layer's channel means and every parameter transfers
between resolutions (multigrid training).
"""

from __future__ import annotations

from typing import Mapping

from torch import nn

from nntransfer.errors import ConfigError
from nntransfer.models.building_blocks import flat_output_size, seeded
from nntransfer.models.data_info import data_info

POOL = "M"
LAYOUTS = {
    11: (64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
    16: (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512, POOL),
}


class VGG(nn.Module):
    def __init__(
        self,
        depth: int,
        input_shape: tuple[int, int, int],
        num_classes: int,
        batch_norm: bool = False,
        global_pool: bool = False,
        classifier_width: int = 4096,
        dropout: float = 0.5,
        base_width: int = 64,
    ):
        super().__init__()
        if depth not in LAYOUTS:
            raise ConfigError(f"VGG depth must be one of {sorted(LAYOUTS)}; got {depth}.")
        if int(classifier_width) < 1:
            raise ConfigError(f"`classifier_width` must be a positive integer; got {classifier_width}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"`dropout` must lie in [0, 1); got {dropout}.")
        if int(base_width) < 1:
            raise ConfigError(f"`base_width` must be a positive integer; got {base_width}.")
        channels, height, width = input_shape
        pools_that_fit = max(0, min(height, width).bit_length() - 1)
        layers: list[nn.Module] = []
        pools = 0
        for entry in LAYOUTS[depth]:
            if entry == POOL:
                pools += 1
                layers.append(nn.MaxPool2d(2, 2) if pools <= pools_that_fit else nn.Identity())
                continue
            out_channels = entry * int(base_width) // 64
            layers.append(nn.Conv2d(channels, out_channels, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
            channels = out_channels
        if global_pool:
            layers.append(nn.AdaptiveAvgPool2d(1))
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        hidden = int(classifier_width)
        self.classifier = nn.Sequential(
            nn.Linear(flat_output_size(self.features, input_shape), hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's initialisation, so from-scratch runs match its VGGs."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        return self.classifier(self.features(x))


def vgg_model_fn(
    dataloaders: Mapping,
    seed: int,
    *,
    depth: int = 11,
    batch_norm: bool = False,
    global_pool: bool = False,
    classifier_width: int = 4096,
    dropout: float = 0.5,
    base_width: int = 64,
    num_classes: int | None = None,
) -> VGG:
    """nnfabrik model function: a :class:`VGG` of ``depth`` 11 or 16, seeded init.

    A ``classifier_width`` of 256 or 512 keeps the head small for 8x8-32x32
    data; ``base_width`` scales the convolution widths (64 is the paper's,
    and the only one whose weights match torchvision's).
    """
    info = data_info(dataloaders, num_classes)
    with seeded(seed):
        return VGG(
            int(depth),
            info.image_shape,
            info.num_classes,
            batch_norm=batch_norm,
            global_pool=global_pool,
            classifier_width=classifier_width,
            dropout=dropout,
            base_width=base_width,
        )
