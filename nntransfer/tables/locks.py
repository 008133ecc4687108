"""A database-wide lock per schema, so that processes starting at once declare its tables once.

Six workers of a job array that use a new schema at the same instant all
find its tables missing and all declare them; on PostgreSQL the losers fail
(``DuplicateTable``, ``DuplicateSchema``, a foreign key to a table another
process is still creating).  Declaring under one lock per schema, held by
the database server, makes the first process declare and the others find
the tables there: ``pg_advisory_lock`` on PostgreSQL, ``GET_LOCK`` on
MySQL and MariaDB.  Both are tied to the session, so a process that dies
releases its lock.

The lock is re-entrant within a process (declaring a table may declare the
companion tables it references), and schema names are checked before they
reach any SQL (:func:`check_schema_name`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading

from ..errors import ConfigError, DatabaseError

LOCK_TIMEOUT_S = 600
"""How long a process waits for another one to finish declaring a schema."""

SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SCHEMA_NAME_LENGTH = 63
"""PostgreSQL's limit for a name (MySQL allows 64)."""

_held: dict = {}
_guard = threading.Lock()


def check_schema_name(name) -> str:
    """Return ``name`` if both backends accept it as a schema name; a ConfigError that says why otherwise."""
    if not isinstance(name, str) or not SCHEMA_NAME.match(name) or len(name) > SCHEMA_NAME_LENGTH:
        raise ConfigError(
            f"{name!r} is not a usable schema name: use letters, digits and '_' only, starting with a letter "
            f"or '_', at most {SCHEMA_NAME_LENGTH} characters (e.g. 'my_project'). Other characters would have "
            "to be quoted in every statement, and quotes in a name are how SQL is smuggled in."
        )
    return name


def _digest(schema: str) -> bytes:
    return hashlib.blake2b(f"nntransfer schema {schema}".encode(), digest_size=12).digest()


def _lock_name(schema: str) -> str:
    return f"nntransfer_{_digest(schema).hex()}"


def _advisory_key(schema: str) -> int:
    return int.from_bytes(_digest(schema)[:8], "big", signed=True)


@contextlib.contextmanager
def schema_lock(connection, schema: str):
    """Hold the lock of ``schema`` on the server of ``connection`` (re-entrant within this process)."""
    token = (id(connection), schema)
    with _guard:
        depth = _held.get(token, 0)
        _held[token] = depth + 1
    try:
        if depth == 0:
            _acquire(connection, schema)
        try:
            yield
        finally:
            if depth == 0:
                _release(connection, schema)
    finally:
        with _guard:
            if _held[token] == 1:
                del _held[token]
            else:
                _held[token] -= 1


def _acquire(connection, schema: str) -> None:
    if connection.adapter.backend == "postgresql":
        connection.query(f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'")
        try:
            connection.query("SELECT pg_advisory_lock(%s)", args=(_advisory_key(schema),))
            got = True
        except Exception as error:  # the driver's lock-timeout error
            if "lock timeout" not in str(error):
                raise
            got = False
        finally:
            connection.query("RESET lock_timeout")
    else:
        got = connection.query("SELECT GET_LOCK(%s, %s)", args=(_lock_name(schema), LOCK_TIMEOUT_S)).fetchone()[0] == 1
    if not got:
        raise DatabaseError(
            f"waited {LOCK_TIMEOUT_S} s for another process to finish declaring the tables of schema {schema!r}; "
            "it may hang. Check the server's list of sessions."
        )


def _release(connection, schema: str) -> None:
    if connection.adapter.backend == "postgresql":
        connection.query("SELECT pg_advisory_unlock(%s)", args=(_advisory_key(schema),))
    else:
        connection.query("SELECT RELEASE_LOCK(%s)", args=(_lock_name(schema),))
