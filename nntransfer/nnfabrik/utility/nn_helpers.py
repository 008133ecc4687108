"""nnfabrik's ``utility.nn_helpers``: seeding, devices, shapes and flexible state_dict loading."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn

from ...transfer.loading import load_partial

__all__ = ["get_io_dims", "get_dims_for_loader_dict", "set_random_seed", "move_to_device", "find_prefix",
           "load_state_dict"]


def get_io_dims(data_loader):
    """Shapes of the items of the loader's first batch (a dict for dict or namedtuple batches)."""
    items = next(iter(data_loader))
    if hasattr(items, "_asdict"):
        items = items._asdict()
    if hasattr(items, "items"):
        return {k: v.shape for k, v in items.items()}
    return tuple(v.shape for v in items)


def get_dims_for_loader_dict(dataloaders):
    return {k: get_io_dims(v) for k, v in dataloaders.items()}


def set_random_seed(seed: int, deterministic: bool = True):
    """Seed Python, numpy and torch; with ``deterministic`` also make cuDNN deterministic."""
    random.seed(seed)
    np.random.seed(seed)
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    torch.manual_seed(seed)


def move_to_device(model, gpu=True, multi_gpu=True):
    """``(model, device)``: the model on the GPU when there is one and ``gpu``, else on the CPU."""
    device = "cuda" if torch.cuda.is_available() and gpu else "cpu"
    if multi_gpu and torch.cuda.device_count() > 1:
        model = nn.DataParallel(model)
    return model.to(device), device


def find_prefix(keys: list, p_agree: float = 0.66, separator: str = ".") -> tuple[str, int]:
    """The longest dotted prefix shared by at least ``p_agree`` of ``keys``, and its number of parts."""
    split = [key.split(separator) for key in keys]
    prefix, length = "", 0
    while True:
        counts = {}
        for parts in split:
            if len(parts) > length + 1:
                candidate = separator.join(parts[: length + 1])
                counts[candidate] = counts.get(candidate, 0) + 1
        if not counts:
            return prefix, length
        best, count = max(counts.items(), key=lambda item: item[1])
        if count < p_agree * len(split):
            return prefix, length
        prefix, length = best, length + 1


def load_state_dict(model, state_dict: dict, ignore_missing: bool = False, ignore_unused: bool = False,
                    match_names: bool = False, ignore_dim_mismatch: bool = False, prefix_agreement: float = 0.98,
                    strict: bool = True):
    """Load ``state_dict`` into ``model``; the ``ignore_*`` flags allow what does not fit (nnfabrik's options).

    With ``match_names`` the prefix that most state names share is replaced by
    the one most model names share.  Whatever is allowed not to fit is
    skipped and reported (:func:`nntransfer.transfer.loading.load_partial`);
    what is not allowed is an error naming it.
    """
    if match_names:
        state_prefix, state_parts = find_prefix(list(state_dict), prefix_agreement)
        model_prefix, _ = find_prefix(list(model.state_dict()), prefix_agreement)
        renamed = {}
        for name, value in state_dict.items():
            parts = name.split(".")
            if state_parts and parts[:state_parts] == state_prefix.split("."):
                parts = parts[state_parts:]
            renamed[".".join(([model_prefix] if model_prefix else []) + parts)] = value
        state_dict = renamed
    if not strict:
        model.load_state_dict(state_dict, strict=False)
        return None
    model_state = model.state_dict()
    problems = []
    unused = sorted(set(state_dict) - set(model_state))
    missing = sorted(set(model_state) - set(state_dict))
    mismatched = sorted(name for name in set(state_dict) & set(model_state)
                        if tuple(state_dict[name].shape) != tuple(model_state[name].shape))
    if unused and not ignore_unused:
        problems.append(f"unused keys {unused}")
    if missing and not ignore_missing:
        problems.append(f"missing keys {missing}")
    if mismatched and not ignore_dim_mismatch:
        problems.append(f"shape mismatches {mismatched}")
    if problems:
        raise RuntimeError("Error in loading state_dict: " + "; ".join(problems))
    return load_partial(model, state_dict, strict_nothing_matched=False)
