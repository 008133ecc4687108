"""nnfabrik's ``builder``: resolve functions by name and build data, model and trainer with nnfabrik's signatures.

They differ from :mod:`nntransfer.builder` as nnfabrik's did: the seed of
:func:`get_data` is inside the config, :func:`get_model` takes ``state_dict``,
``strict`` and ``data_info``, and :func:`get_trainer` binds a config only when
one is given.  Functions are named by a dotted path (or passed as callables)
and imported, never evaluated: a bare name, which nnfabrik looked up in a
default module with ``eval``, is an error that asks for the dotted path.
"""

from __future__ import annotations

from functools import partial

from ..resolve import resolve_fn as _resolve
from .unsupported import NotSupported
from .utility.nn_helpers import load_state_dict

__all__ = ["resolve_fn", "resolve_model", "resolve_data", "resolve_trainer", "get_model", "get_data", "get_trainer",
           "get_all_parts"]


def resolve_fn(fn_name, default_base):
    """The callable named by the dotted path ``fn_name`` (a callable is returned as it is)."""
    if callable(fn_name):
        return fn_name
    if isinstance(fn_name, str) and "." not in fn_name:
        raise NotSupported(
            f"the bare name {fn_name!r} would be looked up in nnfabrik's default module {default_base!r} with eval; "
            "nntransfer imports functions only by their full dotted path, e.g. 'mylab.models.my_model_fn'."
        )
    return _resolve(fn_name, "function")


resolve_model = partial(resolve_fn, default_base="models")
resolve_data = partial(resolve_fn, default_base="datasets")
resolve_trainer = partial(resolve_fn, default_base="training")


def get_model(model_fn, model_config, dataloaders=None, seed=None, state_dict=None, strict=True, data_info=None):
    """``model_fn(dataloaders, seed=seed, **model_config)`` (with ``data_info=`` when given), loaded with ``state_dict``.

    A config with ``transfer`` set loads the state flexibly (names matched,
    what does not fit skipped and reported), as nnfabrik did for transfer.
    """
    model_fn = resolve_model(model_fn)
    if data_info is None:
        net = model_fn(dataloaders, seed=seed, **model_config)
    else:
        net = model_fn(dataloaders, data_info=data_info, seed=seed, **model_config)
    if state_dict is not None:
        flexible = bool(model_config.get("transfer", False))
        load_state_dict(net, state_dict, match_names=flexible, ignore_unused=flexible, ignore_dim_mismatch=flexible,
                        ignore_missing=flexible, strict=strict)
    return net


def get_data(dataset_fn, dataset_config):
    """``dataset_fn(**dataset_config)``: the seed, if any, is part of the config."""
    return resolve_data(dataset_fn)(**dataset_config)


def get_trainer(trainer_fn, trainer_config=None):
    """The trainer function, with ``trainer_config`` bound when one is given."""
    trainer_fn = resolve_trainer(trainer_fn)
    return partial(trainer_fn, **trainer_config) if trainer_config is not None else trainer_fn


def get_all_parts(dataset_fn, dataset_config, model_fn, model_config, seed=None, state_dict=None, strict=True,
                  trainer_fn=None, trainer_config=None):
    """Dataloaders and model (and the trainer when ``trainer_fn`` is given) from one call, the seed put into the dataset config."""
    if seed is not None and "seed" not in dataset_config:
        dataset_config["seed"] = seed
    dataloaders = get_data(dataset_fn, dataset_config)
    model = get_model(model_fn, model_config, dataloaders, seed=seed, state_dict=state_dict, strict=strict)
    if trainer_fn is None:
        return dataloaders, model
    return dataloaders, model, get_trainer(trainer_fn, trainer_config)
