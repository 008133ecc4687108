"""Optuna's RDB storage inside the experiment schema, and a lock shared by every worker.

The study lives next to the tables it trains: Optuna's tables (``studies``,
``trials``, ...) are created in the same schema, so workers on a cluster
share them through the one database they already use, a backup of the
schema holds the studies, and dropping the schema drops them.  SQLAlchemy
connects with the parameters of the DataJoint connection (for the embedded
PostgreSQL: its Unix socket), through a ``creator`` function, so no password
ever appears in a URL; on PostgreSQL the ``search_path`` points at the
schema, on MySQL/MariaDB the schema is the database.

:func:`study_lock` is a named lock of the database server (an advisory lock
on PostgreSQL, ``GET_LOCK`` on MySQL/MariaDB): counting a study's trials and
starting the next one happen under it, so workers never overshoot the budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import warnings

from ..errors import DatabaseError

log = logging.getLogger(__name__)

_storages: dict = {}


def _backend(connection) -> str:
    return connection.adapter.backend


def _creator(connection, schema: str):
    info = connection.conn_info
    backend = _backend(connection)
    if backend == "postgresql":
        import psycopg2

        def connect():
            return psycopg2.connect(host=info["host"], port=info["port"], user=info["user"],
                                    password=info["passwd"] or None, dbname=info.get("database_name") or "postgres",
                                    options=f"-c search_path={schema}")

        return "postgresql+psycopg2://", connect
    if backend == "mysql":
        import pymysql

        def connect():
            return pymysql.connect(host=info["host"], port=int(info["port"]), user=info["user"],
                                   password=info["passwd"] or "", database=schema, charset="utf8mb4")

        return "mysql+pymysql://", connect
    raise DatabaseError(f"a search needs PostgreSQL or MySQL/MariaDB; this connection's backend is {backend!r}.")


def open_storage(connection, schema: str, heartbeat_interval: int, grace_period: int):
    """Optuna's RDB storage in ``schema`` of the database ``connection`` reaches (one per process and schema)."""
    import optuna

    cache_key = (id(connection), schema, heartbeat_interval, grace_period)
    storage = _storages.get(cache_key)
    if storage is not None:
        return storage
    url, creator = _creator(connection, schema)
    engine_kwargs = {"creator": creator, "pool_pre_ping": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        with study_lock(connection, f"{schema}: optuna tables"):  # workers starting together create them once
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(),
            )
    _storages[cache_key] = storage
    return storage


def _lock_id(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@contextlib.contextmanager
def study_lock(connection, name: str, timeout: float = 600):
    """Hold the database server's named lock ``name`` (all clients of that server share it)."""
    if _backend(connection) == "postgresql":
        connection.query("SELECT pg_advisory_lock(%s)", args=(_lock_id(name),))
        try:
            yield
        finally:
            connection.query("SELECT pg_advisory_unlock(%s)", args=(_lock_id(name),))
        return
    lock = "nntransfer-" + hashlib.blake2b(name.encode(), digest_size=16).hexdigest()
    got = connection.query("SELECT GET_LOCK(%s, %s)", args=(lock, int(timeout))).fetchone()[0]
    if got != 1:
        raise DatabaseError(f"could not take the database lock for {name!r} within {timeout:.0f} s; "
                            "another worker holds it. Try again, or look for a stuck worker.")
    try:
        yield
    finally:
        connection.query("SELECT RELEASE_LOCK(%s)", args=(lock,))
