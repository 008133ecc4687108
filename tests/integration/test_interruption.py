"""Ctrl-C and SIGTERM with real processes and real signals: a worker, `--jobs 2`, a Jupyter kernel.

The first signal stops the training at the next batch boundary after a
checkpoint and gives the job back (pending, not failed); the next worker
resumes from that checkpoint and ends with the weights of an uninterrupted
run; a second signal stops at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

RECIPE = '''
from nntransfer.configs import Experiment, config_class_for

Digits = config_class_for("nntransfer.datasets.digits.digits_dataset_fn", "dataset")
Mlp = config_class_for("nntransfer.models.mlp.mlp_model_fn", "model")
Slow = config_class_for("itest_operations.slow_trainer", "trainer")
experiments = {{"slow": Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[16]),
                                   Slow(epochs=3, lr=0.01, batch_sleep={sleep}, long_epoch={long_epoch},
                                        long_seconds={long_seconds}, marker={marker!r}), seed={seeds})}}
'''


def write_recipe(tmp_path: Path, name="slow", sleep=0.05, long_epoch=None, long_seconds=0.0, marker="", seeds=5):
    path = tmp_path / f"{name}.py"
    path.write_text(RECIPE.format(sleep=sleep, long_epoch=long_epoch, long_seconds=long_seconds, marker=marker,
                                  seeds=seeds))
    return path


def start(*arguments: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "nntransfer.cli", *arguments], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def clean(db):
    db.Checkpoint().delete_quick()
    db.TransferredTrainedModel.jobs.delete_quick()
    from nntransfer.tables.live import LiveProgress

    LiveProgress().delete_quick()


def wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            raise AssertionError(f"the process ended before {what}:\n{process.communicate()[0]}")
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"no {what} within {timeout} s:\n{process.communicate()[0]}")


def trained_an_epoch(db, recipe, count=1):
    from nntransfer import runner
    from nntransfer.tables.live import latest_progress

    def check():
        running = latest_progress(db.TransferredTrainedModel(), runner.restriction(recipe))
        return len([entry for entry in running if (entry["epoch"] or 0) >= 1]) >= count

    return check


def job_states(db):
    return sorted(db.TransferredTrainedModel.jobs.to_arrays("status"))


def reference_weights(seed=5):
    """The weights of the recipe's step trained without interruption, here, with one thread as the workers."""
    from itest_operations import slow_trainer
    from nntransfer.builder import get_data, get_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = get_data("nntransfer.datasets.digits.digits_dataset_fn", {"batch_size": 64}, seed)
        model = get_model("nntransfer.models.mlp.mlp_model_fn", {"hidden_sizes": [16]}, data, seed)
        return slow_trainer(model, data, seed, epochs=3, lr=0.01, batch_sleep=0.0)[2]
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signalled_worker_gives_its_job_back_and_the_next_one_resumes_to_the_same_weights(db, tmp_path, signum):
    from nntransfer import runner
    from nntransfer.tables import DatabaseCheckpointStore

    clean(db)
    recipe_file = write_recipe(tmp_path)
    recipe = runner.load_recipe(str(recipe_file))
    runner.insert(recipe)
    worker = start("worker", str(recipe_file), "--poll", "0.2")
    wait_for(trained_an_epoch(db, recipe), worker, "a first epoch in the live-progress table")
    if signum == signal.SIGTERM:  # what status and a notebook read while it trains
        from nntransfer.tables.live import latest_progress, progress_history

        (running,) = latest_progress(db.TransferredTrainedModel(), runner.restriction(recipe))
        assert running["pid"] == worker.pid and running["epochs"] == 3 and running["heartbeat_age"] is not None
        assert "validation.accuracy" in running["metrics"] and running["updated_age"] is not None
        history = progress_history(db.TransferredTrainedModel(), running)
        assert history["epoch"][0] == 1 and len(history["validation.accuracy"]) == len(history["epoch"])
    worker.send_signal(signum)
    output, _ = worker.communicate(timeout=120)
    assert worker.returncode == 128 + signum, output
    assert "Traceback" not in output and "stopped:" in output, output
    assert f"{signal.Signals(signum).name} received" in output

    assert len(db.TransferredTrainedModel()) == 0
    assert job_states(db) == ["pending"]  # given back: not an error, not left reserved
    key = (db.TransferredTrainedModel().plan_table()).fetch1("KEY")
    saved = DatabaseCheckpointStore(db.TransferredTrainedModel(), key).load("last")
    assert saved is not None and ("partial" in saved or saved["epoch"] >= 1)

    if signum == signal.SIGINT:
        return  # resuming is the same after either signal; the SIGTERM case checks it
    second = start("worker", str(recipe_file), "--poll", "0.2")
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 0, output
    assert "trained 1 steps, 0 errors" in output
    stored = db.TransferredTrainedModel().fetch_state_dict()
    for name, tensor in reference_weights().items():
        assert torch.equal(stored[name], tensor), name
    assert len(db.Checkpoint()) == 0 and job_states(db) == []


