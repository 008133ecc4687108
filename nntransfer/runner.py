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

import importlib
import importlib.util
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .configs import Experiment, TransferExperiment
from .errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_ORPHAN_TIMEOUT = 300.0
"""Seconds without a heartbeat after which a reserved job is given to another worker."""

STATES = ("done", "running", "pending", "blocked", "error")


@dataclass
class Recipe:
    """A loaded recipe: its name and its chains ``{name: TransferExperiment}``."""

    name: str
    chains: dict

    def steps(self) -> list:
        """Every step key of every chain and seed, steps of one chain in order."""
        return [key for chain in self.chains.values() for key in chain.all_steps()]


def load_recipe(spec: str) -> Recipe:
    """Import the recipe module ``spec`` (a dotted module name or a path to a .py file)."""
    path = Path(spec)
    if spec.endswith(".py"):
        if not path.is_file():
            raise ConfigError(f"recipe file {spec!r} does not exist.")
        module_name = f"nntransfer_recipe_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(spec)
        except ImportError as error:
            raise ConfigError(f"recipe module {spec!r} cannot be imported ({error}); give a module name or a .py file.") from None
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
    return Recipe(name=spec, chains=chains)


def _table(table=None):
    from . import tables

    return table if table is not None else tables.TransferredTrainedModel()


def insert(recipe: Recipe, table=None) -> int:
    """Insert every config and seed of ``recipe`` and plan its steps; return how many steps were new."""
    table = _table(table)
    planned = 0
    for name, chain in recipe.chains.items():
        chain.insert()
        for seed in chain.seeds:
            planned += table.plan_chain(chain.steps(seed), planned_by=f"{recipe.name}: {name}"[:255])
    return planned


def run(recipe: Recipe, table=None, max_rounds: int = 1000) -> dict:
    """Insert the recipe and train all its steps in this process, step after step."""
    from .tables import populate_all

    table = _table(table)
    insert(recipe, table)
    return populate_all(table, recipe.steps(), plan=False, suppress_errors=True, max_rounds=max_rounds)


def work(recipe: Recipe, table=None, orphan_timeout: float = DEFAULT_ORPHAN_TIMEOUT, poll: float = 1.0,
         max_idle: float | None = None) -> dict:
    """Train the recipe's ready steps with reserved jobs until nothing is left to do or wait for.

    Returns ``{"trained": n, "errors": n}`` of this worker.  ``max_idle``
    (seconds) bounds the waiting for other workers; None waits as long as
    some step is running or could become ready.
    """
    table = _table(table)
    restriction = recipe.steps()
    trained = errors = 0
    idle_since = time.monotonic()
    while True:
        table.jobs.refresh(orphan_timeout=orphan_timeout)
        result = table.populate(restriction, plan=False, reserve_jobs=True, suppress_errors=True, max_calls=1)
        trained += result["success_count"]
        errors += len(result["error_list"])
        if result["success_count"] or result["error_list"]:
            idle_since = time.monotonic()
            continue
        counts = status(recipe, table)["total"]
        if not counts["running"] and not counts["pending"]:
            return {"trained": trained, "errors": errors}
        if max_idle is not None and time.monotonic() - idle_since > max_idle:
            log.warning("worker idle for %.0f s with %s; stopping", max_idle, counts)
            return {"trained": trained, "errors": errors}
        time.sleep(poll)


def status(recipe: Recipe, table=None) -> dict:
    """Count the recipe's steps per transfer step and state (see :data:`STATES`).

    done: trained; running: reserved by a worker; error: failed (see
    ``retry``); pending: ready to train; blocked: waiting for its previous
    step.  A step waiting for a failed step stays blocked until that one is
    retried.
    """
    table = _table(table)
    restriction = recipe.steps()
    plan = table.plan_table()
    primary = plan.primary_key
    done = {_tuple(k, primary) for k in (table & restriction).keys()}
    jobs = {_tuple(row, primary): row["status"] for row in (table.jobs & restriction).to_dicts()}
    counts = {}
    for row in (plan & restriction).to_dicts():
        key = _tuple(row, primary)
        if key in done:
            state = "done"
        elif jobs.get(key) == "reserved":
            state = "running"
        elif jobs.get(key) == "error":
            state = "error"
        elif row["ready"]:
            state = "pending"
        else:
            state = "blocked"
        per_step = counts.setdefault(int(row["transfer_step"]), dict.fromkeys(STATES, 0))
        per_step[state] += 1
    total = dict.fromkeys(STATES, 0)
    for per_step in counts.values():
        for state, count in per_step.items():
            total[state] += count
    return {"steps": dict(sorted(counts.items())), "total": total}


def _tuple(row: dict, primary) -> tuple:
    return tuple(int(row[name]) if name in ("seed", "transfer_step", "data_transfer") else row[name] for name in primary)


def retry(recipe: Recipe, table=None) -> int:
    """Clear the error records of the recipe's failed steps so workers train them again; return the count."""
    table = _table(table)
    failed = table.jobs.errors & recipe.steps()
    count = len(failed)
    failed.delete_quick()
    return count


def format_status(counts: dict) -> str:
    """The table ``nntransfer status`` prints."""
    lines = ["step " + "".join(f"{state:>9}" for state in STATES)]
    for step, per_step in counts["steps"].items():
        lines.append(f"{step:>4} " + "".join(f"{per_step[state]:>9}" for state in STATES))
    lines.append("all  " + "".join(f"{counts['total'][state]:>9}" for state in STATES))
    return "\n".join(lines)
