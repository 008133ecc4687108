"""``nntransfer report`` reads the recipe from the database: the same page as the imported recipe, without it.

A recipe's chains are recorded in order when it is inserted (see
nntransfer.tables.membership), so the report needs neither the recipe's
module nor torch, and shows what the imported recipe shows: a chain that is
the beginning of another, two chains with the same steps, chains in the
recipe's order, tuples among the config values.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.usefixtures("single_thread")

RECIPE = '''
from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig, TransferExperiment

digits = DatasetConfig.for_fn("nntransfer.datasets.digits.digits_dataset_fn", split_seed=0, comment="digits")
mlp = ModelConfig.for_fn("nntransfer.models.mlp.mlp_model_fn", hidden_sizes=[8], comment="MLP 8")
first = TrainerConfig.for_fn("nntransfer.trainer.standard.standard_trainer", epochs=1, comment="1 epoch")
fast = TrainerConfig.for_fn("nntransfer.trainer.standard.standard_trainer", epochs=1, lr=3e-3,
                            final_splits=("validation", "test"))
slow = TrainerConfig.for_fn("nntransfer.trainer.standard.standard_trainer", epochs=2, lr=3e-4, comment="2 slow epochs")
seeds = [2, 1]
experiments = {{  # not in name order, a chain that begins another, two names for the same chain
    "slow": TransferExperiment([Experiment(digits, mlp, first, seed=seeds), Experiment(digits, mlp, slow, seed=seeds)]),
    "fast": TransferExperiment([Experiment(digits, mlp, first, seed=seeds), Experiment(digits, mlp, fast, seed=seeds)]),
    "baseline": Experiment(digits, mlp, first, seed=seeds),
    "{same}": TransferExperiment([Experiment(digits, mlp, first, seed=seeds), Experiment(digits, mlp, slow, seed=seeds)]),
}}
'''


def write(path, same="slow again"):
    path.write_text(RECIPE.format(same=same))
    return str(path)


@pytest.fixture
def shared_recipe(db, tmp_path):
    """Four chains sharing step 0, two seeds, inserted; trained: both steps of chain ``fast`` for seed 1."""
    from nntransfer import runner

    path = tmp_path / "shared_recipe.py"
    recipe = runner.load_recipe(write(path))
    runner.insert(recipe)
    for step in recipe.chains["fast"].steps(1):  # step 0, then the step it makes ready
        db.TransferredTrainedModel().populate([step], plan=False)
    return path, recipe


def payload_without_time(recipe, table):
    from nntransfer.web.payload import recipe_payload

    payload = recipe_payload(recipe, table)
    payload.pop("generated")
    return payload


def test_the_stored_recipe_gives_the_payload_of_the_imported_recipe(shared_recipe, db):
    from nntransfer.analysis.stored_recipe import stored_recipe

    _, recipe = shared_recipe
    table = db.TransferredTrainedModel()
    stored = stored_recipe(table, recipe.name)
    assert list(stored.chains) == ["slow", "fast", "baseline", "slow again"]
    assert [chain.seeds for chain in stored.chains.values()] == [(2, 1)] * 4
    assert stored.steps() == recipe.steps()
    read = payload_without_time(stored, table)
    assert read["status"]["total"] == {"done": 2, "running": 0, "pending": 2, "blocked": 2, "error": 0, "pruned": 0}
    assert [chain["chain"] for chain in read["lineage"]] == ["slow", "fast", "baseline", "slow again"]
    fast = next(chain for chain in read["lineage"] if chain["chain"] == "fast")["steps"]
    assert fast[1]["config"]["trainer.final_splits"] == "['validation', 'test']"  # a tuple in the config class
    assert fast[1]["load_report"].startswith("LoadReport: ")
    assert read == payload_without_time(recipe, table)


def test_an_edited_recipe_has_its_chains_recorded_again(shared_recipe, db, tmp_path):
    from nntransfer import runner
    from nntransfer.analysis.stored_recipe import stored_recipe

    path, _ = shared_recipe
    table = db.TransferredTrainedModel()
    renamed = runner.load_recipe(write(path, same="slow twice"))  # the same steps, one chain renamed
    assert runner.insert(renamed) == 0
    assert list(stored_recipe(table, renamed.name).chains) == ["slow", "fast", "baseline", "slow twice"]
    assert payload_without_time(stored_recipe(table, renamed.name), table) == payload_without_time(renamed, table)


def test_a_recipe_recorded_without_chains_is_imported_until_its_next_insert(shared_recipe, db, tmp_path, capsys):
    from nntransfer import runner
    from nntransfer.analysis.stored_recipe import stored_recipe
    from nntransfer.cli import main

    path, recipe = shared_recipe
    table = db.TransferredTrainedModel()
    (table.recipe_chain_table() & {"recipe": recipe.name}).delete_quick()  # as an earlier nntransfer left it
    assert stored_recipe(table, recipe.name) is None
    out = tmp_path / "report.html"
    assert main(["report", str(path), "--out", str(out)]) == 0
    assert "kept no chains, so it is imported" in capsys.readouterr().err
    assert "slow again" in out.read_text()
    assert runner.insert(recipe) == 0  # no new step, but the chains are recorded
    assert list(stored_recipe(table, recipe.name).chains) == list(recipe.chains)


def test_the_read_only_commands_import_neither_the_recipe_nor_torch(shared_recipe, tmp_path):
    path, _ = shared_recipe
    path.unlink()  # they read the database only, so the recipe file may be gone
    out = tmp_path / "report.html"
    commands = [["status", str(path)], ["errors", str(path)], ["results", str(path)],
                ["report", str(path), "--out", str(out)], ["db", "url"]]
    script = ("import contextlib, io, sys; from nntransfer.cli import main\n"
              f"for command in {commands!r}:\n"
              "    with contextlib.redirect_stdout(io.StringIO()):\n"
              "        code = main(command)\n"
              "    print(command[0], code, 'torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=dict(os.environ),
                          timeout=180)
    printed = [line for line in done.stdout.splitlines() if line.split(" ")[0] in {c[0] for c in commands}]
    # `db url` answers 1 where the database is a server, not the embedded one: only its imports matter here
    assert printed[:4] == ["status 0 False", "errors 0 False", "results 0 False", "report 0 False"], \
        done.stdout + done.stderr
    assert printed[4] in ("db 0 False", "db 1 False"), done.stdout + done.stderr
    html = out.read_text()
    assert "<title>nntransfer: shared_recipe</title>" in html and "2 slow epochs" in html
    assert "LoadReport: " in html  # a done transfer step's load report, printed without torch


def test_report_of_a_recipe_never_inserted_is_a_usage_error(db, tmp_path, capsys):
    from nntransfer.cli import main

    path = tmp_path / "never_inserted.py"
    write(path)  # a recipe that exists, but the database holds none of its steps
    out = tmp_path / "report.html"
    assert main(["report", str(path), "--out", str(out)]) == 2
    assert "recipe 'never_inserted' has no steps in this schema" in capsys.readouterr().err
    assert not out.exists()


def test_a_chain_name_too_long_to_record_is_refused_before_anything_is_written(db, tmp_path):
    from nntransfer import runner
    from nntransfer.errors import ConfigError

    path = tmp_path / "long_names.py"
    path.write_text(RECIPE.format(same="x" * 256))
    with pytest.raises(ConfigError, match="has 256 characters; at most 255 are stored"):
        runner.insert(runner.load_recipe(str(path)))
    table = db.TransferredTrainedModel()
    assert len(table.plan_table()) == 0 and len(table.recipe_table() & {"recipe": "long_names"}) == 0
