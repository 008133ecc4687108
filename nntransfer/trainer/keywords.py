"""Keyword options checked against the signature of what receives them.

A trainer config passes options on as keyword arguments: to a main-loop
module's constructor, to an optimizer or loss class, to a loss function.
Reading the receiver's signature, without calling it, turns a misspelled
option into a ConfigError that names the accepted ones while the config is
being made, instead of a TypeError in a worker after the config was hashed
and stored.  The loop runs the same checks when it builds what a config
names, so code that builds the loop directly gets the same messages.
"""

import inspect

from nntransfer.errors import ConfigError
from nntransfer.resolve import did_you_mean
from nntransfer.trainer.metrics import EPOCH_SPLITS, check_metric

_BY_KEYWORD = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _parameters(target):
    """``target``'s parameters, or None when its signature cannot be read (some builtins)."""
    try:
        return list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return None


def check_keywords(what, target, options, *, positional=0, supplied=(), required=True):
    """Refuse options that ``target`` does not take, and (``required``) parameters without default they leave out.

    ``what`` names the receiver in the message (``"main-loop module
    'early_stopping'"``).  ``positional``: how many leading parameters the
    caller fills itself (an optimizer's parameters, a loss function's
    outputs and targets); ``supplied``: keywords the caller passes itself
    (an optimizer's ``lr``), which the options must not repeat.  A target
    that takes ``**kwargs`` accepts any name; one whose signature cannot be
    read is not checked here (calling it still is).
    """
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise ConfigError(f"the options of {what} must be a dict of keyword arguments, got {options!r}.")
    parameters = _parameters(target)
    if parameters is None:
        return
    rest = parameters[positional:]
    accepted = [p.name for p in rest if p.kind in _BY_KEYWORD and p.name not in supplied]
    open_ended = any(p.kind is p.VAR_KEYWORD for p in rest)
    listing = ", ".join(accepted) or "none"
    for name in options:
        if name in supplied:
            raise ConfigError(
                f"{what}: {name!r} is not an option here, the trainer passes it itself; set the trainer's "
                f"{name!r} option instead."
            )
        if name not in accepted and not open_ended:
            raise ConfigError(f"{what} has no option {name!r}.{did_you_mean(name, accepted)} It accepts: {listing}.")
    missing = [
        p.name for p in rest
        if required and p.kind in _BY_KEYWORD and p.default is p.empty and p.name not in options and p.name not in supplied
    ]
    if missing:
        raise ConfigError(f"{what} needs {', '.join(missing)} (no default). It accepts: {listing}.")


def with_defaults(target, options):
    """``options`` completed with the defaults of the keyword parameters of ``target`` they leave out."""
    defaults = {
        p.name: p.default
        for p in _parameters(target) or ()
        if p.kind in _BY_KEYWORD and p.default is not p.empty
    }
    return {**defaults, **(options or {})}


def check_module_options(name, cls, options, epoch_metrics=None):
    """Check the options of main-loop module class ``cls`` without constructing it.

    First their names against the constructor's signature; then, given the
    run's ``epoch_metrics`` (see :func:`nntransfer.trainer.metrics.known_metrics`),
    the options that name a metric (``cls.metric_options``); last the
    module's own :meth:`~nntransfer.trainer.module.MainLoopModule.check_options`.
    The metric comes before the module's check, so that a misspelled
    objective is reported as such and not as a metric of unknown direction.
    Returns the options completed with the constructor's defaults.
    """
    what = f"main-loop module {name!r}"
    check_keywords(what, cls, options)
    completed = with_defaults(cls, options)
    if epoch_metrics is not None:
        for option in cls.metric_options:
            if completed.get(option) is not None:
                check_metric(f"{what}: {option}", completed[option], epoch_metrics,
                             f" Every epoch measures the splits {list(EPOCH_SPLITS)}.")
    cls.check_options(completed)
    return completed
