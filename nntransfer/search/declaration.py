"""A search, as a recipe module declares it: a base experiment, a space, an objective, a budget.

::

    search = Search(
        pretrained_then_finetune,                       # an Experiment or TransferExperiment
        space={
            "trainer.lr": LogUniform(1e-4, 1e-1),        # the last step's trainer
            "trainer.modules.finetuning.unfreeze_at_epoch": Integer(1, 8),
            "model.hidden_sizes": Categorical([(64,), (128, 64)]),
            "0.trainer.epochs": Integer(5, 20),          # step 0's trainer
        },
        name="finetune-lr",
        objective="validation.accuracy", trials=20, pruner="median",
    )

A space key is ``[step.]kind.field[.option...]``: the step of the chain (0
first; left out, the last step, whose result is the objective), the config
(``dataset``, ``model`` or ``trainer``), its field, and for a dict field the
path inside it (a main-loop module's option).  ``"seed"`` searches the seed.
Everything is checked when the search is declared, before any trial: each
key names an existing field (the error lists the known ones), and the base
config is rebuilt with each dimension's extreme values and choices, so a value
its function would refuse fails now.  Steps the space does not touch are the
same in every trial, so they are trained once and shared by all.

The objective is read from the last step: ``"score"`` (the trainer's score)
or a recorded metric such as ``"validation.accuracy"`` (the trainer output's
``final`` value, else the last value of its ``history``); with several seeds
a trial's value is the mean over them.
"""

from __future__ import annotations

import copy
import math

from ..configs import Experiment, TransferExperiment
from ..configs.experiment import MAX_SEED
from ..errors import ConfigError
from ..hashing import canonical_json, digest
from ..resolve import did_you_mean
from ..steps import CONFIG_KINDS
from .samplers import check_pruner, check_sampler, grid_size
from .space import Categorical, Integer, as_dimension

STANDARD_TRAINER = "nntransfer.trainer.standard.standard_trainer"
DIRECTIONS = ("maximize", "minimize")


class Dimension:
    """One searched value: its space key, where it goes, and the values it may take."""

    def __init__(self, key: str, step: int | None, kind: str | None, path: tuple, values):
        self.key, self.step, self.kind, self.path, self.values = key, step, kind, path, values

    def __repr__(self):
        return f"{self.key}: {self.values!r}"


