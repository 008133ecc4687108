"""A result the server rolls back to break a deadlock is stored again, not recorded as failed.

The deadlock is a real one, between a real ``nntransfer worker`` and the
test's own connection: while the worker trains step 0, the test locks the
plan row of step 1; storing step 0 locks its job row, then waits for that
plan row to flag step 1 ready; the test then asks for the job row.  The
server breaks the cycle by rolling back the worker's transaction: PostgreSQL
because the worker's deadlock check runs first (the test's is set to 20 s),
MariaDB because the test's transaction has written more rows (InnoDB rolls
back the lighter one).  Four workers storing results at once met this on
MariaDB.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

RECIPE = '''
from nntransfer.configs import Experiment, TransferExperiment, config_class_for

Digits = config_class_for("nntransfer.datasets.digits.digits_dataset_fn", "dataset")
Mlp = config_class_for("nntransfer.models.mlp.mlp_model_fn", "model")
Slow = config_class_for("itest_functions.sleepy_standard_trainer", "trainer")
first = Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[16]),
                   Slow(epochs=3, lr=0.01, epoch_sleep=1.0, modules={"checkpointing": {"save_best": False}}), seed=4)
second = Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[16]), Slow(epochs=1, lr=0.01, epoch_sleep=0.0), seed=4)
experiments = {"pretrain then tune": TransferExperiment([first, second])}
'''


def wait_for(condition, what: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def locked(connection, table: str, key: dict):
    """``SELECT ... FOR UPDATE`` of the row ``key`` of ``table``: waits while another transaction holds it."""
    quote = connection.adapter.quote_identifier
    where = " AND ".join(f"{quote(name)} = %s" for name in key)
    return connection.query(f"SELECT 1 FROM {table} WHERE {where} FOR UPDATE", args=tuple(key.values())).fetchall()


def waits_for_a_lock(connection, table_name: str) -> bool:
    """Whether another session waits for a row lock (on MariaDB and MySQL: an UPDATE of ``table_name`` runs for a
    second or more; it waits up to ``innodb_lock_wait_timeout``, 50 s by default)."""
    if connection.adapter.backend == "postgresql":
        return connection.query(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database() AND pid <> pg_backend_pid()").fetchone()[0] > 0
    # INNODB_TRX missed the waiting transaction here; the process list shows its statement
    return connection.query(
        "SELECT count(*) FROM information_schema.PROCESSLIST WHERE info LIKE %s AND time >= 1 "
        "AND id <> CONNECTION_ID()", args=(f"UPDATE %{table_name}%",)).fetchone()[0] > 0


def test_a_result_rolled_back_in_a_deadlock_is_stored_again(db, tmp_path):
    from nntransfer import runner

    table = db.TransferredTrainedModel()
    db.TransferredTrainedModel.jobs.delete()
    recipe_file = tmp_path / "deadlock_recipe.py"
    recipe_file.write_text(RECIPE)
    recipe = runner.load_recipe(str(recipe_file))
    assert runner.insert(recipe) == 2
    first, second = recipe.chains["pretrain then tune"].steps(4)
    job_key = {name: first[name] for name in table.primary_key}
    plan_key = {name: second[name] for name in table.plan_table().primary_key}

    worker = subprocess.Popen(
        [sys.executable, "-m", "nntransfer.cli", "worker", str(recipe_file), "--poll", "0.2"],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    connection = table.connection
    try:
        wait_for(lambda: len(table.jobs.reserved & job_key) == 1, "the worker trains step 0")
        connection.start_transaction()
        if connection.adapter.backend == "postgresql":
            connection.query("SET LOCAL deadlock_timeout = '20s'")  # the worker's check finds the cycle first
        else:  # InnoDB rolls back the transaction that has written fewer rows
            connection.query(f"INSERT INTO {db.Seed().full_table_name} (seed) VALUES "
                             + ", ".join(f"({1000 + n})" for n in range(200)))
        assert locked(connection, table.plan_table().full_table_name, plan_key)
        wait_for(lambda: waits_for_a_lock(connection, table.plan_table().table_name),
                 "storing step 0 waits for the plan row of step 1")
        assert locked(connection, table.jobs.full_table_name, job_key)  # the cycle: the worker is rolled back
        assert not table & job_key  # in the test's snapshot, nothing was stored
        connection.cancel_transaction()
        output, _ = worker.communicate(timeout=180)
    except AssertionError as failed:
        worker.kill()
        raise AssertionError(f"{failed}; the worker printed:\n{worker.communicate()[0]}") from None
    finally:
        if connection.in_transaction:
            connection.cancel_transaction()
        if worker.poll() is None:
            worker.kill()
            worker.communicate()

    assert worker.returncode == 0, output
    assert "to break a deadlock with another worker; trying it again" in output, output
    assert "trained 2 steps, 0 errors" in output, output
    assert runner.status(recipe)["total"]["done"] == 2
    assert len(table.jobs.errors) == 0 and len(db.Seed() & "seed >= 1000") == 0
    assert len(table & job_key) == 1
    assert (table & job_key).fetch1("output")["resumed_from"] is not None  # the second attempt resumed
