"""nntransfer worker --devices: one worker process per GPU share, each seeing only its share; status shows them."""

from __future__ import annotations

import time

from test_workers import clean, finish, start_worker

RECIPE = '''
from nntransfer.configs import Experiment, config_class_for

Digits = config_class_for("nntransfer.datasets.digits.digits_dataset_fn", "dataset")
Mlp = config_class_for("nntransfer.models.mlp.mlp_model_fn", "model")
Hold = config_class_for("itest_functions.visible_devices_trainer", "trainer")
experiments = {"gpus": Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[4]), Hold(hold=HOLD), seed=[0, 1, 2, 3])}
'''
GPUS = {"CUDA_VISIBLE_DEVICES": "0,1"}  # what a scheduler gives the job; the workers split it


def _recipe(tmp_path, hold):
    path = tmp_path / "gpus.py"
    path.write_text(RECIPE.replace("HOLD", str(hold)))
    return path


def _visible(db, recipe):
    rows = (db.TransferredTrainedModel & recipe.steps()).to_dicts()
    return sorted(row["output"]["visible"] for row in rows)


def test_one_worker_per_gpu_and_status_shows_which_gpu_runs_which_step(db, tmp_path, capsys):
    from nntransfer import cli, runner

    clean(db)
    path = _recipe(tmp_path, hold=2.0)
    recipe = runner.load_recipe(str(path))
    worker = start_worker(path, "--devices", "0,1", env_extra=GPUS)
    seen, shown, deadline = set(), set(), time.monotonic() + 120
    while {"GPU 0", "GPU 1"} - (seen & shown) and time.monotonic() < deadline and worker.poll() is None:
        lines = runner.running(recipe).splitlines()
        seen |= {line.rsplit(", ", 1)[1] for line in lines}
        cli.main(["status", str(path)])  # exit code 2 until the worker has inserted the recipe's steps
        running = [line for line in capsys.readouterr().out.splitlines() if line.startswith("running:")]
        shown |= {part for line in running for part in line.split("  ") if part.startswith("GPU ")}
        time.sleep(0.2)
    output = finish(worker)
    assert seen == {"GPU 0", "GPU 1"}, output
    assert shown == {"GPU 0", "GPU 1"}, output  # `nntransfer status` shows the GPU of each running step
    assert set(_visible(db, recipe)) == {"0", "1"} and len(_visible(db, recipe)) == 4
    assert len(db.WorkerDevice()) == 0  # each worker removed its record when it ended


def test_one_worker_with_every_gpu(db, tmp_path, monkeypatch):
    from nntransfer import cli, runner

    clean(db)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", GPUS["CUDA_VISIBLE_DEVICES"])  # restored after the test
    path = _recipe(tmp_path, hold=0.1)
    assert cli.main(["worker", str(path), "--devices", "auto", "--jobs", "1", "--poll", "0.2"]) == 0
    assert _visible(db, runner.load_recipe(str(path))) == ["0,1"] * 4


def test_gpus_that_do_not_share_out_are_refused_before_anything_runs(db, tmp_path, monkeypatch, capsys):
    from nntransfer import cli

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    path = _recipe(tmp_path, hold=0.1)
    assert cli.main(["worker", str(path), "--devices", "0,1,2", "--jobs", "2"]) == 2
    assert "cannot be shared equally among --jobs 2" in capsys.readouterr().err