class Search:
    """A hyperparameter search over the configs of ``base`` (see the module doc).

    ``name`` names the Optuna study, which lives in the schema of the table
    that trains the trials (``table``, default ``TransferredTrainedModel``).
    ``direction``: ``"maximize"`` or ``"minimize"``; left out, it follows the
    objective's name (accuracy up, loss down; ``"score"`` follows the
    trainer's ``score_metric``).  Budget: ``trials`` (trials in the study, all
    workers together) and/or ``timeout`` (seconds a worker keeps starting
    trials).  ``sampler``: ``"tpe"``, ``"random"``, ``"grid"``, ``"cmaes"``,
    ``"gp"``, ``"qmc"``, a ``{name: options}`` dict or an Optuna sampler.
    ``pruner``: None, ``"median"``, ``"percentile"``,
    ``"successive_halving"``, ``"hyperband"``, a dict or an Optuna pruner; it
    stops trials whose per-epoch objective lags behind.
    """

    def __init__(self, base, space, *, name: str, objective: str = "score", direction: str | None = None,
                 trials: int | None = None, timeout: float | None = None, sampler="tpe", pruner=None,
                 table=None, description: str = ""):
        if isinstance(base, Experiment):
            base = TransferExperiment([base], description=base.description)
        if not isinstance(base, TransferExperiment):
            raise ConfigError(f"a search needs an Experiment or TransferExperiment as its base, got {type(base).__name__}.")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise ConfigError(f"name must be a non-empty str of at most 200 characters (the study's name), got {name!r}.")
        if not isinstance(space, dict) or not space:
            raise ConfigError("space must be a non-empty dict {key: Uniform/LogUniform/Integer/Categorical}; "
                              "a search with nothing to vary is a recipe: use `experiments`.")
        self.base = base
        self.name = name
        self.description = description
        self.table = table
        self.dimensions = [_dimension(key, as_dimension(key, values), base) for key, values in space.items()]
        self.objective = _check_objective(objective, base)
        self.direction = _direction(direction, self.objective, base)
        self.epoch_metric = _epoch_metric(self.objective, base)
        self.sampler = check_sampler(sampler)
        self.pruner = check_pruner(pruner)
        if self.pruner is not None and self.epoch_metric is None:
            raise ConfigError(
                f"pruner {pruner!r} needs the objective every epoch, but {self.objective!r} is not measured per "
                f"epoch by the last step's trainer; search a 'validation.*' or 'train.*' metric, or drop the pruner."
            )
        self.trials, self.timeout = _check_budget(trials, timeout)
        size = grid_size(self.sampler, self.dimensions)
        if size is not None:
            self.trials = size if self.trials is None else min(self.trials, size)
        for dimension in self.dimensions:
            for value in dimension.values.representatives():
                self.experiment_for({**self.representative(), dimension.key: value})

    # -- the configs of one trial ------------------------------------------
    def representative(self) -> dict:
        """One allowed value per dimension (the first of its representatives)."""
        return {d.key: d.values.representatives()[0] for d in self.dimensions}

    def experiment_for(self, values: dict) -> TransferExperiment:
        """The chain a trial trains: the base with ``values`` ({space key: config value}) put in."""
        seeds = list(self.base.seeds)
        changes = {}
        for dimension in self.dimensions:
            value = values[dimension.key]
            if dimension.kind is None:
                seeds = [value]
            else:
                changes.setdefault((dimension.step, dimension.kind), []).append((dimension, value))
        experiments = []
        for step, experiment in enumerate(self.base.experiments):
            configs = {kind: getattr(experiment, kind) for kind in CONFIG_KINDS}
            for kind in CONFIG_KINDS:
                if (step, kind) in changes:
                    configs[kind] = _changed(configs[kind], changes[(step, kind)])
            experiments.append(Experiment(configs["dataset"], configs["model"], configs["trainer"], seed=seeds,
                                          description=experiment.description))
        return TransferExperiment(experiments, update=[dict(o) for o in self.base.options],
                                  description=self.base.description)

    def distributions(self) -> dict:
        """Optuna's distributions, one per space key."""
        return {d.key: d.values.to_optuna() for d in self.dimensions}

    def values_of(self, params: dict) -> dict:
        """A trial's Optuna params as config values."""
        return {d.key: d.values.decode(params[d.key]) for d in self.dimensions}

    @property
    def fingerprint(self) -> str:
        """A hash of what the search explores; a study of this name must have been made with the same one."""
        steps = [{**{k: v for c in e.configs for k, v in c.key.items()}, **o}
                 for e, o in zip(self.base.experiments, self.base.options)]
        description = {
            "steps": steps, "seeds": list(self.base.seeds), "objective": self.objective, "direction": self.direction,
            "space": {d.key: repr(d.values) for d in self.dimensions},
        }
        return digest(canonical_json(description, "search"))

    def __repr__(self):
        return (f"Search({self.name!r}, {len(self.base)} steps, space {self.dimensions}, objective {self.objective!r} "
                f"({self.direction}), trials={self.trials}, timeout={self.timeout})")


def _dimension(key, values, base: TransferExperiment) -> Dimension:
    if not isinstance(key, str) or not key:
        raise ConfigError(f"space keys are strings such as 'trainer.lr', got {key!r}.")
    if key == "seed":
        if not isinstance(values, (Integer, Categorical)) or not all(
                type(v) is int and 0 <= v <= MAX_SEED for v in values.representatives()):
            raise ConfigError(f"space['seed'] must be an Integer or Categorical of ints in 0 .. {MAX_SEED}.")
        return Dimension(key, None, None, (), values)
    parts = key.split(".")
    step = len(base) - 1
    if parts[0].lstrip("-").isdigit():
        step = int(parts.pop(0))
        if not -len(base) <= step < len(base):
            raise ConfigError(f"space key {key!r} names step {step}, but the chain has steps 0 .. {len(base) - 1}.")
        step %= len(base)
    if len(parts) < 2 or parts[0] not in CONFIG_KINDS:
        raise ConfigError(
            f"space key {key!r} does not name a config field; write '[step.]kind.field[.option]' with kind one of "
            f"{', '.join(CONFIG_KINDS)}, e.g. 'trainer.lr' (last step) or '0.trainer.epochs', or 'seed'."
        )
    kind, path = parts[0], tuple(parts[1:])
    config = getattr(base.experiments[step], kind)
    where = f"step {step}'s {kind} config ({config.fn})"
    known = [name for name in type(config)._fields if name not in type(config).descriptive()]
    values_now = config.to_dict()
    if path[0] not in known and not type(config).extra_allowed:
        raise ConfigError(f"space key {key!r}: {where} has no field {path[0]!r}.{did_you_mean(path[0], known)} "
                          f"Known fields: {', '.join(known)}.")
    container = values_now.get(path[0])
    for depth, part in enumerate(path[1:], start=1):
        inside = ".".join(path[:depth])
        if not isinstance(container, dict):
            raise ConfigError(
                f"space key {key!r}: {where} has {inside} = {container!r}, not a dict, so it has no {part!r}; "
                f"set {inside} in the base config (e.g. {inside}={{{part!r}: ...}}) for the search to vary it."
            )
        if depth < len(path) - 1 and part not in container:
            raise ConfigError(f"space key {key!r}: {where} has no {part!r} in {inside}.{did_you_mean(part, container)} "
                              f"It holds: {', '.join(map(str, container)) or 'nothing'}.")
        container = container.get(part)
    return Dimension(key, step, kind, path, values)


