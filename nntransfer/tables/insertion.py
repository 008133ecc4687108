"""The one way configs, experiments and chains get into the database.

``ConfigTable.add_entry`` (nnfabrik's keywords) and :func:`insert` (config
objects, :class:`~nntransfer.configs.Experiment`,
:class:`~nntransfer.configs.TransferExperiment`) both end in
:func:`complete_config` and :func:`new_config_rows`, so a config is checked
the same way whichever door it comes through: the function is imported, the config is completed with the
function's defaults and checked against its signature and against the
function's own ``check_config`` (names of modules, optimizers, metrics, ...).
Everything an insert writes is checked first and then written in one
transaction, so a failing check leaves the database as it was.
"""

from __future__ import annotations

import contextlib
import logging

from ..configs import Config, Experiment, TransferExperiment
from ..configs.functions import config_class_for
from ..errors import ConfigError, DuplicateEntryError
from ..hashing import canonical_json, config_hash, from_jsonable, make_hash, nnfabrik_config, to_stored
from ..resolve import check_allowed, stored_names
from .fabrik import COMMENT_LENGTH, FN_LENGTH, Fabrikant, Seed, table_for_kind
from . import membership
from .conflicts import retried_on_conflict
from ..steps import STEP_KEY_FIELDS
from .transfer import TransferredTrainedModel

log = logging.getLogger(__name__)

STATISTICS_AFTER = 1000
"""New steps after which an insert asks the server to re-estimate table sizes (see membership.refresh_statistics)."""

def complete_config(table, fn, config, comment=""):
    """Check one config for ``table`` without touching the database; return ``(key, row)``.

    The stored config is the config completed with the function's defaults
    (and checked by the function's ``check_config``), so ``{}`` and the
    defaults written out are one entry.
    """
    kind = table.kind
    name = type(table).__name__
    for column, value, limit in ((f"{kind}_fn", fn, FN_LENGTH), (f"{kind}_comment", comment or "", COMMENT_LENGTH)):
        if isinstance(value, str) and len(value) > limit:
            raise ConfigError(f"{name}: {column} has {len(value)} characters, but its column holds {limit}; shorten it.")
    if config is not None and not isinstance(config, dict):
        raise ConfigError(f"{name}: {kind}_config must be a dict of keyword arguments, got {type(config).__name__}.")
    with stored_names():  # the function and every name in its config must lie in an allowed package
        check_allowed(fn, f"{kind}_fn")
        completed = config_class_for(fn, kind)(**(config or {})).to_dict()
    if getattr(table, "hashing", "canonical") == "nnfabrik":
        # checked as above, but stored and keyed as given, as nnfabrik did (see nntransfer.hashing)
        completed = nnfabrik_config(config or {})
        key = {f"{kind}_fn": fn, f"{kind}_hash": make_hash(completed)}
        return key, {**key, f"{kind}_config": to_stored(completed, path=f"{kind}_config"), f"{kind}_comment": comment or ""}
    key = {f"{kind}_fn": fn, f"{kind}_hash": config_hash(completed)}
    return key, {**key, f"{kind}_config": to_stored(completed, path=f"{kind}_config"), f"{kind}_comment": comment or ""}


def new_config_rows(table, rows: list) -> list:
    """The rows (from :func:`complete_config`) whose key ``table`` does not hold yet, each once.

    Existing keys are looked up in one query per thousand hashes.  The same
    config under an existing key is a no-op; a different one is a
    DuplicateEntryError (a hash collision or an edited row).
    """
    kind = table.kind
    table.check_hashing()
    fn_column, hash_column, config_column = f"{kind}_fn", f"{kind}_hash", f"{kind}_config"
    unique = {}
    for row in rows:
        unique.setdefault((row[fn_column], row[hash_column]), row)
    hashes = sorted({hash_ for _, hash_ in unique})
    existing = {}
    for start in range(0, len(hashes), 1000):
        # the hashes are ours (32 hex characters), so they can be written into the condition as they are
        listed = ", ".join(f"'{hash_}'" for hash_ in hashes[start:start + 1000] if _is_hex(hash_))
        for stored in (table & f"{hash_column} IN ({listed})").to_dicts():
            existing[(stored[fn_column], stored[hash_column])] = stored[config_column]
    new = []
    for identity, row in unique.items():
        if identity not in existing:
            new.append(row)
        elif not _same_config(existing[identity], row[config_column]):
            key = dict(zip((fn_column, hash_column), identity))
            raise DuplicateEntryError(
                f"{type(table).__name__} already holds a different configuration under {key}; "
                "a hash collision or an edited row. Inspect the row and delete it if it is wrong."
            )
    if len(new) < len(unique):
        log.info("%s: %d of %d entries exist already", type(table).__name__, len(unique) - len(new), len(unique))
    return new


