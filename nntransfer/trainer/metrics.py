"""The names of the metrics a run measures, for checking a metric named in a config.

Metrics are named ``"<split>.<name>"``: what the loop measures on every
split it evaluates (:data:`LOOP_METRICS`) and what the configured main-loop
modules declare they add (``MainLoopModule.added_metrics``).  A config names
metrics in ``score_metric`` and in module options such as early stopping's
``objective``; checked against these names, a typo fails when the config is
made instead of after training.
"""

import fnmatch

from nntransfer.errors import ConfigError
from nntransfer.resolve import did_you_mean

LOOP_METRICS = ("loss", "accuracy", "*.loss", "*.accuracy")
"""What the loop measures on every split it evaluates, named without the split;
``*`` is a data key (a split with one loader per task is also measured per task)."""

EPOCH_SPLITS = ("train", "validation")
"""The splits measured in every epoch; other splits only in the final evaluation."""

EPOCH_ONLY_METRICS = ("lr", "lr.*")
"""Per-epoch metrics of no split: the run's learning rate and, with several
param groups, each group's (``lr.<group>``)."""


def known_metrics(splits, module_classes, per_epoch=False):
    """The metric names (``*`` patterns included) measured on ``splits`` by a run with these module classes.

    ``per_epoch``: the metrics of an epoch, as early stopping sees them,
    which also hold :data:`EPOCH_ONLY_METRICS`.
    """
    names = dict.fromkeys(LOOP_METRICS + tuple(name for cls in module_classes for name in cls.added_metrics))
    known = [f"{split}.{name}" for split in splits for name in names]
    return known + list(EPOCH_ONLY_METRICS) if per_epoch else known


def check_metric(what, metric, known, hint=""):
    """Refuse a ``metric`` (named by ``what``) that matches none of ``known`` (names and ``*`` patterns)."""
    if isinstance(metric, str) and any(fnmatch.fnmatchcase(metric, pattern) for pattern in known):
        return
    exact = [name for name in known if "*" not in name]
    raise ConfigError(
        f"{what} {metric!r} is not a metric this run measures.{did_you_mean(metric, exact)}{hint} "
        f"Known: {', '.join(known)} (* stands for a data key, or for what a module's options decide). "
        "A main-loop module adds the metrics its class lists in added_metrics."
    )
