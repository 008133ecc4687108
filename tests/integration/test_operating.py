"""Day-to-day operation: the command line's conventions, one home per project, notebook activation, live progress.

Commands run as real processes (``python -m nntransfer.cli``) against the
session's database, in schemas of their own.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

RECIPE = '''
from nntransfer.configs import Experiment, TransferExperiment, config_class_for

Digits = config_class_for("nntransfer.datasets.digits.digits_dataset_fn", "dataset")
Mlp = config_class_for("nntransfer.models.mlp.mlp_model_fn", "model")
Tiny = config_class_for("itest_functions.tiny_trainer", "trainer")
Failing = config_class_for("itest_operations.failing_trainer", "trainer")
experiments = {
    "good": TransferExperiment([Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[8]), Tiny(steps=1), seed=[1, 2])]),
    "bad": TransferExperiment([Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[8]), Failing(), seed=[3]),
                               Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[4]), Tiny(steps=1), seed=[3])]),
}
'''


def cli(*arguments: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nntransfer.cli", *arguments], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, cwd=cwd, timeout=600)


@pytest.fixture
def fresh_schema(nt_schema):
    """A schema name of its own, dropped at the end if a command made it."""
    from nntransfer.db import import_datajoint

    name = f"nnt_ops_{os.getpid()}_{secrets.token_hex(3)}"
    yield name
    dj = import_datajoint()
    if name in dj.list_schemas(nt_schema.connection):
        dj.Schema(name, connection=nt_schema.connection, create_schema=False, create_tables=False).drop(prompt=False)


def unexpected(stderr: str) -> list:
    """What -q let through besides what a server rightly warns about: no shared store, no SSL (said once)."""
    return [line for line in stderr.splitlines() if " WARNING " not in line and not line.startswith(")")]


def test_run_records_failures_and_the_report_commands_read_them_in_every_format(fresh_schema, tmp_path):
    recipe = tmp_path / "ops.py"
    recipe.write_text(RECIPE)
    run = cli("run", str(recipe), "--schema", fresh_schema)
    assert run.returncode == 1, run.stderr  # 1: a step failed
    assert run.stdout.startswith("trained 2 steps") and "Traceback" not in run.stderr
    failed = [line for line in run.stderr.splitlines() if " failed: " in line and "transfer step" in line]
    assert len(failed) == 1 and failed[0].endswith(  # once, with its first line only
        "ops: chain 'bad' transfer step 0, seed 3 failed: ValueError: the data has no column 'label'"), run.stderr
    assert "created schema" in run.stderr and fresh_schema in run.stderr  # which schema, said at connect

    status = cli("status", str(recipe), "--schema", fresh_schema, "--format", "json")
    assert status.returncode == 0, status.stderr
    counts = json.loads(status.stdout)
    assert counts["total"]["done"] == 2 and counts["total"]["error"] == 1 and counts["total"]["blocked"] == 1
    csv_status = cli("status", str(recipe), "--format", "csv", "--schema", fresh_schema).stdout.splitlines()
    assert csv_status[0] == "step,done,running,pending,blocked,error,pruned" and csv_status[-1].startswith("all,2,")

    errors = cli("-q", "errors", str(recipe), "--schema", fresh_schema)  # -q before the command
    assert errors.returncode == 0 and unexpected(errors.stderr) == [], errors.stderr
    assert "chain 'bad' transfer step 0, seed 3: ValueError: the data has no column 'label'" in errors.stdout
    assert "raise ValueError" in errors.stdout  # the tail of the traceback
    listed = json.loads(cli("errors", str(recipe), "--schema", fresh_schema, "--format", "json").stdout)
    assert [entry["seed"] for entry in listed] == [3] and listed[0]["chain"] == "bad"
    assert listed[0]["traceback"][-2:] == ["ValueError: the data has no column 'label'", "second line of the message"]

    results = json.loads(cli("results", str(recipe), "--format", "json", "--schema", fresh_schema).stdout)
    assert sorted(row["seed"] for row in results) == [1, 2]
    assert cli("results", str(recipe), "--format", "csv", "--schema", fresh_schema).stdout.startswith("chain,step,")

    # run records a failure as a worker does: retry sees it
    retried = cli("retry", str(recipe), "--schema", fresh_schema)
    assert retried.returncode == 0 and "queued 1 failed steps" in retried.stdout


def test_usage_errors_say_what_is_allowed_and_change_nothing(fresh_schema, tmp_path, nt_schema):
    from nntransfer.db import import_datajoint

    recipe = tmp_path / "ops.py"
    recipe.write_text(RECIPE)
    for bad in ("my'schema", "a/b", "x" * 70):
        result = cli("status", str(recipe), "--schema", bad)
        assert result.returncode == 2 and "letters, digits and '_'" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    missing = cli("status", str(recipe), "--schema", fresh_schema)
    assert missing.returncode == 2 and f"there is no schema {fresh_schema!r}" in missing.stderr
    assert fresh_schema not in import_datajoint().list_schemas(nt_schema.connection)  # nothing declared
    unknown = cli("status", "no_such_recipe", "--schema", nt_schema.database)
    assert unknown.returncode == 2 and "has no steps in this schema" in unknown.stderr
    plot = cli("plot", str(recipe), "--schema", nt_schema.database, "--out", str(tmp_path / "p.png"))
    assert plot.returncode == 2 and "has no steps" in plot.stderr and not (tmp_path / "p.png").exists()
    assert cli("status").returncode == 2  # argparse: RECIPE missing
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("nntransfer ")


def test_an_unreachable_server_is_exit_code_3(tmp_path):
    env = {"NNTRANSFER_DB": "server", "DJ_HOST": "127.0.0.1", "DJ_PORT": "9", "DJ_USER": "nobody", "DJ_PASS": "",
           "DJ_BACKEND": "postgresql"}
    result = cli("status", "recipe", env=env)
    assert result.returncode == 3 and "Cannot connect" in result.stderr, result.stderr


def test_the_home_is_found_from_any_folder_of_a_project(tmp_path):
    from nntransfer.settings import find_home

    project = tmp_path / "project"
    (project / "notebooks" / "deep").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    environment = os.environ.pop("NNTRANSFER_HOME")
    try:
        for start in (project, project / "notebooks" / "deep"):
            home, why = find_home(start)
            assert home == project / ".nntransfer" and "pyproject.toml" in why
        (project / "notebooks" / ".nntransfer").mkdir()  # an existing home wins over the project marker above it
        assert find_home(project / "notebooks" / "deep")[0] == project / "notebooks" / ".nntransfer"
        outside = tmp_path / "elsewhere"
        outside.mkdir()
        home, why = find_home(outside)
        assert home.name == "nntransfer" and "per-user" in why
    finally:
        os.environ["NNTRANSFER_HOME"] = environment


NOTEBOOK = """
import datajoint as dj
dj.config["safemode"] = True
import nntransfer
from nntransfer import tables
from nntransfer.configs import DatasetConfig, ModelConfig, TrainerConfig, Experiment
d = DatasetConfig.for_fn("nntransfer.datasets.digits.digits_dataset_fn", batch_size=64)
m = ModelConfig.for_fn("nntransfer.models.mlp.mlp_model_fn", hidden_sizes=[8])
t = TrainerConfig.for_fn("itest_functions.tiny_trainer", steps=1)
nntransfer.activate("{first}")
nntransfer.insert(Experiment(d, m, t, seed=[1]))
nntransfer.activate("{second}")
nntransfer.insert(Experiment(d, m, t, seed=[1, 2]))
counts = {{"second": len(tables.Seed())}}
nntransfer.activate("{first}")
counts["first"] = len(tables.Seed())
counts["safemode"] = dj.config["safemode"]
print(counts)
"""


def test_activate_with_another_schema_switches_and_leaves_safemode_alone(nt_schema, tmp_path):
    from nntransfer.db import import_datajoint

    first, second = (f"nnt_switch_{os.getpid()}_{secrets.token_hex(3)}" for _ in range(2))
    script = tmp_path / "notebook.py"
    script.write_text(textwrap.dedent(NOTEBOOK.format(first=first, second=second)))
    try:
        result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "{'second': 2, 'first': 1, 'safemode': True}"
    finally:
        dj = import_datajoint()
        for name in (first, second):
            if name in dj.list_schemas(nt_schema.connection):
                dj.Schema(name, connection=nt_schema.connection, create_tables=False).drop(prompt=False)


def test_one_log_handler_on_stderr_and_no_warnings_about_the_librarys_own_columns(fresh_schema, tmp_path):
    recipe = tmp_path / "ops.py"
    recipe.write_text(RECIPE)
    result = cli("worker", str(recipe), "--schema", fresh_schema, "--poll", "0.1", "-v")  # -v after the command
    assert "Native type" not in result.stderr and "Native type" not in result.stdout
    assert result.stdout.splitlines()[0].startswith("trained ")  # nothing but results on stdout
    banners = [line for line in result.stderr.splitlines() if "DataJoint" in line and "connected" in line]
    # DataJoint's lines come once, through our handler: none in DataJoint's own "[date] ..." format
    # (a worker connects once per job for its heartbeat, so equal lines of one second are fine)
    assert banners and not any(line.startswith("[") for line in result.stderr.splitlines()), result.stderr
    assert "DataJoint" not in result.stdout
    assert result.stderr.count("the data has no column") == 1, result.stderr  # the failed step, once
    assert "2 of 4 steps done" in result.stderr  # the overall progress line
    log_file = tmp_path / "worker.log"
    quiet = cli("status", str(recipe), "--schema", fresh_schema, "-q", "--log-file", str(log_file))
    assert quiet.returncode == 0 and unexpected(quiet.stderr) == [] and log_file.exists()


def test_a_deleted_row_populated_again_stores_its_new_weights_and_gc_takes_the_old_file(db, capsys):
    """A trainer whose result differs every time: the new row's file is new, loads, and matches its checksum."""
    import torch

    from nntransfer import insert
    from nntransfer.cli import main
    from nntransfer.configs import Experiment, config_class_for
    from nntransfer.tables.trained import artifact_store

    Digits = config_class_for("nntransfer.datasets.digits.digits_dataset_fn", "dataset")
    Mlp = config_class_for("nntransfer.models.mlp.mlp_model_fn", "model")
    from nntransfer.resolve import allow_packages

    allow_packages("itest_operations")
    Random = config_class_for("itest_operations.random_trainer", "trainer")
    (key,) = insert(Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[8]), Random(), seed=4))
    table = db.TrainedModel()
    table.populate(key)
    first = table.fetch_state_dict(key)
    folder = artifact_store().location(artifact_store().key_folder(table, key))
    first_file = set(Path(folder).iterdir())
    assert main(["gc", "--grace", "0"]) == 0  # what earlier tests' deleted rows left
    capsys.readouterr()

    (db.TrainedModel & key).delete(prompt=False)
    table.populate(key)
    second = table.fetch_state_dict(key)  # checked against the new row's checksum
    assert any(not torch.equal(first[name], second[name]) for name in first)
    assert table.load_model(key, include_dataloader=False) is not None
    assert first_file < set(Path(folder).iterdir())  # a file of its own; the old one is left for gc
    assert main(["gc", "--grace", "0"]) == 0
    assert "removed 1 orphaned files" in capsys.readouterr().out
    (remaining,) = Path(folder).iterdir()
    assert remaining not in first_file
    assert all(torch.equal(second[name], tensor) for name, tensor in table.fetch_state_dict(key).items())


