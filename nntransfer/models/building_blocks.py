"""Pieces every model builder shares: seeded construction and activations by name.

Model configs are JSON, so activations are named by strings; one table here
keeps the names the same across models.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from nntransfer.errors import ConfigError

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module for ``name`` (one of :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]()
    except (KeyError, TypeError):
        raise ConfigError(
            f"Unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}."
        ) from None


@contextmanager
def seeded(seed: int):
    """Seed torch for weight initialisation without changing the caller's RNG state.

    The same seed gives the same initial weights; the global random stream that
    the trainer relies on continues afterwards as if nothing had been drawn.
    """
    with torch.random.fork_rng(devices=_cuda_devices()):
        torch.manual_seed(int(seed))
        yield


def _cuda_devices() -> list[int]:
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def flat_output_size(features: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Length of ``features(x)`` per sample for inputs of ``input_shape``.

    Found by one forward pass in eval mode (BatchNorm cannot run in training
    mode on a single 1x1 sample), so no model has to repeat its own size
    arithmetic for every input resolution.
    """
    was_training = features.training
    features.eval()
    try:
        with torch.no_grad():
            output = features(torch.zeros(1, *input_shape))
    except RuntimeError as error:
        raise ConfigError(
            f"The network cannot process inputs of shape {tuple(input_shape)}: {error}. "
            "Use a larger `image_size` in the dataset config or a smaller network."
        ) from error
    finally:
        features.train(was_training)
    return output.reshape(1, -1).shape[1]
