"""The one way configs, experiments and chains get into the database.

``ConfigTable.add_entry`` (nnfabrik's keywords) and :func:`insert` (config
objects, :class:`~nntransfer.configs.Experiment`,
:class:`~nntransfer.configs.TransferExperiment`) both end in
:func:`prepare_config_row`, so a config is checked the same way whichever door
it comes through: the function is imported, the config is completed with the
function's defaults and checked against its signature and against the
function's own ``check_config`` (names of modules, optimizers, metrics, ...).
Everything an insert writes is checked first and then written in one
transaction, so a failing check leaves the database as it was.
"""

from __future__ import annotations

import logging

from ..configs import Config, Experiment, TransferExperiment
from ..configs.functions import config_class_for
from ..errors import ConfigError, DuplicateEntryError
from ..hashing import config_hash, to_jsonable
from .fabrik import COMMENT_LENGTH, FN_LENGTH, Fabrikant, Seed, table_for_kind
from .transfer import TransferredTrainedModel

log = logging.getLogger(__name__)

def prepare_config_row(table, fn, config, comment=""):
    """Check one config for ``table``; return ``(key, row)``, ``row`` None when the entry exists.

    The stored config is the config completed with the function's defaults,
    so ``{}`` and the defaults written out are one entry.  The same config
    under an existing key is a no-op; a different one is a DuplicateEntryError.
    """
    kind = table.kind
    name = type(table).__name__
    for column, value, limit in ((f"{kind}_fn", fn, FN_LENGTH), (f"{kind}_comment", comment or "", COMMENT_LENGTH)):
        if isinstance(value, str) and len(value) > limit:
            raise ConfigError(f"{name}: {column} has {len(value)} characters, but its column holds {limit}; shorten it.")
    if config is not None and not isinstance(config, dict):
        raise ConfigError(f"{name}: {kind}_config must be a dict of keyword arguments, got {type(config).__name__}.")
    completed = config_class_for(fn, kind)(**(config or {})).to_dict()
    stored = to_jsonable(completed, path=f"{kind}_config")
    key = {f"{kind}_fn": fn, f"{kind}_hash": config_hash(completed)}
    existing = (table & key).to_dicts()
    if existing:
        if existing[0][f"{kind}_config"] != stored:
            raise DuplicateEntryError(
                f"{name} already holds a different configuration under {key}; "
                "a hash collision or an edited row. Inspect the row and delete it if it is wrong."
            )
        log.info("%s entry %s exists already; nothing inserted", name, key)
        return key, None
    return key, {**key, f"{kind}_config": stored, f"{kind}_comment": comment or ""}


def write_rows(connection, rows, fabrikant=None) -> None:
    """Insert ``(table, row)`` pairs, in order, in one transaction.

    Config rows get their fabrikant here: ``fabrikant`` checked once (None is
    the current database user, added to ``Fabrikant`` on first use).
    """
    if not rows:
        return
    name = Fabrikant.resolve(fabrikant)
    with connection.transaction:
        for table, row in rows:
            kind = getattr(table, "kind", None)
            if kind:
                row = {**row, f"{kind}_fabrikant": name}
            table.insert(row if isinstance(row, list) else [row], skip_duplicates=True)


def insert(what, fabrikant=None, table=None, planned_by: str = ""):
    """Insert a config, an Experiment or a TransferExperiment; return its key(s).

    - a :class:`~nntransfer.configs.Config`: its row; returns ``config.key``;
    - an :class:`~nntransfer.configs.Experiment`: its three configs and its
      seeds; returns one ``TrainedModel`` key per seed;
    - a :class:`~nntransfer.configs.TransferExperiment`: every step's configs
      and seeds, and the chain planned in ``table`` (default
      ``TransferredTrainedModel``) for every seed; returns every step key
      (:meth:`~nntransfer.configs.TransferExperiment.all_steps`).

    Inserting the same thing again is a no-op.  Every config is checked before
    anything is written, and everything is written in one transaction.
    """
    if isinstance(what, Config):
        configs, seeds = [what], []
    elif isinstance(what, Experiment):
        configs, seeds = list(what.configs), list(what.seeds)
    elif isinstance(what, TransferExperiment):
        configs = [config for experiment in what.experiments for config in experiment.configs]
        seeds = list(what.seeds)
    else:
        raise ConfigError(
            f"insert takes a Config, an Experiment or a TransferExperiment, got {type(what).__name__}."
        )
    rows, seen = [], set()
    for config in configs:
        config.check_matches_function()
        config_table = table_for_kind(config.kind)()
        key, row = prepare_config_row(config_table, config.fn, config.to_dict(), config.comment)
        identity = (config.kind, key[f"{config.kind}_hash"], key[f"{config.kind}_fn"])
        if row is not None and identity not in seen:
            seen.add(identity)
            rows.append((config_table, row))
    seed_table = Seed()
    rows.extend((seed_table, {"seed": seed}) for seed in seeds)
    if isinstance(what, TransferExperiment):
        transfer_table = table if table is not None else TransferredTrainedModel()
        plan = transfer_table.plan_table()
        rows.extend((plan, transfer_table.plan_rows(what.steps(seed), planned_by)) for seed in seeds)
    write_rows(seed_table.connection, rows, fabrikant)
    if isinstance(what, TransferExperiment):
        return what.all_steps()
    if isinstance(what, Experiment):
        return what.keys()
    return what.key