def _changed(config, changes):
    values = config.to_dict(include_descriptive=True)
    for dimension, value in changes:
        target = values
        for part in dimension.path[:-1]:
            target[part] = copy.deepcopy(target[part])
            target = target[part]
        target[dimension.path[-1]] = value
    try:
        return type(config)(**values)
    except ConfigError as error:
        tried = ", ".join(f"{d.key}={v!r}" for d, v in changes)
        raise ConfigError(f"the search's {tried} makes an invalid {config.kind} config: {error}") from None


def _check_objective(objective, base: TransferExperiment) -> str:
    if not isinstance(objective, str) or not objective:
        raise ConfigError(f"objective must be 'score' or a metric name such as 'validation.accuracy', got {objective!r}.")
    if objective == "score":
        return objective
    trainer = base.experiments[-1].trainer
    if trainer.fn != STANDARD_TRAINER:
        return objective  # another trainer's metrics are known only from its output; checked on the first result
    from ..trainer.metrics import EPOCH_SPLITS, check_metric, known_metrics
    from ..trainer.modules import resolve_module

    options = trainer.to_dict()
    classes = [resolve_module(name) for name in options["modules"] or {}]
    known = list(dict.fromkeys(known_metrics(options["final_splits"], classes)
                               + known_metrics(EPOCH_SPLITS, classes, per_epoch=True)))
    check_metric("search objective", objective, known,
                 f" The last step's trainer ({trainer.fn}) records these, or use 'score'.")
    return objective


def _direction(direction, objective: str, base: TransferExperiment) -> str:
    if direction is not None:
        if direction not in DIRECTIONS:
            raise ConfigError(f"direction must be 'maximize' or 'minimize', got {direction!r}.")
        return direction
    from ..trainer.objective import MAXIMIZED, MINIMIZED

    metric = objective
    if objective == "score":
        metric = base.experiments[-1].trainer.to_dict().get("score_metric") or "score"
    name = metric.rsplit(".", 1)[-1].lower()
    if name.endswith(MINIMIZED):
        return "minimize"
    if name.endswith(MAXIMIZED):
        return "maximize"
    raise ConfigError(f"cannot tell whether {metric!r} should go up or down; pass direction='maximize' or 'minimize'.")


def _epoch_metric(objective: str, base: TransferExperiment) -> str | None:
    """The per-epoch metric that stands for the objective while training (None: not measured per epoch)."""
    trainer = base.experiments[-1].trainer
    metric = objective
    if objective == "score":
        metric = trainer.to_dict().get("score_metric")
    if not isinstance(metric, str):
        return None
    from ..trainer.metrics import EPOCH_SPLITS

    if trainer.fn == STANDARD_TRAINER and metric.partition(".")[0] not in EPOCH_SPLITS:
        return None
    return metric


def _check_budget(trials, timeout):
    if trials is not None and (type(trials) is not int or trials < 1):
        raise ConfigError(f"trials must be a whole number >= 1, got {trials!r}; a budget of 0 trials runs nothing.")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not math.isfinite(timeout) or timeout <= 0):
        raise ConfigError(f"timeout must be a number of seconds > 0, got {timeout!r}.")
    if trials is None and timeout is None:
        raise ConfigError("a search needs a budget: trials=N (trials in the study) and/or timeout=seconds.")
    return trials, (float(timeout) if timeout is not None else None)
