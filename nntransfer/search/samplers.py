"""Optuna's samplers and pruners by short name, checked when a search is declared.

A search names them as ``"tpe"``, ``{"tpe": {"n_startup_trials": 5}}`` or
passes an Optuna object; names and option names are checked at once (with a
"did you mean"), the objects are built in each worker process.
"""

from __future__ import annotations

import inspect

from ..errors import ConfigError
from ..resolve import did_you_mean, import_dotted

SAMPLERS = {
    "tpe": "optuna.samplers.TPESampler",
    "random": "optuna.samplers.RandomSampler",
    "grid": "optuna.samplers.GridSampler",
    "cmaes": "optuna.samplers.CmaEsSampler",
    "gp": "optuna.samplers.GPSampler",
    "qmc": "optuna.samplers.QMCSampler",
}
PRUNERS = {
    "median": "optuna.pruners.MedianPruner",
    "percentile": "optuna.pruners.PercentilePruner",
    "successive_halving": "optuna.pruners.SuccessiveHalvingPruner",
    "hyperband": "optuna.pruners.HyperbandPruner",
    "none": "optuna.pruners.NopPruner",
}


def _check(what: str, spec, known: dict, base: str):
    """``(name, options)`` for a name or ``{name: options}``; an Optuna object is returned as is."""
    if not isinstance(spec, (str, dict)):
        if isinstance(spec, import_dotted(base, what)):
            return spec
        raise ConfigError(f"{what} must be a name ({', '.join(known)}), {{name: options}} or an Optuna {what}, "
                          f"got {spec!r}.")
    if isinstance(spec, dict):
        if len(spec) != 1:
            raise ConfigError(f"a {what} given as a dict names one {what}: {{name: options}}, got {spec!r}.")
        (name, options), = spec.items()
    else:
        name, options = spec, {}
    if name not in known:
        raise ConfigError(f"unknown {what} {name!r};{did_you_mean(name, known)} known: {', '.join(known)}.")
    if not isinstance(options, dict):
        raise ConfigError(f"the options of {what} {name!r} must be a dict, got {options!r}.")
    fixed = ("search_space",) if name == "grid" else ()
    accepted = [p for p in inspect.signature(import_dotted(known[name], what)).parameters if p not in fixed]
    for option in options:
        if option not in accepted:
            raise ConfigError(f"{what} {name!r} has no option {option!r}.{did_you_mean(option, accepted)} "
                              f"It accepts: {', '.join(accepted)}.")
    return name, dict(options)


def check_sampler(spec):
    return _check("sampler", spec, SAMPLERS, "optuna.samplers.BaseSampler")


def check_pruner(spec):
    if spec is None:
        return None
    return _check("pruner", spec, PRUNERS, "optuna.pruners.BasePruner")


def grid_size(sampler, dimensions) -> int | None:
    """How many points the grid sampler has (None for other samplers); checks every dimension has a grid."""
    if not isinstance(sampler, tuple) or sampler[0] != "grid":
        return None
    size = 1
    for dimension in dimensions:
        size *= len(dimension.values.grid(dimension.key))
    return size


def build_sampler(sampler, dimensions):
    """The Optuna sampler a checked spec names (a fresh one per call)."""
    if not isinstance(sampler, tuple):
        return sampler
    name, options = sampler
    if name == "grid":
        options = {**options, "search_space": {d.key: d.values.grid(d.key) for d in dimensions}}
    return import_dotted(SAMPLERS[name], "sampler")(**options)


def build_pruner(pruner):
    if pruner is None:
        return import_dotted(PRUNERS["none"], "pruner")()
    if not isinstance(pruner, tuple):
        return pruner
    name, options = pruner
    return import_dotted(PRUNERS[name], "pruner")(**options)
