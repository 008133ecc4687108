"""Reserved jobs that a worker holds: who holds one, a heartbeat, and changes to one's own jobs only.

DataJoint's job table hands a reserved job to another worker when its
reservation is older than ``orphan_timeout`` (``jobs.refresh``).  A worker
that is alive but silent for that long (a long first epoch under load, a
trainer that never calls ``cb``, a process stopped for a while) then trains
alongside the worker that took its job over.  DataJoint's own job methods
do not notice: ``complete`` deletes and ``error`` overwrites whatever row the
key has, including the new holder's reservation.  So the trained-model
tables use :class:`WorkerJobs`, which

* remembers which jobs this process reserved and under which holder
  (host, process id and database connection id, as DataJoint writes them);
* changes a job row only while this process still holds it: completing,
  failing and renewing a job that was taken over changes nothing and is
  logged instead;
* lets the insert phase lock the job row (:meth:`WorkerJobs.lock_held`) so
  that the check "do I still hold this job" and the commit of the result
  are one transaction.

A :class:`Heartbeat` renews a held reservation from a background thread with
its own database connection, every ``interval`` seconds, so a long epoch or
a trainer without ``cb`` calls is never taken for dead.  When a renewal finds
the job no longer held, the heartbeat records it and the training callback
stops the training with :class:`~nntransfer.errors.JobTakenOver`.
"""

from __future__ import annotations

import logging
import os
import platform
import threading

from datajoint.jobs import Job

from ..db import import_datajoint
from ..errors import JobTakenOver
from .locks import schema_lock
from .reconnect import try_reconnect
from .restrictions import SafeRestriction

dj = import_datajoint()
log = logging.getLogger(__name__)


def _normalised(value):
    """Key values as both backends return them (numpy and Python ints alike), for remembering held jobs."""
    try:
        return int(value) if not isinstance(value, str) else value
    except (TypeError, ValueError):
        return value


class WorkerJobs(SafeRestriction, Job):
    """DataJoint's job table of one trained-model table, changed only by the worker that holds a job."""

    def __init__(self, target):
        super().__init__(target)
        self._held = {}

    # -- holding ---------------------------------------------------------
    def _id(self, key: dict) -> tuple:
        return tuple(_normalised(key[name]) for name in self.primary_key)

    def _holder(self) -> dict:
        """The holder that DataJoint's ``reserve`` writes for this process."""
        return {"host": platform.node(), "pid": os.getpid(), "connection_id": self.connection.connection_id}

    def reserve(self, key: dict) -> bool:
        holder = self._holder()
        if not super().reserve(key):
            return False
        self._held[self._id(key)] = holder
        return True

    def holder(self, key: dict) -> dict | None:
        """Who holds ``key`` if this process reserved it (host, pid, connection_id), else None."""
        return self._held.get(self._id(key))

    def _held_condition(self, key: dict, holder: dict) -> tuple[str, list]:
        quote = self.adapter.quote_identifier
        names = [*self.primary_key, "host", "pid", "connection_id"]
        values = [key[name] for name in self.primary_key] + [holder["host"], holder["pid"], holder["connection_id"]]
        values = [int(v) if not isinstance(v, str) else v for v in values]
        condition = " AND ".join(f"{quote(name)} = %s" for name in names)
        return f"{condition} AND {quote('status')} = 'reserved'", values

    def lock_held(self, key: dict) -> bool:
        """In the caller's transaction: lock the job row of ``key`` if this process still holds it.

        Returns False when the job was taken over (or finished) by another
        worker.  The row stays locked until the transaction ends, so no
        refresh can hand the job on between this check and the commit.
        """
        holder = self.holder(key)
        return holder is not None and self._lock(key, holder)

    def _lock(self, key: dict, holder: dict) -> bool:
        condition, args = self._held_condition(key, holder)
        rows = self.connection.query(
            f"SELECT 1 FROM {self.full_table_name} WHERE {condition} FOR UPDATE", args=tuple(args)
        ).fetchall()
        return len(rows) == 1

    def renew(self, key: dict, connection=None) -> bool:
        """Renew the reservation of a held job (on ``connection``, default the table's); False when it is lost."""
        holder = self.holder(key)
        if holder is None:
            return False
        condition, args = self._held_condition(key, holder)
        quote = self.adapter.quote_identifier
        cursor = (connection or self.connection).query(
            f"UPDATE {self.full_table_name} SET {quote('reserved_time')} = CURRENT_TIMESTAMP(3) WHERE {condition}",
            args=tuple(args),
        )
        return cursor.rowcount == 1

    def queue(self, keys: list) -> None:
        """Add a pending job for each of ``keys`` that has no job yet, in one INSERT.

        DataJoint's ``refresh`` finds the new keys itself and then cleans up
        the whole queue, several statements that read every job; a caller
        that knows the few keys it is about to train (a search trial) queues
        them with this and populates with ``refresh=False``.  A key whose
        previous step is not done yet waits as pending: populate only takes
        keys of its ``key_source``.
        """
        if keys:
            priority = self.connection._config.jobs.default_priority
            self.insert([{**{name: key[name] for name in self.primary_key}, "status": "pending", "priority": priority}
                         for key in keys], skip_duplicates=True)

    # -- finishing -------------------------------------------------------
    def complete(self, key: dict, duration: float | None = None) -> None:
        holder = self._held.pop(self._id(key), None)
        if holder is None:
            return super().complete(key, duration=duration)
        condition, args = self._held_condition(key, holder)
        quote = self.adapter.quote_identifier
        if self.connection._config.jobs.keep_completed:
            cursor = self.connection.query(
                f"UPDATE {self.full_table_name} SET {quote('status')} = 'success', "
                f"{quote('completed_time')} = CURRENT_TIMESTAMP(3), {quote('duration')} = %s WHERE {condition}",
                args=(duration, *args),
            )
        else:
            cursor = self.connection.query(f"DELETE FROM {self.full_table_name} WHERE {condition}", args=tuple(args))
        if cursor.rowcount != 1:
            log.info("job %s was no longer held by this worker when it finished; its job row is left alone", key)

    def error(self, key: dict, error_message: str, error_stack: str | None = None) -> None:
        holder = self._held.pop(self._id(key), None)
        if holder is None:
            return super().error(key, error_message=error_message, error_stack=error_stack)
        with self.connection.transaction:
            if self._lock(key, holder):
                super().error(key, error_message=error_message, error_stack=error_stack)
                return
        log.warning("job %s was taken over by another worker; this attempt's outcome is not recorded: %s",
                    {name: key[name] for name in self.primary_key}, error_message[:300])

    def give_back(self, host: str, pid: int) -> int:
        """Make the jobs reserved by process ``pid`` on ``host`` pending again (a worker that died); return how many."""
        quote = self.adapter.quote_identifier
        cursor = self.connection.query(
            f"UPDATE {self.full_table_name} SET {quote('status')} = 'pending', {quote('reserved_time')} = NULL "
            f"WHERE {quote('status')} = 'reserved' AND {quote('host')} = %s AND {quote('pid')} = %s",
            args=(host, int(pid)),
        )
        return cursor.rowcount


