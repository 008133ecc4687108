"""Losses and optimizers chosen by name or by dotted path.

Configs hold plain strings, so a run is reproducible from its stored config:
a short name for the common choices, or ``"package.module.Name"`` for anything
else.  Names are resolved with importlib only.
"""

import torch

from nntransfer.errors import ConfigError, FunctionResolutionError
from nntransfer.resolve import resolve_name
from nntransfer.trainer.keywords import check_keywords

LOSSES = {
    "cross_entropy": "torch.nn.CrossEntropyLoss",
    "nll": "torch.nn.NLLLoss",
    "mse": "torch.nn.MSELoss",
    "l1": "torch.nn.L1Loss",
    "smooth_l1": "torch.nn.SmoothL1Loss",
    "huber": "torch.nn.HuberLoss",
    "bce": "torch.nn.BCELoss",
    "bce_with_logits": "torch.nn.BCEWithLogitsLoss",
    "kl_div": "torch.nn.KLDivLoss",
    "poisson_nll": "torch.nn.PoissonNLLLoss",
}

OPTIMIZERS = {
    "adam": "torch.optim.Adam",
    "adamw": "torch.optim.AdamW",
    "sgd": "torch.optim.SGD",
    "rmsprop": "torch.optim.RMSprop",
    "adagrad": "torch.optim.Adagrad",
    "adamax": "torch.optim.Adamax",
    "nadam": "torch.optim.NAdam",
    "radam": "torch.optim.RAdam",
}


def resolve_loss(name: str):
    """The loss class or function that ``name`` names, not instantiated."""
    target = resolve_name("loss", name, LOSSES)
    if not callable(target):
        raise FunctionResolutionError(f"loss {name!r} resolves to {target!r}, which is not callable.")
    return target


def check_loss_options(name: str, options: dict | None) -> None:
    """Check ``options`` against the loss's signature: a class's constructor, or a function's keywords after (outputs, targets)."""
    target = resolve_loss(name)
    check_keywords(f"loss {name!r}", target, options, positional=0 if isinstance(target, type) else 2)


def resolve_optimizer(name: str) -> type:
    """The optimizer class that ``name`` names, not instantiated."""
    target = resolve_name("optimizer", name, OPTIMIZERS)
    if not (isinstance(target, type) and issubclass(target, torch.optim.Optimizer)):
        raise ConfigError(f"optimizer {name!r} resolves to {target!r}, which is not a torch.optim.Optimizer subclass.")
    return target


def check_optimizer_options(name: str, options: dict | None) -> None:
    """Check ``options`` against the optimizer's signature (the parameters and ``lr`` come from the trainer)."""
    check_keywords(f"optimizer {name!r}", resolve_optimizer(name), options, positional=1, supplied=("lr",))


def build_loss(name: str, options: dict | None = None):
    """A loss callable ``loss(outputs, targets)``: a class is instantiated with ``options``."""
    target = resolve_loss(name)
    options = dict(options or {})
    if isinstance(target, type):
        try:
            return target(**options)
        except TypeError as error:
            raise ConfigError(f"loss {name!r} does not accept options {options}: {error}") from error
    if options:
        return _LossWithOptions(target, options)
    return target


class _LossWithOptions:
    """A loss function with fixed keyword options (a picklable partial)."""

    def __init__(self, fn, options):
        self.fn = fn
        self.options = options

    def __call__(self, outputs, targets):
        return self.fn(outputs, targets, **self.options)


def build_optimizer(name: str, params, lr: float, options: dict | None = None) -> torch.optim.Optimizer:
    """An optimizer over ``params`` (parameters or param-group dicts)."""
    target = resolve_optimizer(name)
    options = dict(options or {})
    try:
        return target(params, lr=lr, **options)
    except TypeError as error:
        raise ConfigError(f"optimizer {name!r} does not accept options {options}: {error}") from error
