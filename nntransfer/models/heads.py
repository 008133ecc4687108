"""Find and replace a model's final classifier, for transfer to a new label set.

Models of this package keep their head in ``classifier`` (a ``Linear``, or a
``Sequential`` ending in one).  Other models (torchvision's ``fc``,
``heads.head``, ``classifier.6`` ...) are searched for their last ``Linear``
layer in registration order, which is the output layer for every
classification model in torchvision.
"""

from __future__ import annotations

from contextlib import nullcontext

from torch import nn

from nntransfer.errors import TransferError
from nntransfer.models.building_blocks import seeded


def find_head(model: nn.Module) -> str:
    """Dotted name of the final classification layer (a ``Linear``) of ``model``."""
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, nn.Linear):
        return "classifier"
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if isinstance(classifier, nn.Module):
        inside = [name for name in linears if name.startswith("classifier.")]
        if inside:
            return inside[-1]
    if not linears:
        raise TransferError(
            f"{type(model).__name__} has no nn.Linear layer to act as its classifier; "
            "replace its output layer by hand."
        )
    return linears[-1]


def replace_head(model: nn.Module, num_classes: int, seed: int | None = None) -> str:
    """Swap the final ``Linear`` for a fresh one with ``num_classes`` outputs, in place.

    The new layer keeps the old one's input size, bias setting, device and
    dtype; it is initialised under ``seed`` when one is given, so the same
    seed gives the same head.  Returns the head's dotted name, ready for
    "freeze all but the head".
    """
    if int(num_classes) < 1:
        raise TransferError(f"`num_classes` must be a positive integer; got {num_classes}.")
    name = find_head(model)
    old = model.get_submodule(name)
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    with seeded(seed) if seed is not None else nullcontext():
        new = nn.Linear(
            old.in_features,
            int(num_classes),
            bias=old.bias is not None,
            device=old.weight.device,
            dtype=old.weight.dtype,
        )
    setattr(parent, child, new)
    return name

