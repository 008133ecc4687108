"""Searches on a real database: trials train through the tables, once per config, with real worker processes."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time

import pytest

DIGITS = "nntransfer.datasets.digits.digits_dataset_fn"
MLP = "nntransfer.models.mlp.mlp_model_fn"
STANDARD = "nntransfer.trainer.standard.standard_trainer"

RECIPE = '''
import os
from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig, TransferExperiment
from nntransfer.search import Categorical, Search

data = DatasetConfig.for_fn("{digits}", batch_size=64)
model = ModelConfig.for_fn("{mlp}", hidden_sizes=[8])
log = os.environ["NNT_SEARCH_LOG"]
first = TrainerConfig.for_fn("itest_functions.counting_trainer", log_file=log, steps=2)
second = TrainerConfig.for_fn("itest_functions.counting_trainer", log_file=log, steps=3)
search = Search(TransferExperiment([Experiment(data, model, first, seed=4), Experiment(data, model, second, seed=4)]),
                {{"trainer.steps": Categorical([3, 4, 5])}}, name=os.environ["NNT_SEARCH_NAME"],
                trials=8, sampler="random")
'''.format(digits=DIGITS, mlp=MLP)

SLOW_RECIPE = '''
import os
from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig
from nntransfer.search import Categorical, Search

trainer = TrainerConfig.for_fn("itest_functions.sleepy_standard_trainer", epochs=6, lr=0.01, epoch_sleep=0.6,
                               modules={{"checkpointing": {{"save_best": False}}}})
search = Search(Experiment(DatasetConfig.for_fn("{digits}", batch_size=64), ModelConfig.for_fn("{mlp}", hidden_sizes=[16]),
                           trainer, seed=5),
                {{"trainer.lr": Categorical([0.01])}}, name=os.environ["NNT_SEARCH_NAME"], trials=1,
                objective="validation.accuracy")
'''.format(digits=DIGITS, mlp=MLP)


def configs(**trainer):
    from nntransfer.configs import DatasetConfig, ModelConfig, TrainerConfig

    return (DatasetConfig.for_fn(DIGITS, batch_size=64), ModelConfig.for_fn(MLP, hidden_sizes=[8]),
            TrainerConfig.for_fn(trainer.pop("fn", STANDARD), **trainer))


def trained(log_file) -> list:
    if not log_file.exists():
        return []
    return [json.loads(line) for line in log_file.read_text().splitlines()]


def name() -> str:
    return f"test search {secrets.token_hex(4)}"


def test_each_config_is_trained_once_and_the_shared_step_once(db, tmp_path, single_thread):
    from nntransfer import search as nts
    from nntransfer.configs import Experiment, TransferExperiment

    log_file = tmp_path / "trained.jsonl"
    data, model, first = configs(fn="itest_functions.counting_trainer", log_file=str(log_file), steps=2)
    second = configs(fn="itest_functions.counting_trainer", log_file=str(log_file), steps=3)[2]
    chain = TransferExperiment([Experiment(data, model, first, seed=4), Experiment(data, model, second, seed=4)])
    search = nts.Search(chain, {"trainer.steps": nts.Categorical([3, 4])}, name=name(), trials=6, sampler="random")

    result = nts.optimize(search)

    frame = nts.results(search)
    distinct = frame["trainer.steps"].nunique()
    assert result == {"trials": 6, "complete": 6, "pruned": 0, "failed": 0, "duplicates": 6 - distinct}
    assert list(frame["state"]) == ["complete"] * 6 and list(frame["trial"]) == list(range(6))
    assert frame.groupby("trainer.steps")["value"].nunique().eq(1).all()   # a duplicate is told the stored value
    assert frame["duplicate"].sum() == 6 - distinct
    steps = [entry["transfer_step"] for entry in trained(log_file)]
    assert sorted(steps) == [0] + [1] * distinct       # step 0 once for all trials, each step-1 config once
    assert len(db.TransferredTrainedModel()) == 1 + distinct
    status = nts.status(search)
    assert status["counts"]["complete"] == 6 and status["best"]["value"] == frame["value"].max()
    assert set(status["best"]["params"]) == {"trainer.steps"}

    # the budget is the study's: a second call finds it used and trains nothing
    assert nts.optimize(search)["trials"] == 0
    assert len(trained(log_file)) == 1 + distinct


def test_a_pruned_trial_stops_cleanly_and_is_recorded_as_pruned(db, single_thread):
    import optuna

    from nntransfer import search as nts
    from nntransfer.configs import Experiment
    from nntransfer.tables.pruning import pruned_jobs

    data, model, trainer = configs(epochs=4, modules={"checkpointing": {"every": 1}})
    search = nts.Search(Experiment(data, model, trainer, seed=4), {"trainer.lr": nts.Categorical([0.01])},
                        name=name(), objective="validation.accuracy", trials=2,
                        pruner=optuna.pruners.ThresholdPruner(lower=2.0))   # accuracy never reaches 2: prune at once

    assert nts.optimize(search) == {"trials": 2, "complete": 0, "pruned": 2, "failed": 0, "duplicates": 1}

    table = db.TransferredTrainedModel()
    key = search.experiment_for({"trainer.lr": 0.01}).steps()[-1]
    assert len(table & key) == 0
    job = (table.jobs & key).fetch1()
    assert job["status"] == "ignore" and job["error_message"].startswith("pruned: epoch 1: validation.accuracy")
    assert len(pruned_jobs(table, [key])) == 1 and len(table.jobs.errors.restrict([key], semantic_check=False)) == 0
    assert len(db.Checkpoint()) == 0          # written at epoch 1, dropped with the pruned training
    assert table.retry([key]) == 0            # not an error, so nothing to retry
    assert table.step_states()[0]["pruned"] == 1 and table.step_states()[0]["error"] == 0
    study = nts.load_study(search)
    first, second = study.get_trials()
    assert first.intermediate_values.keys() == {1} and first.state.name == "PRUNED"
    assert second.state.name == "PRUNED" and second.user_attrs["duplicate"]
    assert "pruned" in nts.results(search)["state"].tolist()


def test_an_objective_the_trainer_does_not_record_stops_the_search(db, tmp_path, single_thread):
    from nntransfer import search as nts
    from nntransfer.configs import Experiment
    from nntransfer.errors import ConfigError

    data, model, trainer = configs(fn="itest_functions.tiny_trainer", steps=2)
    search = nts.Search(Experiment(data, model, trainer, seed=4), {"trainer.lr": nts.Categorical([0.1])},
                        name=name(), objective="validation.f1", direction="maximize", trials=3)
    with pytest.raises(ConfigError, match="'validation.f1' is not measured by itest_functions.tiny_trainer: its output "
                                          "records steps \\(in 'final'"):
        nts.optimize(search)
    assert nts.results(search)["state"].tolist() == ["failed"]


def test_a_study_name_taken_by_another_search_is_refused_before_anything_runs(db, tmp_path):
    from nntransfer import search as nts
    from nntransfer.configs import Experiment
    from nntransfer.errors import ConfigError

    data, model, trainer = configs(fn="itest_functions.tiny_trainer", steps=2)
    study = name()
    nts.optimize(nts.Search(Experiment(data, model, trainer, seed=4), {"trainer.lr": nts.Categorical([0.1])},
                            name=study, trials=1))
    rows = len(db.TransferredTrainedModel())
    other = nts.Search(Experiment(data, model, trainer, seed=4), {"trainer.steps": nts.Integer(1, 3)},
                       name=study, trials=1)
    with pytest.raises(ConfigError, match="was made by a different search"):
        nts.optimize(other)
    assert len(db.TransferredTrainedModel()) == rows and len(nts.load_study(other).trials) == 1


def test_four_worker_processes_share_one_study(db, tmp_path, capsys):
    from nntransfer import runner
    from nntransfer import search as nts
    from nntransfer.cli import main

    log_file = tmp_path / "trained.jsonl"
    recipe_file = tmp_path / "search_recipe.py"
    recipe_file.write_text(RECIPE)
    os.environ.update({"NNT_SEARCH_LOG": str(log_file), "NNT_SEARCH_NAME": name()})
    search = runner.import_recipe(str(recipe_file)).search

    workers = [subprocess.Popen([sys.executable, "-m", "nntransfer.cli", "worker", str(recipe_file), "--poll", "0.2"],
                                env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [worker.communicate(timeout=240)[0] for worker in workers]
    failed = [output for worker, output in zip(workers, outputs) if worker.returncode]
    assert not failed, failed[0][-4000:]

    frame = nts.results(search)
    distinct = frame["trainer.steps"].nunique()
    assert list(frame["state"]) == ["complete"] * 8, frame     # each trial completed once; none lost or left running
    assert frame["duplicate"].sum() == 8 - distinct               # the first planner of a config trained it
    steps = sorted(entry["transfer_step"] for entry in trained(log_file))
    assert steps == [0] + [1] * distinct, outputs
    assert len(db.TransferredTrainedModel.jobs.reserved) == 0

    capsys.readouterr()
    assert main(["status", str(recipe_file)]) == 0
    assert "best: trial" in capsys.readouterr().out
    assert main(["plot", str(recipe_file), "--out", str(tmp_path / "search.png")]) == 0
    assert "trainer.steps" in capsys.readouterr().out
    assert (tmp_path / "search-history.png").stat().st_size > 0 and (tmp_path / "search-importance.png").exists()
    assert main(["search", str(recipe_file), "--trials", "1"]) == 0
    assert "ran 1 trials: 1 complete" in capsys.readouterr().out
    assert main(["search", str(tmp_path / "missing.py")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_a_killed_workers_trial_is_retried_and_its_training_resumed(db, tmp_path, backend_name):
    from nntransfer import runner
    from nntransfer import search as nts

    if backend_name != "embedded":
        pytest.skip("the takeover path is the same on every backend; the four-worker test covers the servers")
    recipe_file = tmp_path / "slow_search.py"
    recipe_file.write_text(SLOW_RECIPE)
    os.environ["NNT_SEARCH_NAME"] = name()
    search = runner.import_recipe(str(recipe_file)).search
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "nntransfer.cli", "worker", str(recipe_file), "--poll", "0.2",
               "--orphan-timeout", "2"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        epochs = db.Checkpoint().to_arrays("epoch") if len(db.Checkpoint()) else []
        if len(epochs) and max(epochs) >= 2:
            break
        assert first.poll() is None, first.communicate()[0]
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert nts.status(search)["counts"]["running"] == 1

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    frame = nts.results(search)
    assert frame["state"].tolist() == ["retried", "complete"]     # nothing left running, the budget of 1 kept
    row = db.TransferredTrainedModel().fetch1()
    assert row["output"]["resumed_from"] >= 2 and row["output"]["epochs"] == 6
    assert len(db.TransferredTrainedModel.jobs.reserved) == 0


def test_nnfabrik_random_and_bayesian_run_on_the_engine(db, single_thread):
    from nntransfer.nnfabrik.utility.hypersearch import Bayesian, Random

    db.Fabrikant().insert1({"fabrikant_name": "Your Name", "dj_username": "you"}, skip_duplicates=True)
    db.Seed().insert1({"seed": 4}, skip_duplicates=True)
    common = dict(dataset_fn=DIGITS, dataset_config={"batch_size": 64}, dataset_config_auto={}, model_fn=MLP,
                  model_config={"hidden_sizes": [8]}, model_config_auto={},
                  trainer_fn="itest_functions.tiny_trainer", trainer_config={"steps": 2},
                  trainer_config_auto={"lr": {"type": "range", "bounds": [0.01, 0.5], "log_scale": True}},
                  architect="Your Name", trained_model_table="nntransfer.tables.TrainedModel", total_trials=3)

    Random(**common, seed_config_auto={"seed": {"type": "fixed", "value": 4}}).run()
    rows = db.TrainedModel().to_dicts()
    assert len(rows) == 3 and {row["seed"] for row in rows} == {4}
    assert {row["trainer_fabrikant"] for row in db.Trainer().to_dicts()} == {"Your Name"}   # the architect

    best, values, study, sampler = Bayesian(**common).run()
    assert set(best) == {"dataset", "model", "trainer", "others"} and 0.01 <= best["trainer"]["lr"] <= 0.5
    assert values[0]["val_corr"] == study.best_value and type(sampler).__name__ == "GPSampler"
    assert len(db.TrainedModel()) == 6
    score = Bayesian(**common).train_evaluate({"trainer.lr": 0.1})
    from nntransfer.configs import TrainerConfig

    key = TrainerConfig.for_fn("itest_functions.tiny_trainer", steps=2, lr=0.1).key
    assert score == (db.TrainedModel() & key).fetch1("score")


STOPPED_RECIPE = '''
import os
from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig
from nntransfer.search import Categorical, Search

trainer = TrainerConfig.for_fn("itest_functions.sleepy_standard_trainer", epochs=5, lr=0.01, epoch_sleep=0.5,
                               modules={{"checkpointing": {{"save_best": False}}}})
search = Search(Experiment(DatasetConfig.for_fn("{digits}", batch_size=64), ModelConfig.for_fn("{mlp}", hidden_sizes=[16]),
                           trainer, seed=5),
                {{"trainer.lr": Categorical([0.01, 0.02])}}, name=os.environ["NNT_SEARCH_NAME"], trials=2, sampler="grid",
                objective="validation.accuracy")
'''.format(digits=DIGITS, mlp=MLP)


def checkpoint_epochs(db) -> dict:
    """The latest checkpoint's epoch of each training that wrote one."""
    epochs = {}
    for row in db.Checkpoint().to_dicts():
        epochs[row["key_hash"]] = max(epochs.get(row["key_hash"], 0), int(row["epoch"]))
    return epochs