def test_status_watch_prints_again_until_ctrl_c(nt_schema, tmp_path):
    import signal
    import time

    from nntransfer import runner

    recipe = tmp_path / "watched.py"
    recipe.write_text(RECIPE)
    runner.insert(runner.load_recipe(str(recipe)))
    output = tmp_path / "watch.txt"
    with open(output, "w") as stdout:
        watching = subprocess.Popen([sys.executable, "-m", "nntransfer.cli", "status", str(recipe), "--watch", "0.2"],
                                    stdout=stdout, stderr=subprocess.STDOUT, env={**os.environ})
        deadline = time.monotonic() + 300
        while output.read_text().count("step      done") < 2 and time.monotonic() < deadline:  # two tables printed
            assert watching.poll() is None, output.read_text()
            time.sleep(0.2)
        watching.send_signal(signal.SIGINT)
        assert watching.wait(timeout=60) == 0
    printed = output.read_text()
    assert printed.count("step      done") >= 2 and "Traceback" not in printed, printed


READ_ONLY = """
import datajoint as dj
from nntransfer import tables

tables.activate({name!r}, must_exist=True)


@tables.schema
class ReaderNote(dj.Manual):
    definition = "note_id: int32"


print(sorted(name for name in tables.schema.list_tables() if name in ("worker_device", "reader_note")))
"""


def test_commands_that_only_read_declare_what_an_older_schema_lacks_and_later_tables_as_usual(fresh_schema,
                                                                                                tmp_path):
    """A reading command binds the tables without declaring them; a missing one is still declared."""
    from nntransfer.db import import_datajoint

    created = cli("--schema", fresh_schema, "status", "no_such_recipe")  # makes nothing: the schema does not exist
    assert created.returncode == 2 and "there is no schema" in created.stderr
    dj = import_datajoint()
    script = tmp_path / "reader.py"
    script.write_text(textwrap.dedent(READ_ONLY.format(name=fresh_schema)))
    subprocess.run([sys.executable, "-c", f"from nntransfer import tables; tables.activate({fresh_schema!r})"],
                   check=True, timeout=600)
    quote = dj.conn().adapter.quote_identifier
    dj.conn().query(f"DROP TABLE {quote(fresh_schema)}.{quote('worker_device')}")  # as in a schema of an older version
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "['reader_note', 'worker_device']"
    status = cli("--schema", fresh_schema, "status", "no_such_recipe")
    assert status.returncode == 2 and "has no steps in this schema" in status.stderr
