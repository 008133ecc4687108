"""Run recipes: modules that define experiments, trained step by step in the database.

A recipe is a Python module (a dotted name or a ``.py`` file) with an
``experiments`` attribute: a dict ``{name: Experiment or TransferExperiment}``
(or a list of them).  :func:`run` inserts every config, plans every step of
every chain (seed by seed) in ``TransferredTrainedModel`` and trains them in
order; :func:`work` is what a cluster job runs: it trains the recipe's ready
steps with reserved jobs until nothing is left, also waiting for steps that
another worker is about to make ready, and takes over jobs whose worker
stopped sending heartbeats (``orphan_timeout``).  :func:`status` counts steps
by state and :func:`retry` puts failed steps back in the queue.

Only the recipe's own steps are touched: populate is restricted to their keys
and never plans other combinations.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .configs import Experiment, TransferExperiment
from .errors import ConfigError, DatabaseUnreachable
from .reporting import StepLabels, failures_reported_here, report_done, report_failures
from .resolve import allow_packages, import_module
from .tables import queue
from .tables.membership import RECIPE_NAME_LENGTH
from .tables.reconnect import is_connection_error, wait_for_database
from .trainer import interrupt
from .tables.transfer import STEP_STATES
from .views.status import StepCounts

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 10.0
"""Seconds after which a busy worker refreshes the job queue anyway (orphaned jobs, steps made ready elsewhere)."""

DEFAULT_ORPHAN_TIMEOUT = 300.0
"""Seconds without a heartbeat after which a reserved job is given to another worker."""



@dataclass
class Recipe:
    """A loaded recipe: its name (see :func:`recipe_name`) and its chains ``{name: TransferExperiment}``."""

    name: str
    chains: dict

    def steps(self) -> list:
        """Every step key of every chain and seed, steps of one chain in order."""
        return [key for chain in self.chains.values() for key in chain.all_steps()]


def recipe_name(spec: str) -> str:
    """The name a recipe is stored under: its file's stem, or the last part of its module name.

    ``recipes/digits_kd.py`` and ``recipes.digits_kd`` are the same recipe,
    and a command that only reads the database (``status``, ``retry``) finds
    it without importing the module.
    """
    path = Path(spec)
    name = path.stem if spec.endswith(".py") else spec.rsplit(".", 1)[-1]
    if not name:
        raise ConfigError(f"{spec!r} names no recipe; give a module name or a .py file.")
    if len(name) > RECIPE_NAME_LENGTH:
        raise ConfigError(f"recipe name {name!r} has {len(name)} characters; at most {RECIPE_NAME_LENGTH} are "
                          "stored, so rename the module.")
    return name


def restriction(recipe, table=None):
    """The planned steps of ``recipe`` (a Recipe or a recipe name), as a join with its stored membership."""
    from .tables.membership import restriction as member_steps

    return member_steps(_table(table), _name(recipe))


def _name(recipe) -> str:
    return recipe.name if isinstance(recipe, Recipe) else recipe_name(recipe)


def import_recipe(spec: str):
    """Import the recipe module ``spec`` (a dotted module name or a path to a .py file, executed afresh)."""
    path = Path(spec)
    if not spec.endswith(".py"):
        return import_module(spec, "recipe module")
    if not path.is_file():
        raise ConfigError(f"recipe file {spec!r} does not exist.")
    module_name = f"nntransfer_recipe_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    return module


def load_recipe(spec: str) -> Recipe:
    """Import the recipe module ``spec`` (a dotted module name or a path to a .py file)."""
    module = import_recipe(spec)
    experiments = getattr(module, "experiments", None)
    if experiments is None:
        raise ConfigError(f"recipe {spec!r} defines no `experiments` (a dict name -> Experiment or TransferExperiment).")
    if isinstance(experiments, dict):
        items = experiments.items()
    elif isinstance(experiments, (list, tuple)):
        items = ((f"experiment {i}", e) for i, e in enumerate(experiments))
    else:
        raise ConfigError(f"recipe {spec!r}: `experiments` is a {type(experiments).__name__}; make it a dict "
                          "name -> Experiment or TransferExperiment (or a list of them).")
    chains = {}
    for name, experiment in items:
        if isinstance(experiment, Experiment):
            experiment = TransferExperiment([experiment], description=experiment.description)
        if not isinstance(experiment, TransferExperiment):
            raise ConfigError(f"recipe {spec!r}: experiments[{name!r}] is a {type(experiment).__name__}, "
                              "not an Experiment or TransferExperiment.")
        chains[str(name)] = experiment
    # the recipe is code the user runs: the packages of the functions it names are trusted (see nntransfer.resolve)
    allow_packages(*{config.fn.split(".")[0] for chain in chains.values() for experiment in chain.experiments
                     for config in experiment.configs})
    return Recipe(name=recipe_name(spec), chains=chains)


def _table(table=None):
    from . import tables

    return table if table is not None else tables.TransferredTrainedModel()


def insert(recipe: Recipe, table=None) -> int:
    """Insert every config and seed of ``recipe``, plan its steps and record them as the recipe's; return how many steps were new.

    Re-inserting an unchanged recipe is one query; a recipe whose module
    changed (a chain or seed added) gets its new steps planned.
    """
    from .tables.insertion import insert_recipe

    return insert_recipe(_table(table), recipe.name, recipe.chains)


def populate_all(table, *restrictions, max_rounds: int = 100, before_round=None, **kwargs) -> dict:
    """Populate ``table`` until a round finds nothing to do: every step in order, as the seed's notebook does.

    Each ``populate`` call trains what is ready; a step becomes ready when
    its previous step is done, so a chain of k steps needs k rounds.
    ``before_round``: called before each round (:func:`run` queues the
    steps that became ready).
    """
    if isinstance(table, type):
        table = table()
    total = {"success_count": 0, "error_list": []}
    for _ in range(max_rounds):
        if before_round is not None:
            before_round()
        result = table.populate(*restrictions, **kwargs)
        total["success_count"] += result["success_count"]
        total["error_list"].extend(result["error_list"])
        if not result["success_count"]:
            break
    return total


def run(recipe: Recipe, table=None, max_rounds: int = 1000) -> dict:
    """Insert the recipe and train all its steps in this process, step after step.

    Every step is a reserved job, as under :func:`work`: a failed step is
    recorded in the job table, logged once (one line with its chain, step,
    seed and first line of the error), skipped by later runs and queued
    again by :func:`retry`; Ctrl-C or SIGTERM gives the step in progress back
    and raises :class:`~nntransfer.trainer.interrupt.Interrupted`.
    """
    table = _table(table)
    insert(recipe, table)
    labels = StepLabels(recipe)
    with interrupt.handling_signals(), _labelled(table, labels), failures_reported_here():
        # the recipe's queue, not DataJoint's refresh (see tables.queue)
        result = populate_all(table, restriction(recipe, table), max_rounds=max_rounds,
                              before_round=lambda: queue.refresh(table, recipe.name),
                              plan=False, reserve_jobs=True, refresh=False, suppress_errors=True)
    report_failures(result["error_list"], labels)
    return result


@contextlib.contextmanager
def _labelled(table, labels):
    """Within the block, the table's trainings are named by ``labels`` in progress lines (see :mod:`.reporting`)."""
    before = table.__dict__.get("step_label")
    table.step_label = labels
    try:
        yield
    finally:
        if before is None:
            table.__dict__.pop("step_label", None)
        else:
            table.step_label = before


