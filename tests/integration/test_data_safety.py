"""Data safety and the trust boundary on every backend: kill storms, first use, exact configs, crafted rows.

Each test uses the session's database (embedded PostgreSQL, or the server
of ``NNTRANSFER_TEST_SERVER``), so the make target runs them on all three.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nntransfer.errors import ConfigError, TransferError, UntrustedFunctionError

ROOT = Path(__file__).resolve().parents[2]
DIGITS = "nntransfer.datasets.digits.digits_dataset_fn"
MLP = "nntransfer.models.mlp.mlp_model_fn"
TINY = "itest_functions.tiny_trainer"
KWARGS = "itest_functions.kwargs_trainer"


def add_basic(db, trainer=TINY, trainer_config=None, seed=3, batch_size=64):
    keys = [
        db.Dataset().add_entry(dataset_fn=DIGITS, dataset_config={"batch_size": batch_size}),
        db.Model().add_entry(model_fn=MLP, model_config={"hidden_sizes": [8]}),
        db.Trainer().add_entry(trainer_fn=trainer, trainer_config=trainer_config or {}),
    ]
    db.Seed().insert1({"seed": seed}, skip_duplicates=True)
    return {name: value for key in keys for name, value in key.items()} | {"seed": seed}


@pytest.mark.slow
def test_kill_storm_ends_with_every_step_done_once_loadable_and_nothing_orphaned():
    """Workers SIGKILLed mid-training, orphan timeout shorter than an epoch (figures: benchmarks/kill_storm.py)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "kill_storm.py"), "--json", "--workers", "2", "--kills", "2",
         "--seeds", "2", "--epochs", "2", "--epoch-seconds", "0.5", "--orphan-timeout", "0.3", "--kill-every", "0.7",
         "--timeout", "240"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert not figures["timed_out"], figures
    assert figures["kills"] == 2, figures
    assert figures["steps_done"] == figures["steps_planned"] == figures["artifacts_loaded"] == 4, figures
    # one extra attempt per kill and none more: no live worker was taken for dead (its epochs outlast the timeout)
    assert figures["attempts"] == figures["steps_planned"] + figures["kills"], figures
    assert figures["worker_exit_codes"] == [0] * len(figures["worker_exit_codes"]), figures
    assert figures["orphans_after_gc"] == 0 and figures["referenced_files_missing"] == 0, figures
    assert figures["checkpoint_rows_left"] == 0, figures


FIRST_USE = """
import sys, time
from nntransfer import tables
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
tables.activate(sys.argv[1])
tables.TransferredTrainedModel.recipe_step_table
print("activated", len(tables.TransferredTrainedModel.plan_table()))
"""


