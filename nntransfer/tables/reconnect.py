"""Surviving a database that goes away for a while: recognise a lost connection, reconnect with bounded backoff.

A training of hours must not be lost to a minute of database maintenance.
DataJoint reconnects by itself only in some cases (on PostgreSQL a closed
connection raises psycopg2's ``InterfaceError`` before any query is sent,
which DataJoint passes on as it is), so the table layer and the worker loop
ask here instead: :func:`is_connection_error` tells a lost connection from
any other error, and :func:`wait_for_database` reconnects, waiting 0.5 s,
then twice as long each time up to 10 s between tries, for at most
:func:`reconnect_timeout` seconds in all (``NNTRANSFER_RECONNECT_TIMEOUT``,
default 600; ``nntransfer worker --reconnect-timeout``).  Past that bound it
raises :class:`~nntransfer.errors.DatabaseUnreachable`; the training's
checkpoints are kept locally meanwhile (:mod:`.outage_checkpoints`), so the
next attempt resumes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time

from ..errors import DatabaseError, DatabaseUnreachable

log = logging.getLogger(__name__)

DEFAULT_RECONNECT_TIMEOUT = 600.0
FIRST_WAIT_S = 0.5
LONGEST_WAIT_S = 10.0

_timeout_override: list = []


def reconnect_timeout() -> float:
    """Seconds a worker waits for a lost database before it gives up (see the module doc)."""
    if _timeout_override:
        return _timeout_override[-1]
    text = os.environ.get("NNTRANSFER_RECONNECT_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_RECONNECT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise DatabaseError(f"NNTRANSFER_RECONNECT_TIMEOUT={text!r} is not a number of seconds >= 0.")
    return value


def set_reconnect_timeout(seconds: float | None) -> None:
    """Use ``seconds`` as the bound in this process (None: back to the environment's or the default)."""
    _timeout_override.clear()
    if seconds is not None:
        _timeout_override.append(float(seconds))


_MYSQL_LOST = {2003, 2006, 2013, 2055}
"""pymysql's codes for: cannot connect, server has gone away, lost during query, lost at a read."""


def is_connection_error(error: BaseException) -> bool:
    """Whether ``error`` means the database connection is gone (as opposed to a bad query or a failed training)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if _lost(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _lost(error: BaseException) -> bool:
    name, module = type(error).__name__, type(error).__module__
    if name == "LostConnectionError" and module.startswith("datajoint"):
        return True
    if module.startswith("psycopg2"):
        if name == "InterfaceError":
            return True
        code = getattr(error, "pgcode", None)
        return name == "OperationalError" and (code is None or code.startswith(("08", "57P")))
    if module.startswith("pymysql"):
        code = error.args[0] if error.args else None
        return name == "InterfaceError" or (name == "OperationalError" and code in _MYSQL_LOST)
    return isinstance(error, (ConnectionError, BrokenPipeError))


def unreachable_in(error: BaseException | None) -> DatabaseUnreachable | None:
    """The :class:`DatabaseUnreachable` that ``error`` is or was raised while handling, if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, DatabaseUnreachable):
            return error
        error = error.__cause__ or error.__context__
    return None


def alive(connection) -> bool:
    """Whether ``connection`` answers (its adapter's ping: DataJoint's ``Connection.ping`` drops the answer)."""
    try:
        return bool(connection.adapter.ping(connection._conn))
    except Exception:
        return False


@contextlib.contextmanager
def _quiet_attempts():
    """DataJoint logs a warning for every failed first try of a connection (with SSL); one per outage is ours."""
    logger = logging.getLogger("datajoint")

    def keep(record) -> bool:
        return not str(record.msg).startswith("SSL connection failed")

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def try_reconnect(connection) -> bool:
    """One quiet attempt to connect ``connection`` again; whether it answers now."""
    with _quiet_attempts():
        try:
            connection.connect()
        except Exception:
            return False
    if not alive(connection):
        return False
    connection._in_transaction = False  # a transaction that was open went with the old connection
    return True


def wait_for_database(connection, timeout: float | None = None, what: str = "") -> float:
    """Make ``connection`` work again: reconnect with backoff until it answers; return the seconds it took.

    Returns at once when the connection answers.  Raises
    :class:`DatabaseUnreachable` when it does not within ``timeout``
    (default :func:`reconnect_timeout`).  A transaction that was open is
    gone with the old connection, so the connection is marked as outside one.
    """
    if alive(connection):
        return 0.0
    timeout = reconnect_timeout() if timeout is None else timeout
    started = time.monotonic()
    wait = FIRST_WAIT_S
    log.warning("lost the database connection%s; reconnecting for up to %.0f s", f" ({what})" if what else "", timeout)
    while True:
        if try_reconnect(connection):
            took = time.monotonic() - started
            log.warning("database connection back after %.1f s", took)
            return took
        remaining = timeout - (time.monotonic() - started)
        if remaining <= 0:
            raise DatabaseUnreachable(
                f"the database did not answer for {timeout:.0f} s. Start it (or check the network) and "
                "run the worker again: trainings resume from their last checkpoint, kept locally when the database "
                "could not take it. NNTRANSFER_RECONNECT_TIMEOUT (or --reconnect-timeout) sets how long to wait."
            ) from None
        time.sleep(min(wait, remaining))
        wait = min(wait * 2, LONGEST_WAIT_S)
