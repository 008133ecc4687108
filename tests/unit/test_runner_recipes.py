"""Loading recipe files, without a database."""

import pytest

from nntransfer.errors import ConfigError
from nntransfer.runner import load_recipe

HEADER = '''
from nntransfer.configs import Experiment, config_class_for

Digits = config_class_for("nntransfer.datasets.digits.digits_dataset_fn", "dataset")
Mlp = config_class_for("nntransfer.models.mlp.mlp_model_fn", "model")
Trainer = config_class_for("nntransfer.trainer.standard.standard_trainer", "trainer")
experiment = Experiment(Digits(), Mlp(), Trainer(), seed=1)
'''


def test_a_list_of_experiments_gets_one_chain_each(tmp_path):
    path = tmp_path / "listed.py"
    path.write_text(HEADER + "experiments = [experiment]\n")
    recipe = load_recipe(str(path))
    assert list(recipe.chains) == ["experiment 0"]
    assert len(recipe.steps()) == 1


@pytest.mark.parametrize("value", ["experiment", "'digits'"])
def test_experiments_that_are_not_a_dict_or_list_are_refused_clearly(tmp_path, value):
    path = tmp_path / "single.py"
    path.write_text(HEADER + f"experiments = {value}\n")
    with pytest.raises(ConfigError, match="`experiments` is a (Experiment|str); make it a dict"):
        load_recipe(str(path))