def test_six_processes_using_a_new_schema_at_once_all_succeed(nt_schema):
    from nntransfer.db import import_datajoint

    name = f"{os.environ['NNTRANSFER_SCHEMA']}_first"
    start = time.time() + 6.0  # every process has imported and connected by then, and they go at once
    processes = [subprocess.Popen([sys.executable, "-c", FIRST_USE, name, str(start)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(6)]
    try:
        outputs = [process.communicate(timeout=120) for process in processes]
        failed = [err[-1500:] for process, (_, err) in zip(processes, outputs) if process.returncode != 0]
        assert not failed, failed
        assert all("activated 0" in out for out, _ in outputs)
    finally:
        schema = import_datajoint().Schema(name, connection=nt_schema.connection, create_schema=False)
        if schema.exists:
            schema.drop(prompt=False)


EXACT = [-0.0, 1e16, 1.7976931348623157e308, 1e23, 5e-324, 0.1, -1e16]


def test_config_values_round_trip_exactly_and_insert_again(db):
    from nntransfer.hashing import config_hash

    key = db.Trainer().add_entry(trainer_fn=KWARGS, trainer_config={"values": EXACT, "nested": {"zero": -0.0}})
    _, stored = db.Trainer().get_config(key)
    assert [(type(v), math.copysign(1.0, v), v) for v in stored["values"]] == [(float, math.copysign(1.0, v), v)
                                                                              for v in EXACT]
    assert math.copysign(1.0, stored["nested"]["zero"]) == -1.0
    assert config_hash(stored) == key["trainer_hash"]  # what is hashed is what comes back
    # the second insert of the same recipe (every `run` and `worker` does one) finds the same row
    assert db.Trainer().add_entry(trainer_fn=KWARGS, trainer_config={"values": EXACT, "nested": {"zero": -0.0}}) == key
    assert len(db.Trainer()) == 1


def test_nul_characters_and_deep_nesting_are_refused_before_the_driver(db):
    with pytest.raises(ConfigError, match=r"trainer_config\['name'\] contains a NUL character"):
        db.Trainer().add_entry(trainer_fn=KWARGS, trainer_config={"name": "a\x00b"})
    deep = leaf = {}
    for _ in range(80):
        leaf["x"] = {}
        leaf = leaf["x"]
    with pytest.raises(ConfigError, match="nested more than 64 levels"):
        db.Trainer().add_entry(trainer_fn=KWARGS, trainer_config={"deep": deep})
    assert len(db.Trainer()) == 0


def test_injection_payloads_are_refused_and_change_nothing(db, tmp_path, capsys):
    from nntransfer.cli import main
    from nntransfer.hashing import config_hash

    key = add_basic(db)
    with pytest.raises(ConfigError, match="a list is not a value"):
        db.Dataset() & {"dataset_fn": ["' OR 1=1 OR 'a'='a"]}
    with pytest.raises(ConfigError, match="a dict is not a value"):
        db.Trainer() & {"trainer_fn": {"x": "' OR 'a'='a"}}
    with pytest.raises(ConfigError, match="a list is not a value"):
        db.Fabrikant.resolve(["' OR 1=1 --"])
    with pytest.raises(ConfigError, match="not an attribute name"):
        db.Dataset() & {"dataset_config.a') OR 1=1 --": 1}
    assert len(db.Dataset() & {"dataset_fn": "' OR 1=1 OR 'a'='a"}) == 0  # strings are escaped: no match

    # a recipe row written past add_entry, its JSON crafted to reach a restriction
    target = db.TransferredTrainedModel()
    db.TransferredTrainedModel.populate()  # step 0 of the basic combination
    payload = "x'); DROP TABLE seed; --"
    for transfer_from in ({"dataset_fn": payload, "dataset_hash": "0" * 32},
                          {"dataset_fn": [payload], "dataset_hash": "0" * 32}):
        recipe = {"transfer_step": 1, "recipe_hash": config_hash({"crafted": str(transfer_from)}),
                  "data_transfer": False, "transfer_from": transfer_from,
                  "transfer_to": {"dataset_fn": DIGITS, "dataset_hash": key["dataset_hash"]}}
        db.DatasetTransferRecipe().insert1(recipe)
        db.TransferredTrainedModel.transfer_recipe = [db.DatasetTransferRecipe()]
        try:
            with pytest.raises(TransferError, match="stored recipe row .* is malformed"):
                target.plan()
        finally:
            db.TransferredTrainedModel.transfer_recipe = []
            (db.DatasetTransferRecipe() & {"recipe_hash": recipe["recipe_hash"]}).delete_quick()
    assert len(db.Seed()) == 1  # the table is still there

    # a schema name with a quote never reaches SQL
    schema_payload = 'x"; CREATE TABLE pwned (a int); --'
    recipe_file = tmp_path / "r.py"
    recipe_file.write_text("experiments = {}\n")
    assert main(["status", str(recipe_file), "--schema", schema_payload]) == 2
    assert "is not a usable schema name" in capsys.readouterr().err
    backend = db.schema.connection.adapter.backend
    listing = ("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'pwned'" if backend == "mysql" else
               "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE tablename = 'pwned'")
    assert db.schema.connection.query(listing).fetchone()[0] == 0


def test_crafted_artifact_and_checkpoint_paths_are_refused_and_never_deleted(db, tmp_path, caplog):
    from nntransfer.tables import DatabaseCheckpointStore
    from nntransfer.tables.artifacts import ArtifactError

    key = add_basic(db)
    db.TrainedModel.populate(key)
    quote = db.schema.connection.adapter.quote_identifier
    storage = db.TrainedModel.ModelStorage()
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    for crafted in ("../../../../etc/hostname", str(victim), f"{db.schema.database}/other/model_state.pt"):
        db.schema.connection.query(f"UPDATE {storage.full_table_name} SET {quote('model_state')} = %s",
                                   args=(crafted,))
        with pytest.raises(ArtifactError, match="the row was edited or crafted"):
            db.TrainedModel().fetch_state_dict(key)

    # checkpoint rows of a key about to be trained, naming files outside their folder
    other = add_basic(db, seed=4)
    store = DatabaseCheckpointStore(db.TrainedModel(), other)
    store.save(0, {"epoch": 0})
    (row,) = (db.Checkpoint() & store.restriction).to_dicts()
    db.Checkpoint().insert1({**row, "checkpoint_name": "last-000001", "epoch": 1, "checkpoint": str(victim)})
    db.Checkpoint().insert1({**row, "checkpoint_name": "best-000001", "epoch": 1,
                             "checkpoint": f"{store.folder}/../../x/last-000001.pt"})
    assert store.load("last") == {"epoch": 0}  # the crafted newer one is refused, the older one is read
    assert "cannot be read" in caplog.text
    db.TrainedModel.populate(other)  # stores the result and removes the key's checkpoints
    assert len(db.TrainedModel() & other) == 1
    assert len(db.Checkpoint() & store.restriction) == 0  # the rows went...
    assert victim.read_text() == "not yours"  # ...the file they named stayed
    assert "not deleting" in caplog.text


def test_functions_outside_the_allowed_packages_are_refused_at_insert_and_in_the_worker(db, tmp_path, monkeypatch):
    from nntransfer.hashing import config_hash

    marker = tmp_path / "imported"
    (tmp_path / "sidefx_mod.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef load(seed):\n    return {{}}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UntrustedFunctionError, match="'torch.hub.load' is not in an allowed package"):
        db.Dataset().add_entry(dataset_fn="torch.hub.load", dataset_config={})
    with pytest.raises(UntrustedFunctionError, match="NNTRANSFER_ALLOWED_PACKAGES=sidefx_mod"):
        db.Dataset().add_entry(dataset_fn="sidefx_mod.load", dataset_config={})
    assert not marker.exists() and len(db.Dataset()) == 0  # refused before anything was imported
    with pytest.raises(UntrustedFunctionError, match="optimizer 'sidefx_mod.Optimizer'"):
        db.Trainer().add_entry(trainer_fn="nntransfer.trainer.standard.standard_trainer",
                               trainer_config={"optimizer": "sidefx_mod.Optimizer"})

    # a row written past add_entry: the worker refuses it before importing
    key = add_basic(db)
    command = f"touch {tmp_path / 'ran'}"
    crafted = {"trainer_fn": "os.system", "trainer_hash": config_hash({"command": command}),
               "trainer_config": {"command": command}, "trainer_fabrikant": db.Fabrikant.get_current_user()}
    db.Trainer().insert1(crafted)
    result = db.TrainedModel.populate({"trainer_fn": "os.system"}, reserve_jobs=True, suppress_errors=True)
    assert result["success_count"] == 0 and len(result["error_list"]) == 1
    assert "'os.system' is not in an allowed package" in str(result["error_list"][0][1])
    assert not (tmp_path / "ran").exists() and not marker.exists()
    db.TrainedModel.jobs.delete()


def test_deleted_configs_leave_nothing_that_gc_does_not_find(db, capsys):
    from nntransfer import insert
    from nntransfer.cli import main
    from nntransfer.configs import Experiment, TransferExperiment, config_class_for
    from nntransfer.runner import populate_all
    from nntransfer.tables import DatabaseCheckpointStore
    from nntransfer.tables.trained import artifact_store

    Digits = config_class_for(DIGITS, "dataset")
    Mlp = config_class_for(MLP, "model")
    Tiny = config_class_for(TINY, "trainer")
    first, second = Experiment(Digits(batch_size=48), Mlp(hidden_sizes=[8]), Tiny(), seed=7), \
        Experiment(Digits(batch_size=24), Mlp(hidden_sizes=[8]), Tiny(), seed=7)
    chain = TransferExperiment([first, second])
    table = db.TransferredTrainedModel()
    step0, step1 = insert(chain)
    populate_all(table, [step0, step1], plan=False)
    assert len(table & [step0, step1]) == 2
    assert main(["gc", "--grace", "0"]) == 0  # what earlier tests' deleted rows left
    capsys.readouterr()
    DatabaseCheckpointStore(table, step0).save(3, {"epoch": 3})  # a checkpoint row without a foreign key

    # deleting a config removes the step built on it, but DataJoint knows nothing of files and checkpoints
    (db.Dataset() & {"dataset_hash": step0["dataset_hash"]}).delete(prompt=False)
    assert len(table & step0) == 0 and len(table & step1) == 1
    folder = artifact_store().key_folder(table, step0)
    assert main(["gc", "--dry-run", "--grace", "0"]) == 0
    listed = capsys.readouterr().out
    assert f"found: {folder}/model_state-" in listed and "found checkpoint row" in listed
    assert main(["gc", "--grace", "0"]) == 0
    assert "removed 2 orphaned files" in capsys.readouterr().out  # the model state and the checkpoint's file
    assert main(["gc", "--grace", "0"]) == 0
    assert "removed 0 orphaned files" in capsys.readouterr().out and len(db.Checkpoint()) == 0

    # the surviving step still loads (it was built from the previous state, stored in its own row) ...
    assert table.load_model(step1, include_dataloader=False) is not None
    # ... and its lineage says that its history is gone
    assert "deleted" in table.describe_lineage(step1)


def test_a_step_whose_previous_step_was_deleted_is_no_longer_ready(db):
    from nntransfer import insert
    from nntransfer.configs import Experiment, TransferExperiment, config_class_for

    Digits = config_class_for(DIGITS, "dataset")
    Mlp = config_class_for(MLP, "model")
    Tiny = config_class_for(TINY, "trainer")
    chain = TransferExperiment([Experiment(Digits(batch_size=40), Mlp(hidden_sizes=[8]), Tiny(), seed=8),
                                Experiment(Digits(batch_size=20), Mlp(hidden_sizes=[8]), Tiny(), seed=8)])
    table = db.TransferredTrainedModel()
    step0, step1 = insert(chain)
    table.populate([step0], plan=False)
    table.mark_ready()
    assert (table.plan_table() & step1).fetch1("ready") == 1
    (table & step0).delete(prompt=False)
    result = table.populate([step1], plan=False, suppress_errors=True)
    assert (table.plan_table() & step1).fetch1("ready") == 0
    assert result["error_list"] == [] and len(table & step1) == 0
