"""Pretrained weights from a local file: ``.safetensors`` or a ``torch.save`` file.

Model builders never download at run time, so pretrained weights are files
fetched once on a machine with internet access (timm's ``model.safetensors``
or ``pytorch_model.bin``, torchvision's ``.pth``, or any ``state_dict`` saved
with ``torch.save``).  Both formats are read without running code from the
file: safetensors holds only tensors, and ``torch.load`` runs with
``weights_only=True``.

Training scripts often save more than the weights, so a dict holding the
state_dict under ``"state_dict"`` or ``"model"`` is unwrapped, and the
``module.`` prefix that ``DistributedDataParallel`` adds to every name is
removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch

from nntransfer.errors import ConfigError, TransferError

WRAPPER_KEYS = ("state_dict", "model")
DDP_PREFIX = "module."


def read_state_dict(weights_path: str) -> dict[str, torch.Tensor]:
    """The state_dict stored in ``weights_path``, on CPU."""
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"`weights_path` {str(path)!r} is not a file. Save the weights once with "
            "torch.save(model.state_dict(), path) or safetensors, and point `weights_path` at that file."
        )
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ConfigError(
                f"{str(path)!r} is a safetensors file, which needs the safetensors package: "
                'pip install "nntransfer[timm]" (or pip install safetensors).'
            ) from None
        try:
            state = load_file(str(path), device="cpu")
        except Exception as error:  # safetensors raises its own SafetensorError for bad headers
            raise TransferError(f"{str(path)!r} cannot be read as safetensors: {error}") from error
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # an unpickling refusal, a truncated file, not a torch file at all
            raise TransferError(
                f"{str(path)!r} cannot be read as weights (torch.load with weights_only=True): {error}"
            ) from error
    return _plain_state_dict(state, path)


def _plain_state_dict(state, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(state, Mapping):
        for key in WRAPPER_KEYS:
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not state:
        raise TransferError(f"{str(path)!r} does not hold a state_dict; got {type(state).__name__}.")
    not_tensors = sorted(name for name, value in state.items() if not isinstance(value, torch.Tensor))
    if not_tensors:
        raise TransferError(
            f"{str(path)!r} is not a plain state_dict: {not_tensors[:5]} are not tensors. "
            f"Save model.state_dict() (or a dict holding it under one of {list(WRAPPER_KEYS)})."
        )
    if all(name.startswith(DDP_PREFIX) for name in state):
        state = {name[len(DDP_PREFIX):]: value for name, value in state.items()}
    return dict(state)
