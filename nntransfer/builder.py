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
from typing import Any, Callable

from .resolve import resolve_fn


def get_data(dataset_fn: str | Callable, dataset_config: dict, seed: int) -> Any:
    """Call the dataset function; return its dataloaders.

    A config that holds its own ``seed`` (nnfabrik's configs may) keeps it,
    as nnfabrik's ``get_all_parts`` did.
    """
    if "seed" in dataset_config:
        return resolve_fn(dataset_fn, "dataset_fn")(**dataset_config)
    return resolve_fn(dataset_fn, "dataset_fn")(seed=seed, **dataset_config)


def get_model(model_fn: str | Callable, model_config: dict, dataloaders: Any, seed: int, state_dict=None):
    """Call the model function; optionally load a full state_dict into the model.

    ``model_config`` holds the function's keywords only: the table layer
    takes its own options (such as ``transfer``) out before it calls here.
    """
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
