"""Live metrics of trainings in progress: one small row per job, written while it trains.

A step's history reaches its table only when the step is stored, so without
this nothing of a long training could be watched.  The training callback
(:class:`~nntransfer.tables.trained.TrainingCallback`) writes, after an
epoch and at most every :data:`WRITE_INTERVAL_S` seconds (always after the
first epoch), one row of :class:`LiveProgress` for its key: the host and
process, the epoch and how many the trainer config asks for, the latest
epoch's metrics and every epoch's so far.  A write that fails because the
database is away is skipped (the next one tries again); the row is removed
when the result is stored.

Readers: :func:`latest_progress` (one dict per running job, with the age
of its heartbeat and of its latest write; ``nntransfer status`` prints
them and the dashboard reads them) and :func:`progress_history` (a notebook
reading the history of a training while it runs).
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time

from ..db import import_datajoint
from ..hashing import config_hash
from .fabrik import schema
from .reconnect import is_connection_error
from .restrictions import SafeRestriction

dj = import_datajoint()
log = logging.getLogger(__name__)

WRITE_INTERVAL_S = 5.0
"""Least seconds between two writes of one training's row (the first epoch is always written)."""


@schema
class LiveProgress(SafeRestriction, dj.Manual):
    definition = """
    # the latest epoch of each training in progress (see nntransfer.tables.live)
    target: varchar(255)           # full name of the trained-model table
    key_hash: char(32)             # hash of the primary key of the trained model
    ---
    trained_key: json              # primary key of the trained model
    host: varchar(255)             # where it trains
    pid: int32                     # the training process
    epoch: int32                   # epochs done
    epochs = null: int32           # epochs the trainer config asks for (null when it does not say)
    metrics: json                  # the latest epoch's metrics
    history: json                  # every epoch's metrics so far: {name: [value per epoch]}
    live_ts = CURRENT_TIMESTAMP: datetime   # when this row was written
    """


def _identity(table, key: dict) -> dict:
    primary = {name: key[name] for name in table.primary_key}
    return {"target": table.full_table_name, "key_hash": config_hash(primary)}


