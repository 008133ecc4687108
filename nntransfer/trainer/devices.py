"""Choosing the device a run uses and moving batches onto it.

Shared by the loop and the data-generating trainer, which must agree on what
``device="auto"`` means and on how nested batches (dicts of extras, tuples)
are moved.
"""

import torch

from nntransfer.errors import ConfigError


def resolve_device(device) -> torch.device:
    """``"auto"`` means CUDA when available, else CPU; anything else goes to torch.device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"device {device!r} is not a torch device ('auto', 'cpu', 'cuda', 'cuda:1', ...).") from error


def to_device(value, device, non_blocking=False):
    """Move tensors (also inside dicts, lists and tuples) to ``device``."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=non_blocking)
    if isinstance(value, dict):
        return {key: to_device(item, device, non_blocking) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(item, device, non_blocking) for item in value)
    return value
