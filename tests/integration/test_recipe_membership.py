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
