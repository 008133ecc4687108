"""torchvision classification models by name, with weights from a local file.

Nothing is downloaded at run time: pretrained weights come from
``weights_path``, a state_dict saved with ``torch.save`` or safetensors (for
example from ``torchvision.models.resnet18(weights="DEFAULT").state_dict()``
on a machine with internet access; see :mod:`nntransfer.models.weights`).  The model is then adapted to the data:

* input channels: the first convolution is rebuilt for the data's channel
  count; pretrained filters are averaged over their input channels and scaled
  by ``old/new`` channels, so a grey image gives the response its RGB copy
  would have given;
* classes: the final ``Linear`` is replaced (seeded) when the data has a
  different number of classes than the checkpoint.

The result is a :class:`ZooModel` with the package-wide names: ``features``
(the torchvision network with its head replaced by ``Identity``, keeping
torchvision's inner names) and ``classifier`` (the head).
"""

from __future__ import annotations

from typing import Mapping

import torch
import torchvision
from torch import nn

from nntransfer.errors import ConfigError, TransferError
from nntransfer.models.building_blocks import seeded
from nntransfer.models.data_info import data_info
from nntransfer.models.heads import find_head, replace_head
from nntransfer.models.weights import read_state_dict

AUX_HEAD_MODELS = {"googlenet", "inception_v3"}
AUX_HEAD_PREFIXES = ("aux1.", "aux2.", "AuxLogits.")


class ZooModel(nn.Module):
    """A torchvision model split into ``features`` and ``classifier``."""

    def __init__(self, network: nn.Module):
        super().__init__()
        head_name = find_head(network)
        self.classifier = network.get_submodule(head_name)
        parent_name, _, child = head_name.rpartition(".")
        setattr(network.get_submodule(parent_name) if parent_name else network, child, nn.Identity())
        self.features = network

    def forward(self, x):
        return self.classifier(self.features(x))


def classification_model_names() -> list[str]:
    """Names accepted by :func:`torchvision_model_fn`."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def torchvision_model_fn(
    dataloaders: Mapping,
    seed: int,
    *,
    name: str = "resnet18",
    weights_path: str | None = None,
    num_classes: int | None = None,
) -> ZooModel:
    """nnfabrik model function: torchvision model ``name`` adapted to the data.

    ``weights_path`` is a local state_dict file, ``.safetensors`` or
    ``torch.save`` (read by :func:`nntransfer.models.weights.read_state_dict`); ``None`` starts from
    torchvision's random initialisation under ``seed``.
    """
    names = classification_model_names()
    if name not in names:
        raise ConfigError(f"Unknown torchvision classification model {name!r}; choose one of {names}.")
    info = data_info(dataloaders, num_classes)
    channels = info.image_shape[0]
    with seeded(seed):
        network = _build(name)
        if weights_path is not None:
            _load_checkpoint(network, name, weights_path)
        _adapt_input_channels(network, channels)
        if network.get_submodule(find_head(network)).out_features != info.num_classes:
            replace_head(network, info.num_classes)
    return ZooModel(network)


def _build(name: str) -> nn.Module:
    # Auxiliary heads make training-mode forward return a tuple; they are only
    # a training aid for the original ImageNet run, so they are left out.
    options = {"aux_logits": False, "init_weights": True} if name in AUX_HEAD_MODELS else {}
    return torchvision.models.get_model(name, weights=None, **options)


def _load_checkpoint(network: nn.Module, name: str, weights_path: str) -> None:
    state = read_state_dict(weights_path)
    if name in AUX_HEAD_MODELS:
        state = {key: value for key, value in state.items() if not key.startswith(AUX_HEAD_PREFIXES)}
    head = find_head(network)
    head_weight = state.get(f"{head}.weight")
    if head_weight is not None and head_weight.shape[0] != network.get_submodule(head).out_features:
        replace_head(network, head_weight.shape[0])
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        raise TransferError(
            f"The weights in {weights_path!r} do not fit torchvision's {name!r}: {error}"
        ) from error


def _adapt_input_channels(network: nn.Module, channels: int) -> None:
    first_name, first = next(
        ((n, m) for n, m in network.named_modules() if isinstance(m, nn.Conv2d)), (None, None)
    )
    if first is None or first.in_channels == channels:
        return
    if first.groups != 1:
        raise ConfigError(
            f"The first convolution of this model is grouped; it cannot be adapted from "
            f"{first.in_channels} to {channels} input channels."
        )
    replacement = nn.Conv2d(
        channels,
        first.out_channels,
        first.kernel_size,
        stride=first.stride,
        padding=first.padding,
        dilation=first.dilation,
        bias=first.bias is not None,
        padding_mode=first.padding_mode,
    )
    with torch.no_grad():
        mean_filter = first.weight.mean(dim=1, keepdim=True)
        replacement.weight.copy_(mean_filter.repeat(1, channels, 1, 1) * first.in_channels / channels)
        if first.bias is not None:
            replacement.bias.copy_(first.bias)
    parent_name, _, child = first_name.rpartition(".")
    setattr(network.get_submodule(parent_name) if parent_name else network, child, replacement)
