"""Calling user code with only the keywords it accepts.

A user's model may or may not take ``data_key``, and nnfabrik's ``cb`` may
take ``epoch`` and ``metrics`` or nothing at all; the loop and modules that
call a model (distillation's teacher, representation matching's extra pass)
ask here instead of guessing.
"""

import inspect

import torch

from nntransfer.errors import ConfigError


def accepts_data_key(model: torch.nn.Module) -> bool:
    """Whether the model's forward takes a ``data_key`` keyword (multi-task models do)."""
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "data_key" or p.kind is p.VAR_KEYWORD for p in parameters)


def callback_caller(cb):
    """A function ``call(**info)`` that passes ``cb`` only the keywords it takes.

    nnfabrik's ``cb`` may be a plain callable without arguments, so the info is
    offered, never forced.
    """
    if cb is None:
        return None
    if not callable(cb):
        raise ConfigError(f"cb must be callable or None, got {cb!r}.")
    try:
        parameters = inspect.signature(cb).parameters.values()
    except (TypeError, ValueError):
        return lambda **info: cb(**info)
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return lambda **info: cb(**info)
    names = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return lambda **info: cb(**{key: value for key, value in info.items() if key in names})
