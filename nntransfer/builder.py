"""Build datasets, models and trainers from dotted function paths and configs.

The functions follow nnfabrik's contract so that existing dataset, model and
trainer functions plug in unchanged::

    dataset_fn(seed, **dataset_config)                         -> dataloaders
    model_fn(dataloaders, seed, **model_config)                -> torch.nn.Module
    trainer_fn(model, dataloaders, seed, uid, cb, **trainer_config)
                                                               -> (score, output, model_state)

Functions are resolved by import only (``importlib``), never by ``eval``.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any, Callable

from .errors import FunctionResolutionError


def resolve_fn(path: str | Callable, kind: str = "function") -> Callable:
    """Import ``package.module.function`` and return the callable.

    A callable passed in is returned as is, so code can hand over functions
    directly.  The error says which part of the path failed and why.
    """
    if callable(path):
        return path
    if not isinstance(path, str) or "." not in path.strip("."):
        raise FunctionResolutionError(
            f"{kind} {path!r} is not a dotted path; write it as 'package.module.function_name'."
        )
    module_name, _, attribute = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise FunctionResolutionError(
            f"{kind} {path!r}: module {module_name!r} cannot be imported ({error}). "
            "Check the spelling and that the package is installed in this environment."
        ) from None
    try:
        fn = getattr(module, attribute)
    except AttributeError:
        raise FunctionResolutionError(
            f"{kind} {path!r}: module {module_name!r} has no attribute {attribute!r}."
        ) from None
    if not callable(fn):
        raise FunctionResolutionError(f"{kind} {path!r} names a {type(fn).__name__}, not a function.")
    return fn


def get_data(dataset_fn: str | Callable, dataset_config: dict, seed: int) -> Any:
    """Call the dataset function; return its dataloaders."""
    return resolve_fn(dataset_fn, "dataset_fn")(seed=seed, **dataset_config)


def get_model(model_fn: str | Callable, model_config: dict, dataloaders: Any, seed: int, state_dict=None):
    """Call the model function; optionally load a full state_dict into the model.

    Table options in the config (such as ``transfer``, read by the transfer
    tables) are not passed to the function.
    """
    if isinstance(model_fn, str):
        from .configs.functions import split_table_options

        model_config, _ = split_table_options(model_fn, "model", model_config)
    model = resolve_fn(model_fn, "model_fn")(dataloaders, seed=seed, **model_config)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    return model


def get_trainer(trainer_fn: str | Callable, trainer_config: dict) -> Callable:
    """Return the trainer function with its config bound.

    The result is called as ``trainer(model, dataloaders, seed, uid, cb)``.
    """
    return functools.partial(resolve_fn(trainer_fn, "trainer_fn"), **trainer_config)


def get_all_parts(
    dataset_fn, dataset_config, model_fn, model_config, seed, trainer_fn=None, trainer_config=None, state_dict=None
):
    """Build dataloaders and model (and the trainer when given), all from one seed."""
    dataloaders = get_data(dataset_fn, dataset_config, seed)
    model = get_model(model_fn, model_config, dataloaders, seed, state_dict=state_dict)
    if trainer_fn is None:
        return dataloaders, model
    return dataloaders, model, get_trainer(trainer_fn, trainer_config or {})