class WorkerJobsDescriptor:
    """``table.jobs``: the table's :class:`WorkerJobs`, declared on first use under the schema lock."""

    def __get__(self, obj, objtype=None):
        if obj is None:
            obj = objtype()
        if obj._jobs is None:
            jobs = WorkerJobs(obj)
            if not jobs.is_declared:
                with schema_lock(obj.connection, obj.database):
                    if not jobs.is_declared:
                        jobs.declare()
            obj._jobs = jobs
        return obj._jobs


def _second_connection(connection):
    """A new connection with the settings of ``connection`` (a thread needs its own)."""
    info = connection.conn_info
    return dj.Connection(
        info["host"], info["user"], info["passwd"], info["port"], info.get("ssl_input"),
        database_name=info.get("database_name"), backend=connection.adapter.backend,
        config_override=connection._config,
    )


class Heartbeat:
    """Renews the reservation of one held job every ``interval`` seconds until stopped.

    Use it as a context manager around the training.  ``lost`` becomes True
    when a renewal finds that the job is no longer held by this worker (it
    was taken over, or deleted); the renewals stop then.  A renewal that
    fails for another reason (the database briefly unreachable) is logged
    once, and the heartbeat reconnects and tries again every second until
    the database answers (see :mod:`.reconnect`).
    """

    def __init__(self, jobs: WorkerJobs, key: dict, interval: float):
        self.jobs = jobs
        self.key = {name: key[name] for name in jobs.primary_key}
        self.interval = max(0.05, float(interval))
        self.lost = False
        self._stop = threading.Event()
        self._thread = None
        self._connection = None

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, name="nntransfer-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        # a renewal hung on the network must not hold up the training's result
        self._thread.join(timeout=max(5.0, 2 * self.interval))
        try:
            if self._connection is not None:
                self._connection.close()
        except Exception:  # closing a broken connection must not hide the training's own outcome
            pass
        return False

    def _run(self):
        wait, failing = self.interval, False
        while not self._stop.wait(wait):
            try:
                if self._connection is None:  # made at the first renewal: a training shorter than one needs none
                    self._connection = _second_connection(self.jobs.connection)
                if not self.jobs.renew(self.key, self._connection):
                    self.lost = True
                    log.warning("job %s was taken over by another worker; this worker stops training it", self.key)
                    return
                if failing:
                    log.warning("heartbeat of job %s renewed again", self.key)
                wait, failing = self.interval, False
            except Exception as error:
                if not failing:
                    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                    log.warning("heartbeat of job %s failed (%s); reconnecting every second to renew it as soon "
                                "as the database answers", self.key, reason)
                wait, failing = min(self.interval, 1.0), True
                if self._connection is not None:
                    try_reconnect(self._connection)  # a connection the server dropped stays closed; it may be back

    def check(self) -> None:
        """Raise :class:`JobTakenOver` when the job is no longer held (called by the training callback)."""
        if self.lost:
            raise JobTakenOver(
                f"the job {self.key} was taken over by another worker (this worker's heartbeat was older than "
                "the orphan timeout); this training stops and its result is discarded."
            )