def work(recipe: Recipe, table=None, orphan_timeout: float = DEFAULT_ORPHAN_TIMEOUT, poll: float = 1.0,
         max_idle: float | None = None, devices: str | None = None) -> dict:
    """Train the recipe's ready steps with reserved jobs until nothing is left to do or wait for.

    Returns ``{"trained": n, "errors": n}`` of this worker.  ``max_idle``
    (seconds) bounds the waiting for other workers; None waits as long as
    some step is running or could become ready.  While it trains, the
    worker renews its job every quarter of ``orphan_timeout`` (at most every
    30 s) from a background thread; a job that another worker took over
    meanwhile is given up without counting as an error.  ``devices``: the
    GPUs this process sees (``--devices``, see :mod:`nntransfer.device_groups`),
    recorded while it works so that :func:`running` can show them.

    Ctrl-C or SIGTERM stops the training in progress at its next batch
    boundary after a checkpoint, gives its job back and raises
    :class:`~nntransfer.trainer.interrupt.Interrupted` (with this worker's
    ``counts``).  A lost database connection is waited for (see
    :mod:`nntransfer.tables.reconnect`) and the worker goes on; past the
    reconnect bound :class:`~nntransfer.errors.DatabaseUnreachable` ends it.
    Each failed step is logged once, and each stored one with the recipe's
    overall ``k of n steps done``.
    """
    if devices is not None:
        from .tables.worker_devices import forget_devices, record_devices

        record_devices(devices)
        try:
            return work(recipe, table, orphan_timeout, poll, max_idle)
        finally:
            forget_devices()
    table = _table(table)
    table.heartbeat_interval = min(30.0, orphan_timeout / 4) if orphan_timeout > 0 else 30.0
    labels = StepLabels(recipe)
    counts = {"trained": 0, "errors": 0}
    with interrupt.handling_signals(), _labelled(table, labels), failures_reported_here():
        while True:
            try:
                return _work(recipe, table, counts, labels, orphan_timeout, poll, max_idle)
            except interrupt.Interrupted as stop:
                stop.counts = dict(counts)
                raise
            except Exception as error:
                if isinstance(error, DatabaseUnreachable) or not is_connection_error(error):
                    raise
                wait_for_database(table.connection, what="the worker's next job")
                table.jobs.give_back(platform.node(), os.getpid())  # a job reserved when the connection went


