"""A recipe's job queue, refreshed in two statements whatever the size of the schema.

A worker refreshes its queue when it finds nothing to do and every few
seconds: the recipe's steps that can start and have no job get a pending
one, and jobs whose worker stopped sending heartbeats are given back.
DataJoint's ``jobs.refresh`` does this with ``key NOT IN (subquery)`` over
the ten columns of a step's key.  PostgreSQL answers that by hashing the
subquery only while it fits in ``work_mem``; beyond (about 100,000 steps)
it compares every row with every row, and one refresh runs for hours.
Here the same is written with NOT EXISTS, which every server answers with
an anti-join or index lookups, and the "is it done" test is the one-column
lookup of :meth:`~nntransfer.tables.transfer.TransferredTrainedModelBase.step_states`.

The rest of DataJoint's refresh (dropping job records of keys that left
the plan) is housekeeping no state depends on; ``table.jobs.refresh()``
still does it.
"""

from __future__ import annotations

from .conflicts import retried_on_conflict


def refresh(table, recipe: str, orphan_timeout: float | None = None) -> dict:
    """Queue the steps of ``recipe`` that are ready, not done and have no job; give orphaned jobs back.

    As DataJoint's refresh does, a reserved job whose reservation (renewed by
    its worker's heartbeat) is older than ``orphan_timeout`` seconds is
    pending again, and so is, with ``jobs.keep_completed``, the kept record
    of a step whose trained row was deleted.  Returns ``{"added": n,
    "orphaned": n}``.
    """
    connection, quote = table.connection, table.connection.adapter.quote_identifier
    jobs, plan = table.jobs, table.plan_table()
    names = plan.primary_key
    columns = ", ".join(quote(name) for name in names)

    def same(alias):
        return " AND ".join(f"{alias}.{quote(name)} = s.{quote(name)}" for name in names)

    history, status = quote("successor_history"), quote("status")
    # a second in the past, as DataJoint's populate does: a job stamped in the millisecond a
    # populate looks for "scheduled_time <= now" is not skipped by rounding
    scheduled = f"CURRENT_TIMESTAMP(3) + {connection.adapter.interval_expr(-1, 'second')}"
    # two workers refreshing at one instant may both find a step without a job: the second
    # insert of its key is skipped, not an error (neither sees the other's uncommitted row);
    # on MariaDB the INSERT ... SELECT takes shared locks, so a deadlock with a worker storing
    # its result is possible, and the statement runs again (see .conflicts)
    postgres = connection.adapter.backend == "postgresql"
    insert, on_conflict = ("INSERT", " ON CONFLICT DO NOTHING") if postgres else ("INSERT IGNORE", "")
    added = retried_on_conflict(connection, lambda: connection.query(
        f"{insert} INTO {jobs.full_table_name} ({columns}, {status}, {quote('priority')}, {quote('scheduled_time')}) "
        f"SELECT {', '.join(f's.{quote(name)}' for name in names)}, %s, %s, {scheduled} "
        f"FROM {table.recipe_step_table().full_table_name} s WHERE s.{quote('recipe')} = %s "
        # the one-column test first: most steps of a large recipe are done, and MariaDB tests in this order
        f"AND NOT EXISTS (SELECT 1 FROM {table.full_table_name} d WHERE d.{history} = s.{history}) "
        f"AND NOT EXISTS (SELECT 1 FROM {jobs.full_table_name} j WHERE {same('j')}) "
        f"AND EXISTS (SELECT 1 FROM {plan.full_table_name} p WHERE {same('p')} AND p.{quote('ready')} = 1){on_conflict}",
        args=("pending", connection._config.jobs.default_priority, recipe),
    ).rowcount)
    if connection._config.jobs.keep_completed:  # a kept record of a step trained once, then deleted
        connection.query(
            f"UPDATE {jobs.full_table_name} AS s SET {status} = 'pending' WHERE s.{status} = 'success' "
            f"AND EXISTS (SELECT 1 FROM {table.recipe_step_table().full_table_name} m WHERE m.{quote('recipe')} = %s "
            f"AND {same('m')} AND NOT EXISTS (SELECT 1 FROM {table.full_table_name} d WHERE d.{history} = m.{history}))",
            args=(recipe,),
        )
    return {"added": added, "orphaned": give_back_orphans(table, orphan_timeout)}


def give_back_orphans(table, orphan_timeout: float | None) -> int:
    """Make every reserved job of ``table`` whose reservation is older than ``orphan_timeout`` s pending again.

    The reservation is renewed by its worker's heartbeat, so such a job's
    worker is gone.  One UPDATE on the job table, whatever the size of the
    schema; returns how many jobs were given back (0 when ``orphan_timeout``
    is None or 0).
    """
    if not orphan_timeout:
        return 0
    connection, quote, jobs = table.connection, table.connection.adapter.quote_identifier, table.jobs
    return connection.query(
        f"UPDATE {jobs.full_table_name} SET {quote('status')} = 'pending', {quote('reserved_time')} = NULL "
        f"WHERE {quote('status')} = 'reserved' AND {quote('reserved_time')} < "
        f"CURRENT_TIMESTAMP(3) - {connection.adapter.interval_expr(orphan_timeout, 'second')}"
    ).rowcount