def wait_until(condition, process, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the process ended before {what}:\n{process.communicate()[0]}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"no {what} within {timeout} s:\n{process.communicate()[0]}")
        time.sleep(0.1)


@pytest.mark.slow
def test_ctrl_c_and_sigterm_give_the_jobs_back_and_queue_the_trials_again(db, tmp_path, single_thread):
    from nntransfer import runner
    from nntransfer import search as nts

    db.TransferredTrainedModel.jobs.delete_quick()
    recipe_file = tmp_path / "stopped_search.py"
    recipe_file.write_text(STOPPED_RECIPE)
    os.environ["NNT_SEARCH_NAME"] = name()
    search = runner.import_recipe(str(recipe_file)).search
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def start(*arguments):
        return subprocess.Popen([sys.executable, "-m", "nntransfer.cli", *arguments, str(recipe_file), "--poll", "0.2"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def states():
        return sorted(nts.results(search)["state"])

    # Ctrl-C to `search --jobs 2`, as `kill -INT` sends it to the parent alone: passed on to both processes
    parent = start("search", "--jobs", "2")
    wait_until(lambda: len(checkpoint_epochs(db)) == 2, parent, "a checkpoint of both trials")
    parent.send_signal(signal.SIGINT)
    output = parent.communicate(timeout=120)[0]
    assert parent.returncode == 130, output
    assert "Traceback" not in output and "passed on to the 2 search processes" in output, output
    assert "queued again" in output, output
    assert sorted(db.TransferredTrainedModel.jobs.to_arrays("status")) == ["pending", "pending"]   # not failed
    assert states() == ["retried", "retried", "waiting", "waiting"]   # nothing left running, the budget of 2 kept
    assert nts.status(search)["counts"]["running"] == 0

    # SIGTERM (a scheduler's time limit) to a worker: its trial is queued once more, its training resumed meanwhile
    stopped_at = checkpoint_epochs(db)
    worker = start("worker")
    wait_until(lambda: any(epoch > stopped_at[key] for key, epoch in checkpoint_epochs(db).items()), worker,
               "a resumed training's next checkpoint")
    worker.send_signal(signal.SIGTERM)
    output = worker.communicate(timeout=120)[0]
    assert worker.returncode == 143, output
    assert "Traceback" not in output and "SIGTERM received" in output, output
    assert states() == ["retried", "retried", "retried", "waiting", "waiting"]

    # a notebook finishes the budget: both trainings resume from their checkpoints
    assert nts.optimize(search, poll=0.2) == {"trials": 2, "complete": 2, "pruned": 0, "failed": 0, "duplicates": 0}
    assert states() == ["complete", "complete", "retried", "retried", "retried"]
    outputs = [row["output"] for row in db.TransferredTrainedModel().to_dicts()]
    assert all(output["resumed_from"] >= 1 and output["epochs"] == 5 for output in outputs), outputs
    assert len(db.TransferredTrainedModel.jobs) == 0 and len(db.Checkpoint()) == 0


TIMED_RECIPE = '''
import os
from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig
from nntransfer.search import Search, Uniform

search = Search(Experiment(DatasetConfig.for_fn("{digits}", batch_size=64), ModelConfig.for_fn("{mlp}", hidden_sizes=[8]),
                           TrainerConfig.for_fn("itest_functions.visible_devices_trainer"), seed=5),
                {{"trainer.hold": Uniform(0.5, 0.7)}}, name=os.environ["NNT_SEARCH_NAME"], direction="maximize",
                trials=50, timeout=2.5, sampler="random")
'''.format(digits=DIGITS, mlp=MLP)


def test_a_time_limit_stops_starting_trials(db, tmp_path, backend_name):
    from nntransfer import runner
    from nntransfer import search as nts

    recipe_file = tmp_path / "timed_search.py"
    recipe_file.write_text(TIMED_RECIPE)
    os.environ["NNT_SEARCH_NAME"] = name()
    search = runner.import_recipe(str(recipe_file)).search
    worker = subprocess.run([sys.executable, "-m", "nntransfer.cli", "worker", str(recipe_file)],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=120)
    assert worker.returncode == 0, worker.stdout + worker.stderr

    trials = nts.load_study(search).get_trials()
    first = trials[0].datetime_start
    assert 2 <= len(trials) <= 6 and {trial.state.name for trial in trials} == {"COMPLETE"}   # 50 without the limit
    # no trial started after the limit; the last one, started before it, finished past it (on MySQL/MariaDB
    # Optuna's storage keeps whole seconds)
    precision = 1.0 if backend_name == "mysql" else 0.0
    assert max((trial.datetime_start - first).total_seconds() for trial in trials) <= 2.5 + precision
    assert (trials[-1].datetime_complete - first).total_seconds() >= 2.0 - precision