def _same_config(stored, new) -> bool:
    """Whether a stored config and a new one mean the same values (old rows may lack the tags of to_stored)."""
    try:
        return canonical_json(from_jsonable(stored)) == canonical_json(from_jsonable(new))
    except ConfigError:
        return False


def _is_hex(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


def write_rows(connection, rows, fabrikant=None) -> None:
    """Insert ``(table, row)`` pairs, in order, in one transaction.

    Config rows get their fabrikant here: ``fabrikant`` checked once (None is
    the current database user, added to ``Fabrikant`` on first use).
    """
    if not rows:
        return
    name = Fabrikant.resolve(fabrikant)
    with _transaction(connection):
        for table, row in rows:
            kind = getattr(table, "kind", None)
            if kind:
                row = {**row, f"{kind}_fabrikant": name}
            table.insert(row if isinstance(row, list) else [row], skip_duplicates=True)


def checked_config_rows(configs) -> list:
    """``(table, row)`` for every config not stored yet, after checking all of them (one query per table)."""
    per_table = {}
    checked = set()
    for config in configs:
        identity = (config.kind, config.fn, config.hash)
        if identity in checked:
            continue
        checked.add(identity)
        config.check_matches_function()
        config_table = table_for_kind(config.kind)()
        per_table.setdefault(config.kind, (config_table, []))[1].append(
            complete_config(config_table, config.fn, config.to_dict(), config.comment)[1]
        )
    return [(config_table, row) for config_table, rows in per_table.values()
            for row in new_config_rows(config_table, rows)]


@contextlib.contextmanager
def _transaction(connection):
    """A transaction, or the one already open (DataJoint does not nest them)."""
    if connection.in_transaction:
        yield
    else:
        with connection.transaction:
            yield


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
    rows = checked_config_rows(configs)
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


def insert_recipe(table, name: str, chains: dict, fabrikant=None) -> int:
    """Insert a recipe's chains ``{chain name: TransferExperiment}`` and record its steps; return how many steps were new.

    Set-based: an unchanged recipe is recognised by one query and nothing is
    written; otherwise every config is checked first, then the new configs,
    seeds, plan rows and the recipe's membership and chains (:mod:`.membership`)
    are written in bulk in one transaction.
    """
    keys = [key for chain in chains.values() for key in chain.all_steps()]
    layout = membership.chain_rows(name, chains)
    if membership.is_unchanged(table, name, keys, layout):
        return 0
    configs = [config for chain in chains.values() for experiment in chain.experiments for config in experiment.configs]
    rows = checked_config_rows(configs)
    seeds = sorted({seed for chain in chains.values() for seed in chain.seeds})
    seed_table = Seed()
    rows.append((seed_table, [{"seed": seed} for seed in seeds]))
    plans, seen = [], set()
    for chain_name, chain in chains.items():
        planned_by = f"{name}: {chain_name}"[:255]
        for seed in chain.seeds:
            for row in table.plan_rows(chain.steps(seed), planned_by):
                identity = tuple(row[field] for field in STEP_KEY_FIELDS)
                if identity not in seen:
                    seen.add(identity)
                    plans.append(row)
    plan = table.plan_table()
    before = len(plan)
    rows.append((plan, plans))
    def write():
        with _transaction(table.connection):
            write_rows(table.connection, rows, fabrikant)
            membership.replace_membership(table, name, keys, layout)
            table.mark_ready()  # steps planned after their previous step was trained can start at once

    retried_on_conflict(table.connection, write)  # workers storing results meanwhile may meet it in a deadlock
    new = len(plan) - before
    if new >= STATISTICS_AFTER and not table.connection.in_transaction:
        membership.refresh_statistics(table)
    return new
