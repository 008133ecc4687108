"""Transactions the database server rolled back to break a deadlock: run again, not failed.

Workers on one schema lock the same rows in different orders: one stores a
result and flags the next step ready while another refreshes the queue,
which on MariaDB and MySQL reads the plan and the trained rows with shared
next-key locks (InnoDB's INSERT ... SELECT and UPDATE under REPEATABLE READ).
When their waits form a cycle the server breaks it by rolling one transaction
back: MySQL's error 1213, PostgreSQL's ``deadlock_detected`` (40P01), or
``serialization_failure`` (40001) under a stricter isolation level.  Both
servers' manuals say what to do: run the transaction again.  Nothing of it
was written, so that loses nothing.

:func:`is_conflict` recognises such an error; :func:`retried_on_conflict`
runs a statement or a short transaction again (the queue's refresh, the
ready flags, a recipe's insert).  A training whose result was rolled back is
trained again from its checkpoints and stored by the trained-model tables
(:mod:`.trained`), up to ``CONFLICT_ATTEMPTS`` times.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time

_MYSQL_DEADLOCK = 1213
"""ER_LOCK_DEADLOCK: the server rolled the whole transaction back."""

_POSTGRES_CONFLICTS = {"40P01", "40001"}
"""deadlock_detected and serialization_failure: the transaction is aborted and may be run again."""


def is_conflict(error: BaseException | None) -> bool:
    """Whether ``error`` (or an error it was raised from) is a transaction the server rolled back to break a deadlock."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        module = type(error).__module__
        if module.startswith("pymysql") and error.args and error.args[0] == _MYSQL_DEADLOCK:
            return True
        if module.startswith("psycopg2") and getattr(error, "pgcode", None) in _POSTGRES_CONFLICTS:
            return True
        error = error.__cause__ or error.__context__
    return False


@contextlib.contextmanager
def not_logged():
    """Within the block, DataJoint does not log a conflict as an error: the key is tried again, and one that
    fails for good is reported by the worker with the step's name."""
    logger = logging.getLogger("datajoint")

    def keep(record) -> bool:
        return not (isinstance(record.msg, BaseException) and is_conflict(record.msg))

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def pause(attempt: int) -> None:
    """Wait a little before attempt ``attempt + 1``, longer each time and jittered, so the same two don't meet again."""
    time.sleep(0.05 * (attempt + 1) * (1 + random.random()))


def retried_on_conflict(connection, work, attempts: int = 5):
    """``work()``, run again when the server rolled it back to break a deadlock (see above).

    ``work`` is one statement, or opens and commits a transaction of its own.
    Inside a transaction opened before, it runs once: the rollback took
    everything before it too, so the one who opened that transaction must
    run it again.
    """
    if connection.in_transaction:
        return work()
    for attempt in range(attempts):
        try:
            return work()
        except Exception as error:  # the driver's own class: pymysql or psycopg2
            if not is_conflict(error) or attempt == attempts - 1:
                raise
            pause(attempt)
