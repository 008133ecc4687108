"""Multi-layer perceptron: the smallest model for transfer experiments on digits.

Submodule names follow the package convention: ``features`` maps an input
(any shape, flattened first) to the last hidden representation, ``classifier``
is the final linear layer.  "Freeze all but the head" therefore means freezing
``features``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from torch import nn

from nntransfer.errors import ConfigError
from nntransfer.models.building_blocks import make_activation, seeded
from nntransfer.models.data_info import data_info


class MLP(nn.Module):
    """``Flatten -> [Linear -> (BatchNorm) -> activation -> (Dropout)] * n -> Linear``."""

    def __init__(
        self,
        input_size: int,
        num_classes: int,
        hidden_sizes: Sequence[int] = (64,),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
    ):
        super().__init__()
        if any(int(size) < 1 for size in hidden_sizes):
            raise ConfigError(f"`hidden_sizes` must be positive integers; got {list(hidden_sizes)}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"`dropout` must lie in [0, 1); got {dropout}.")
        layers: list[nn.Module] = [nn.Flatten()]
        width = int(input_size)
        for size in hidden_sizes:
            layers.append(nn.Linear(width, int(size)))
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(size)))
            layers.append(make_activation(activation))
            if dropout:
                layers.append(nn.Dropout(float(dropout)))
            width = int(size)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, int(num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def mlp_model_fn(
    dataloaders: Mapping,
    seed: int,
    *,
    hidden_sizes: Sequence[int] = (64,),
    activation: str = "relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
    num_classes: int | None = None,
) -> MLP:
    """nnfabrik model function: an :class:`MLP` sized to the data.

    Input size and class count are read from ``dataloaders["train"]``
    (``num_classes`` overrides the latter).  Weights are initialised under
    ``seed``, so the same seed and data give the same model.
    """
    info = data_info(dataloaders, num_classes)
    with seeded(seed):
        return MLP(
            info.input_size,
            info.num_classes,
            hidden_sizes=hidden_sizes,
            activation=activation,
            dropout=dropout,
            batch_norm=batch_norm,
        )
