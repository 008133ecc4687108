"""`nntransfer run / status / retry` on a recipe file, and the results DataFrame."""

from __future__ import annotations

RECIPE = '''
from nntransfer.configs import Experiment, TransferExperiment, config_class_for

Digits = config_class_for("nntransfer.datasets.digits.digits_dataset_fn", "dataset")
Mlp = config_class_for("nntransfer.models.mlp.mlp_model_fn", "model")
Tiny = config_class_for("itest_functions.tiny_trainer", "trainer")
Data = config_class_for("itest_functions.data_trainer", "trainer")
Failing = config_class_for("itest_functions.failing_trainer", "trainer")
seeds = [1, 2]
teacher = Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[8]), Tiny(steps=2), seed=seeds)
logits = Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[8]), Data(), seed=seeds)
student = Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[4]), Tiny(steps=3), seed=seeds)
broken = Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[8]), Failing(message="{message}"), seed=seeds)
after_broken = Experiment(Digits(batch_size=64), Mlp(hidden_sizes=[8]), Tiny(steps=1), seed=seeds)
experiments = {{
    "distillation": TransferExperiment([teacher, logits, student], update=[None, {{"data_transfer": True}}, None]),
    "broken": TransferExperiment([broken, after_broken]),
}}
'''


def test_run_status_retry_and_results(db, tmp_path, capsys):
    from nntransfer import runner
    from nntransfer.analysis.results import lineage_frame, results
    from nntransfer.cli import main

    db.TransferredTrainedModel.jobs.delete()
    recipe_file = tmp_path / "chain.py"
    recipe_file.write_text(RECIPE.format(message="boom"))
    assert main(["run", str(recipe_file)]) == 1  # the broken chain fails
    out = capsys.readouterr()
    failures = [line for line in out.err.splitlines() if "failed:" in line]
    assert len(failures) == 2 and all("chain 'broken' transfer step 0, seed" in line
                                      and line.endswith("RuntimeError: boom") for line in failures), out.err
    assert "trained 6 steps" in out.out
    recipe = runner.load_recipe(str(recipe_file))
    counts = runner.status(recipe)
    # run records failures in the job table as a worker does
    assert counts["steps"][0] == {"done": 2, "running": 0, "pending": 0, "blocked": 0, "error": 2, "pruned": 0}
    assert counts["steps"][1] == {"done": 2, "running": 0, "pending": 0, "blocked": 2, "error": 0, "pruned": 0}
    assert counts["steps"][2]["done"] == 2

    # a worker leaves recorded failures alone; `errors` shows them, retry queues them again
    assert main(["worker", str(recipe_file), "--poll", "0.1"]) == 0
    assert "trained 0 steps, 0 errors" in capsys.readouterr().out
    assert main(["status", str(recipe_file)]) == 0
    assert "error" in capsys.readouterr().out
    assert main(["errors", str(recipe_file)]) == 0
    listed = capsys.readouterr().out
    assert listed.count("RuntimeError: boom") >= 2 and "nntransfer retry" in listed
    assert main(["retry", str(recipe_file)]) == 0
    assert "queued 2 failed steps" in capsys.readouterr().out
    assert runner.status(recipe)["total"]["error"] == 0
    assert main(["worker", str(recipe_file), "--poll", "0.1"]) == 1  # failed steps show in the exit code
    assert "trained 0 steps, 2 errors" in capsys.readouterr().out

    frame = results(db.TransferredTrainedModel(), recipe=recipe)
    assert len(frame) == 6
    assert list(frame.columns[:6]) == ["chain", "step", "seed", "score", "comment", "received"]
    assert list(frame.columns[-2:]) == ["data_transfer", "collapsed_history"]  # keys and hashes last
    assert {"model.hidden_sizes", "trainer.steps"} <= set(frame.columns)  # they differ between rows
    assert "dataset.batch_size" not in frame and frame.attrs["constant"]["dataset.batch_size"] == 64
    assert "dataset.batch_size" in results(db.TransferredTrainedModel(), all_fields=True)
    assert set(frame.chain) == {"distillation"}
    assert list(frame[frame.step == 2].received) == ["data"] * 2
    assert len(results(db.TransferredTrainedModel & {"seed": 1})) == 3  # any restriction of the table
    student_key = db.TransferredTrainedModel & {"transfer_step": 2, "seed": 1}
    chain = lineage_frame(db.TransferredTrainedModel(), student_key.fetch1("KEY"))
    assert list(chain.transfer_step) == [0, 1, 2]
    assert list(chain.received) == ["", "model_state", "transfer_data"]
    assert list(chain["load.loaded"].isna()) == [True, False, True]

    # the report of the recipe: every chain and step, the error chain shown as not trained
    out_file = tmp_path / "plot.png"
    assert main(["plot", str(recipe_file), "--out", str(out_file)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert out_file.stat().st_size > 0
    broken = [line for line in printed if line.startswith("broken")]
    assert len(broken) == 2 and broken[0].rstrip().endswith("2 failed") and broken[1].rstrip().endswith("0/2  -")
    assert sum(line.startswith("distillation") for line in printed) == 3


def test_results_columns_hold_nan_and_infinity_as_floats(db):
    import math

    from nntransfer.analysis.results import results

    db.Dataset().add_entry(dataset_fn="nntransfer.datasets.digits.digits_dataset_fn", dataset_config={})
    db.Model().add_entry(model_fn="nntransfer.models.mlp.mlp_model_fn", model_config={"hidden_sizes": [4]})
    db.Trainer().add_entry(trainer_fn="itest_functions.kwargs_trainer",
                           trainer_config={"lr": float("nan"), "clip": float("inf")})
    db.Seed().insert1({"seed": 1})
    db.TransferredTrainedModel.populate()
    frame = results(db.TransferredTrainedModel())
    assert len(frame) == 1
    assert math.isnan(frame["trainer.lr"][0]) and frame["trainer.clip"][0] == math.inf
    assert not [column for column in frame.columns if "__float__" in column]