def _finite(value):
    """JSON-able metric values: numbers as floats, non-finite ones as strings (JSON has no NaN)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else str(number)


class LiveWriter:
    """Writes the row of one training (used by the training callback, see the module doc)."""

    def __init__(self, table, key: dict, epochs: int | None = None, interval: float = WRITE_INTERVAL_S):
        self.table = table
        self.identity = _identity(table, key)
        self.key = {name: key[name] for name in table.primary_key}
        self.epochs = epochs
        self.interval = interval
        self.history = None
        self._written_at = None

    def epoch_done(self, epoch, metrics: dict | None) -> None:
        if not isinstance(epoch, int):
            return
        metrics = {name: _finite(value) for name, value in (metrics or {}).items()}
        if self.history is None:
            self.history = self._earlier_history(epoch)
        names = set(self.history) | set(metrics) | {"epoch"}
        done = len(self.history.get("epoch", []))
        for name in names:
            values = self.history.setdefault(name, [None] * done)
            values.append(epoch if name == "epoch" else metrics.get(name))
        now = time.monotonic()
        if self._written_at is not None and now - self._written_at < self.interval and epoch != self.epochs:
            return
        self._written_at = now
        self._write(epoch, metrics)

    def _earlier_history(self, epoch: int) -> dict:
        """The epochs before ``epoch`` that an earlier attempt of this key wrote (a resumed training goes on from them)."""
        try:
            rows = (LiveProgress & self.identity).to_dicts()
        except Exception as error:
            if not is_connection_error(error):
                raise
            return {}
        if not rows:
            return {}
        history = _decoded(rows[0]["history"])
        keep = [index for index, done in enumerate(history.get("epoch", [])) if isinstance(done, int) and done < epoch]
        return {name: [values[index] for index in keep if index < len(values)] for name, values in history.items()}

    def _write(self, epoch: int, metrics: dict) -> None:
        row = {
            **self.identity, "trained_key": self.key, "host": platform.node()[:255], "pid": os.getpid(),
            "epoch": epoch, "epochs": self.epochs, "metrics": metrics, "history": self.history,
        }
        connection = LiveProgress.connection
        try:
            if connection.in_transaction:
                return
            with connection.transaction:
                (LiveProgress & self.identity).delete_quick()
                LiveProgress.insert1(row)
        except Exception as error:
            if not is_connection_error(error):
                raise
            log.debug("live progress of %s not written: %s", self.key, error)


def remove(table, key: dict) -> None:
    """Remove the row of ``key`` (its result is stored)."""
    (LiveProgress & _identity(table, key)).delete_quick()


def _decoded(value):
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _age_sql(connection, column: str) -> str:
    if connection.adapter.backend == "postgresql":
        return f"EXTRACT(EPOCH FROM (CURRENT_TIMESTAMP(3) - {column}))"
    return f"TIMESTAMPDIFF(MICROSECOND, {column}, CURRENT_TIMESTAMP(3)) / 1000000"


def latest_progress(table, restriction=None) -> list[dict]:
    """One dict per job of ``table`` that a worker holds now (within ``restriction``), oldest reservation first.

    Keys: the trained model's primary key fields, ``host``, ``pid``,
    ``heartbeat_age`` (seconds since the worker last renewed its
    reservation), and from the training's latest write, when it wrote one:
    ``epoch``, ``epochs``, ``metrics`` (the latest epoch's) and
    ``updated_age`` (seconds since that write); None where it has not
    written yet.  ``restriction`` restricts the job table (e.g. a recipe's
    steps, as :func:`nntransfer.runner.restriction` gives them).
    """
    jobs = table.jobs & "status = 'reserved'"
    if restriction is not None:
        jobs = jobs.restrict(restriction, semantic_check=False)
    primary = list(table.primary_key)
    keys = [{name: row[name] for name in primary} for row in jobs.to_dicts()]
    if not keys:
        return []
    connection = table.connection
    quote = connection.adapter.quote_identifier
    one_key = " AND ".join(f"{quote(name)} = %s" for name in primary)
    reserved = connection.query(
        f"SELECT {', '.join(quote(name) for name in primary)}, {quote('host')}, {quote('pid')}, "
        f"{_age_sql(connection, quote('reserved_time'))} AS heartbeat_age FROM {table.jobs.full_table_name} "
        f"WHERE {quote('status')} = 'reserved' AND (" + " OR ".join(f"({one_key})" for _ in keys) + ") "
        f"ORDER BY {quote('reserved_time')}",
        args=tuple(key[name] for key in keys for name in primary), as_dict=True,
    ).fetchall()
    hashes = {config_hash({name: row[name] for name in primary}): row for row in reserved}
    written = {}
    if hashes:
        marks = ", ".join(["%s"] * len(hashes))
        for entry in connection.query(
            f"SELECT {quote('key_hash')}, {quote('epoch')}, {quote('epochs')}, {quote('metrics')}, "
            f"{_age_sql(connection, quote('live_ts'))} AS updated_age FROM {LiveProgress.full_table_name} "
            f"WHERE {quote('target')} = %s AND {quote('key_hash')} IN ({marks})",
            args=(table.full_table_name, *hashes), as_dict=True,
        ).fetchall():
            written[entry["key_hash"]] = entry
    progress = []
    for key_hash, row in hashes.items():
        entry = written.get(key_hash)
        progress.append({
            **{name: row[name] for name in primary},
            "host": row["host"], "pid": int(row["pid"]) if row["pid"] is not None else None,
            "heartbeat_age": _seconds(row["heartbeat_age"]),
            "epoch": entry["epoch"] if entry else None, "epochs": entry["epochs"] if entry else None,
            "metrics": _decoded(entry["metrics"]) if entry else None,
            "updated_age": _seconds(entry["updated_age"]) if entry else None,
        })
    return progress


def _seconds(value):
    return None if value is None else max(0.0, float(value))


def progress_history(table, key: dict) -> dict | None:
    """Every epoch's metrics so far of the training of ``key`` (``{name: [value per epoch]}``), or None.

    Read it from a notebook while a worker trains the key; once the result
    is stored, the history is in the row's ``output`` instead.
    """
    rows = (LiveProgress & _identity(table, key)).to_dicts()
    return _decoded(rows[0]["history"]) if rows else None