def test_a_second_signal_stops_at_once_and_still_gives_the_job_back(db, tmp_path):
    from nntransfer import runner

    clean(db)
    marker = tmp_path / "long-batch"
    recipe_file = write_recipe(tmp_path, name="stuck", long_epoch=1, long_seconds=600, marker=str(marker))
    runner.insert(runner.load_recipe(str(recipe_file)))
    worker = start("worker", str(recipe_file), "--poll", "0.2")
    wait_for(marker.exists, worker, "the long batch")
    worker.send_signal(signal.SIGINT)  # asks for a stop at the next batch boundary: 600 s away
    time.sleep(1.5)  # past the window in which a repeat counts as the same request
    worker.send_signal(signal.SIGINT)
    output, _ = worker.communicate(timeout=120)
    assert worker.returncode == 130, output
    assert "second time" in output and "Traceback" not in output, output
    assert job_states(db) == ["pending"]
    assert len(db.Checkpoint()) == 0  # stopped inside the batch: no boundary was reached to write one


def test_jobs_2_passes_the_signal_to_every_child_and_leaves_no_reservation(db, tmp_path):
    from nntransfer import runner

    clean(db)
    recipe_file = write_recipe(tmp_path, name="two", seeds=[5, 6])
    recipe = runner.load_recipe(str(recipe_file))
    runner.insert(recipe)
    parent = start("worker", str(recipe_file), "--jobs", "2", "--poll", "0.2")
    wait_for(trained_an_epoch(db, recipe, count=2), parent, "both children training")
    os.kill(parent.pid, signal.SIGINT)  # to the parent only, as `kill -INT` or a scheduler would
    output, _ = parent.communicate(timeout=180)
    assert parent.returncode == 130, output
    assert "Traceback" not in output and "passed on to the 2 worker processes" in output, output
    assert job_states(db) == ["pending", "pending"]
    assert len({row["key_hash"] for row in db.Checkpoint().to_dicts()}) == 2  # each wrote its checkpoint


KERNEL_SETUP = """
import nntransfer, torch
from nntransfer import runner, tables
torch.set_num_threads(1)
nntransfer.activate()
recipe = runner.load_recipe({recipe!r})
steps = runner.restriction(recipe)
"""


def test_a_kernel_interrupt_during_populate_gives_the_job_back_and_populate_works_again(db, tmp_path):
    from jupyter_client.manager import start_new_kernel

    from nntransfer import runner

    clean(db)
    recipe_file = write_recipe(tmp_path, name="kernel")
    recipe = runner.load_recipe(str(recipe_file))
    runner.insert(recipe)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    try:
        client.execute_interactive(KERNEL_SETUP.format(recipe=str(recipe_file)), timeout=300)
        message_id = client.execute("tables.TransferredTrainedModel.populate(steps, reserve_jobs=True)")

        class Kernel:  # what wait_for needs of a process
            @staticmethod
            def poll():
                return None if manager.is_alive() else 1

        wait_for(trained_an_epoch(db, recipe), Kernel, "a first epoch")
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=120)
        while reply["parent_header"].get("msg_id") != message_id:
            reply = client.get_shell_msg(timeout=120)
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "Interrupted", reply["content"]
        assert job_states(db) == ["pending"] and len(db.TransferredTrainedModel()) == 0
        assert len(db.Checkpoint()) >= 1

        again = client.execute_interactive("print(tables.TransferredTrainedModel.populate(steps, reserve_jobs=True))",
                                           timeout=300)
        assert again["content"]["status"] == "ok"
        assert len(db.TransferredTrainedModel()) == 1 and job_states(db) == []
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