def _work(recipe: Recipe, table, counts: dict, labels, orphan_timeout: float, poll: float,
          max_idle: float | None) -> dict:
    """The loop of :func:`work` (started again after a database outage); ``counts`` are kept across restarts."""
    steps = restriction(recipe, table)
    idle_since = time.monotonic()
    table.mark_ready()  # once: steps stored meanwhile flag their successors themselves
    refreshed_at = -float("inf")
    while True:
        interrupt.raise_if_requested("no job was held")
        # The job queue is refreshed (new ready steps queued, orphans taken over) and the
        # recipe's steps counted when the last look found nothing, and at least every
        # REFRESH_INTERVAL seconds; not per job, because both read every step of the recipe.
        refreshing = time.monotonic() - refreshed_at > REFRESH_INTERVAL
        if refreshing:
            queue.refresh(table, recipe.name, orphan_timeout)
            refreshed_at = time.monotonic()
            states = dict(status(recipe, table)["total"])
        result = table.populate(steps, plan=False, mark_ready=False, reserve_jobs=True, refresh=False,
                                suppress_errors=True, return_exception_objects=True, max_calls=1)
        counts["trained"] += result["success_count"]
        counts["errors"] += report_failures(result["error_list"], labels)
        if result["success_count"]:
            # the count of the last refresh plus this worker's steps since: other workers'
            # steps show at the next refresh (at most REFRESH_INTERVAL seconds later)
            states["done"] += result["success_count"]
            states["pending"] = max(0, states["pending"] - result["success_count"])
            report_done(recipe.name, {"total": states})
        if result["success_count"] or result["error_list"]:
            idle_since = time.monotonic()
            continue
        if not refreshing:
            refreshed_at = -float("inf")
            continue
        # nothing found right after a refresh: the count of that refresh says whether to wait
        if not states["running"] and not states["pending"]:
            return dict(counts)
        if max_idle is not None and time.monotonic() - idle_since > max_idle:
            log.warning("worker idle for %.0f s with %s; stopping", max_idle, states)
            return dict(counts)
        time.sleep(poll)


def status(recipe, table=None) -> StepCounts:
    """Count the steps of ``recipe`` (a Recipe or a name) per transfer step and state, in one grouped query.

    See ``TransferredTrainedModelBase.step_states``.  The dict prints as
    ``nntransfer status`` does and shows as a table in a notebook.
    """
    steps = _table(table).step_states(_name(recipe))
    total = dict.fromkeys(STEP_STATES, 0)
    for per_step in steps.values():
        for state, count in per_step.items():
            total[state] += count
    return StepCounts(steps=steps, total=total)


def running(recipe, table=None) -> str:
    """One line per step of ``recipe`` that a worker holds now: host, process and the GPUs it sees."""
    from .tables.worker_devices import format_running, running_steps

    return format_running(running_steps(_table(table), _name(recipe)))


def retry(recipe, table=None) -> int:
    """Put the failed steps of ``recipe`` (a Recipe or a name) back in the queue; return how many."""
    return _table(table).retry(restriction(recipe, table))


def format_status(counts: dict) -> str:
    """The table ``nntransfer status`` prints."""
    return StepCounts(counts).text()
