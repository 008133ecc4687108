"""A recipe is stored once: its steps are recorded in the database and everything restricts by them."""

from __future__ import annotations

RECIPE = '''
from nntransfer.configs import Experiment, TransferExperiment, config_class_for

Digits = config_class_for("nntransfer.datasets.digits.digits_dataset_fn", "dataset")
Mlp = config_class_for("nntransfer.models.mlp.mlp_model_fn", "model")
Tiny = config_class_for("itest_functions.tiny_trainer", "trainer")
seeds = {seeds}
first = Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[8]), Tiny(steps=1), seed=seeds)
second = Experiment(Digits(batch_size=32), Mlp(hidden_sizes=[8]), Tiny(steps=2), seed=seeds)
experiments = {{"pair": TransferExperiment([first, second])}}
{extra}
'''

EXTRA_CHAIN = '''experiments["alone"] = TransferExperiment([Experiment(Digits(batch_size=16), Mlp(hidden_sizes=[4]),
                                                                Tiny(steps=1), seed=seeds)])'''


def write(path, seeds, extra=""):
    path.write_text(RECIPE.format(seeds=seeds, extra=extra))
    return str(path)


def test_a_recipe_is_inserted_once_and_edits_are_picked_up(db, tmp_path):
    from nntransfer import runner

    table = db.TransferredTrainedModel()
    recipe_file = tmp_path / "membership_demo.py"
    recipe = runner.load_recipe(write(recipe_file, [1, 2]))
    assert recipe.name == "membership_demo" == runner.recipe_name("some.package.membership_demo")
    assert runner.insert(recipe) == 4
    configs = len(db.Dataset()), len(db.Model()), len(db.Trainer())
    assert runner.insert(recipe) == 0  # unchanged: recognised at once, nothing written
    assert (len(db.Dataset()), len(db.Model()), len(db.Trainer())) == configs
    assert len(table.recipe_step_table() & {"recipe": "membership_demo"}) == 4

    # a seed added and a chain added after the first insert: the next insert plans exactly the new steps
    recipe = runner.load_recipe(write(recipe_file, [1, 2, 3], EXTRA_CHAIN))
    assert runner.insert(recipe) == 2 + 3
    assert len(table.recipe_step_table() & {"recipe": "membership_demo"}) == 9
    counts = runner.status("membership_demo")
    assert counts["total"] == {"done": 0, "running": 0, "pending": 6, "blocked": 3, "error": 0, "pruned": 0}

    # a seed taken out: it leaves the recipe's membership, its planned steps stay
    recipe = runner.load_recipe(write(recipe_file, [1, 3], EXTRA_CHAIN))
    assert runner.insert(recipe) == 0
    assert runner.status("membership_demo")["total"]["pending"] + runner.status("membership_demo")["total"]["blocked"] == 6


def test_run_status_and_retry_see_only_their_recipe(db, tmp_path):
    from nntransfer import runner

    db.TransferredTrainedModel.jobs.delete()
    mine = runner.load_recipe(write(tmp_path / "mine.py", [7]))
    other = runner.load_recipe(write(tmp_path / "other.py", [8]))
    runner.insert(other)
    result = runner.run(mine)
    assert result["success_count"] == 2 and result["error_list"] == []
    assert runner.status("mine")["total"]["done"] == 2
    assert runner.status("other")["total"] == {"done": 0, "running": 0, "pending": 1, "blocked": 1, "error": 0,
                                               "pruned": 0}
    assert runner.status("never_inserted")["total"] == dict.fromkeys(runner.STEP_STATES, 0)


def test_status_of_a_recipe_that_is_not_in_the_schema_says_so(db, tmp_path, capsys):
    from nntransfer.cli import main

    assert main(["status", str(tmp_path / "nowhere.py")]) == 2  # a usage error: nothing of that name here
    assert "'nowhere' has no steps in this schema" in capsys.readouterr().err


def test_a_membership_stored_without_step_names_is_completed_on_first_use(db, tmp_path):
    """A schema whose recipe steps were stored by an earlier nntransfer (no successor_history column) works."""
    import os
    import subprocess
    import sys

    from nntransfer import runner

    table = db.TransferredTrainedModel()
    recipe_file = write(tmp_path / "earlier.py", [5])
    assert runner.run(runner.load_recipe(recipe_file))["success_count"] == 2
    member = table.recipe_step_table()
    quote = table.connection.adapter.quote_identifier
    table.connection.query(f"ALTER TABLE {member.full_table_name} DROP COLUMN {quote('successor_history')}")
    try:
        # a new process opens the schema as it would after an upgrade of nntransfer
        result = subprocess.run([sys.executable, "-m", "nntransfer.cli", "status", recipe_file], capture_output=True,
                                text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
        assert result.returncode == 0, result.stderr
        assert "adding successor_history" in result.stderr
        assert result.stdout.splitlines()[-1].split()[:2] == ["all", "2"]  # both steps done
    finally:
        names = [row[0] for row in table.connection.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            args=(member.database, member.table_name)).fetchall()]
        if "successor_history" not in names:  # leave the session's schema as the other tests expect it
            table.connection.query(f"ALTER TABLE {member.full_table_name} "
                                   f"ADD COLUMN {quote('successor_history')} char(32) NOT NULL DEFAULT ''")
    rows = member.proj("successor_history").to_dicts()
    assert len(rows) == 2 and all(len(row["successor_history"]) == 32 for row in rows)
    assert runner.status("earlier")["total"]["done"] == 2


def test_the_queue_of_a_recipe_holds_its_ready_steps_once_and_takes_orphans_back(db, tmp_path):
    from nntransfer import runner
    from nntransfer.tables import queue

    table = db.TransferredTrainedModel()
    table.jobs.delete_quick()
    runner.insert(runner.load_recipe(write(tmp_path / "queued.py", [11, 12])))
    runner.insert(runner.load_recipe(write(tmp_path / "neighbour.py", [13])))
    assert queue.refresh(table, "queued") == {"added": 2, "orphaned": 0}  # step 0 of both seeds; step 1 waits
    assert queue.refresh(table, "queued")["added"] == 0
    queued = table.jobs.restrict(runner.restriction("queued", table), semantic_check=False)
    assert len(table.jobs) == 2 and len(queued) == 2  # the neighbour's step is not queued

    job = (queued & {"seed": 11}).keys()[0]
    assert table.jobs.reserve(job)
    quote = table.connection.adapter.quote_identifier
    table.connection.query(f"UPDATE {table.jobs.full_table_name} SET {quote('reserved_time')} = "
                           f"{quote('reserved_time')} - {table.connection.adapter.interval_expr(60, 'second')}")
    assert queue.refresh(table, "queued", orphan_timeout=300)["orphaned"] == 0  # its heartbeat is recent enough
    assert queue.refresh(table, "queued", orphan_timeout=30)["orphaned"] == 1
    assert (table.jobs & job).fetch1("status") == "pending"

    config = table.connection._config.jobs
    config.keep_completed = True
    try:
        table.jobs.update1({**job, "status": "success"})  # a kept record of a step whose row is gone
        queue.refresh(table, "queued")
        assert (table.jobs & job).fetch1("status") == "pending"
    finally:
        config.keep_completed = False
