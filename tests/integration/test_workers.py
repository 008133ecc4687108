"""Worker processes on one database: no key lost or trained twice; a killed worker's job taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

RECIPE = '''
import os
from nntransfer.configs import Experiment, TransferExperiment, config_class_for

Digits = config_class_for("nntransfer.datasets.digits.digits_dataset_fn", "dataset")
Mlp = config_class_for("nntransfer.models.mlp.mlp_model_fn", "model")
Counting = config_class_for("itest_functions.counting_trainer", "trainer")
seeds = list(range(12))
first = Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[8]), Counting(log_file=os.environ["NNT_TEST_LOG"]), seed=seeds)
second = Experiment(Digits(batch_size=32), Mlp(hidden_sizes=[8]), Counting(log_file=os.environ["NNT_TEST_LOG"], steps=3),
                    seed=seeds)
experiments = {"two steps": TransferExperiment([first, second])}
'''

SLOW_RECIPE = '''
from nntransfer.configs import Experiment, config_class_for

Digits = config_class_for("nntransfer.datasets.digits.digits_dataset_fn", "dataset")
Mlp = config_class_for("nntransfer.models.mlp.mlp_model_fn", "model")
Slow = config_class_for("itest_functions.sleepy_standard_trainer", "trainer")
experiments = {"slow": Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[16]),
                                  Slow(epochs=6, lr=0.01, epoch_sleep=0.6,
                                       modules={"checkpointing": {"save_best": False}}), seed=5)}
'''


def start_worker(recipe: Path, *extra: str, env_extra: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "nntransfer.cli", "worker", str(recipe), "--poll", "0.2", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 120) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output


def clean(db):
    db.Checkpoint().delete_quick()
    db.TransferredTrainedModel.jobs.delete()
    db.TransferredTrainedModel.transfer_recipe = []


def test_four_workers_train_each_of_24_keys_exactly_once(db, tmp_path):
    from nntransfer import runner

    clean(db)
    log_file = tmp_path / "trained.jsonl"
    recipe_file = tmp_path / "two_steps.py"
    recipe_file.write_text(RECIPE)
    os.environ["NNT_TEST_LOG"] = str(log_file)
    recipe = runner.load_recipe(str(recipe_file))
    assert runner.insert(recipe) == 24
    before = runner.status(recipe)["total"]
    assert (before["pending"], before["blocked"]) == (12, 12)

    workers = [start_worker(recipe_file) for _ in range(4)]
    outputs = [finish(worker) for worker in workers]

    trained = [json.loads(line) for line in log_file.read_text().splitlines()]
    keys = {tuple(sorted(key.items())) for key in trained}
    assert len(trained) == 24 and len(keys) == 24, outputs
    assert len(db.TransferredTrainedModel & recipe.steps()) == 24
    assert len(db.TransferredTrainedModel.jobs.reserved) == 0
    assert runner.status(recipe)["total"] == {"done": 24, "running": 0, "pending": 0, "blocked": 0, "error": 0,
                                              "pruned": 0}
    # every worker found work: the queue was shared, not drained by the first one
    assert sum(int(out.split("trained ")[1].split()[0]) for out in outputs) == 24


def test_killed_worker_is_taken_over_and_resumes_from_its_checkpoint(db, tmp_path):
    from nntransfer import runner
    from nntransfer.builder import get_data, get_model
    from nntransfer.trainer.checkpoints import MemoryCheckpointStore
    from nntransfer.trainer.standard import standard_trainer

    clean(db)
    recipe_file = tmp_path / "slow.py"
    recipe_file.write_text(SLOW_RECIPE)
    recipe = runner.load_recipe(str(recipe_file))
    runner.insert(recipe)

    first = start_worker(recipe_file, "--orphan-timeout", "600")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        epochs = db.Checkpoint().to_arrays("epoch") if len(db.Checkpoint()) else []
        if len(epochs) and max(epochs) >= 2:
            break
        assert first.poll() is None, first.communicate()[0]
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert len(db.TransferredTrainedModel.jobs.reserved) == 1
    assert len(db.TransferredTrainedModel()) == 0

    second = start_worker(recipe_file, "--orphan-timeout", "1")
    finish(second)
    row = db.TransferredTrainedModel().fetch1()
    assert row["output"]["resumed_from"] >= 2 and row["output"]["epochs"] == 6
    assert len(db.Checkpoint()) == 0  # removed once the training was stored
    assert len(db.TransferredTrainedModel.jobs.reserved) == 0

    # the taken-over run ends where an uninterrupted run with the same seed ends
    # (computed with one thread, as the workers run, so float sums add up alike)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    dataloaders = get_data("nntransfer.datasets.digits.digits_dataset_fn", {"batch_size": 64}, 5)
    model = get_model("nntransfer.models.mlp.mlp_model_fn", {"hidden_sizes": [16]}, dataloaders, 5)
    try:
        _, _, expected = standard_trainer(model, dataloaders, 5, epochs=6, lr=0.01)
    finally:
        torch.set_num_threads(threads)
    stored = db.TransferredTrainedModel().fetch_state_dict()
    for name, tensor in expected.items():
        assert torch.equal(stored[name], tensor), name


class _Stop(Exception):
    pass


class _Callback:
    def __init__(self, store, stop_at=None):
        self.checkpoint_store = store
        self.stop_at = stop_at

    def __call__(self, epoch=None, **info):
        if epoch == self.stop_at:
            raise _Stop()


def test_resume_from_database_checkpoint_matches_an_uninterrupted_run(db):
    from nntransfer.builder import get_data, get_model
    from nntransfer.tables import DatabaseCheckpointStore
    from nntransfer.trainer.checkpoints import MemoryCheckpointStore
    from nntransfer.trainer.standard import standard_trainer

    clean(db)
    key = {"dataset_fn": "d", "dataset_hash": "0" * 32, "model_fn": "m", "model_hash": "0" * 32,
           "trainer_fn": "t", "trainer_hash": "0" * 32, "seed": 5, "transfer_step": 0, "data_transfer": 0,
           "collapsed_history": ""}
    store = DatabaseCheckpointStore(db.TransferredTrainedModel(), key)

    def train(callback):
        data = get_data("nntransfer.datasets.digits.digits_dataset_fn", {"batch_size": 64}, 5)
        model = get_model("nntransfer.models.mlp.mlp_model_fn", {"hidden_sizes": [16]}, data, 5)
        # checkpoint every epoch (a store brought by cb alone is written at most every 30 s)
        return standard_trainer(model, data, 5, cb=callback, epochs=4, lr=0.01, modules={"checkpointing": {}})[2]

    expected = train(_Callback(MemoryCheckpointStore()))
    with pytest.raises(_Stop):
        train(_Callback(store, stop_at=2))
    assert [entry["epoch"] for entry in store.list()] == [2, 2]
    resumed = train(_Callback(store))
    store.clear()
    assert len(db.Checkpoint()) == 0
    for name in expected:
        assert torch.equal(resumed[name], expected[name]), name


def test_jobs_share_one_import_of_the_recipe_and_torch(db, tmp_path):
    """`--jobs N` forks its workers from the parent: the recipe module runs once, not once per worker."""
    from nntransfer import runner

    clean(db)
    imports = tmp_path / "imports.txt"
    log_file = tmp_path / "trained.jsonl"
    recipe_file = tmp_path / "forked.py"
    recipe_file.write_text(
        "import os\n"
        f"open({str(imports)!r}, 'a').write(f'{{os.getpid()}}\\n')\n" + RECIPE.replace("seeds = list(range(12))", "seeds = [1, 2, 3]")
    )
    worker = start_worker(recipe_file, "--jobs", "2", env_extra={"NNT_TEST_LOG": str(log_file)})
    output = finish(worker)
    assert "trained 6 steps, 0 errors" in output
    assert set(imports.read_text().split()) == {str(worker.pid)}  # the parent only
    trained = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert len(trained) == 6 and len({tuple(sorted(key.items())) for key in trained}) == 6
    assert len(db.TransferredTrainedModel.jobs.reserved) == 0
    assert runner.status("forked")["total"]["done"] == 6
