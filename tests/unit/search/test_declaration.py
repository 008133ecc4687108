"""Declaring a search: keys, ranges, choices, objective and budget are checked before any trial."""

import pytest

from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig, TransferExperiment
from nntransfer.errors import ConfigError
from nntransfer.search import Categorical, Integer, LogUniform, Search, Uniform

DIGITS = "nntransfer.datasets.digits.digits_dataset_fn"
MLP = "nntransfer.models.mlp.mlp_model_fn"
TRAINER = "nntransfer.trainer.standard.standard_trainer"


def chain():
    data = DatasetConfig.for_fn(DIGITS, batch_size=32)
    model = ModelConfig.for_fn(MLP, hidden_sizes=[16])
    pretrain = TrainerConfig.for_fn(TRAINER, epochs=3)
    finetune = TrainerConfig.for_fn(TRAINER, epochs=4, modules={"finetuning": {"head": "classifier",
                                                                              "unfreeze_at_epoch": 2}})
    return TransferExperiment([Experiment(data, model, pretrain, seed=[1, 2]),
                               Experiment(data, model, finetune, seed=[1, 2])])


def declare(space, **options):
    options = {"name": "s", "trials": 3, **options}
    return Search(chain(), space, **options)


def test_values_go_into_the_searched_step_and_earlier_steps_stay_shared():
    search = declare({
        "trainer.lr": LogUniform(1e-4, 1e-1),
        "trainer.modules.finetuning.unfreeze_at_epoch": Integer(1, 4),
        "model.hidden_sizes": Categorical([(8,), (32, 16)]),
    })
    one = search.experiment_for({"trainer.lr": 0.01, "trainer.modules.finetuning.unfreeze_at_epoch": 3,
                                 "model.hidden_sizes": (32, 16)})
    other = search.experiment_for({"trainer.lr": 0.001, "trainer.modules.finetuning.unfreeze_at_epoch": 1,
                                   "model.hidden_sizes": (8,)})
    head = one.experiments[1]
    assert head.trainer.lr == 0.01
    assert head.trainer.modules["finetuning"] == {"head": "classifier", "unfreeze_at_epoch": 3}
    assert head.model.hidden_sizes == [32, 16]
    assert one.steps(1)[0] == other.steps(1)[0]          # step 0: one training shared by every trial
    assert one.steps(1)[1] != other.steps(1)[1]
    assert chain().experiments[1].trainer.modules["finetuning"]["unfreeze_at_epoch"] == 2  # base untouched


def test_a_step_index_and_the_seed_can_be_searched():
    search = declare({"0.trainer.epochs": Integer(2, 5), "seed": Categorical([7, 8])})
    experiment = search.experiment_for({"0.trainer.epochs": 5, "seed": 8})
    assert experiment.seeds == (8,)
    assert experiment.experiments[0].trainer.epochs == 5
    assert experiment.experiments[1].trainer.epochs == 4


def test_an_unknown_field_is_named_with_the_known_ones():
    with pytest.raises(ConfigError, match=r"has no field 'lrr'\. Did you mean 'lr'\?.*Known fields: epochs"):
        declare({"trainer.lrr": LogUniform(1e-4, 1e-1)})
    with pytest.raises(ConfigError, match="kind one of dataset, model, trainer"):
        declare({"trainr.lr": LogUniform(1e-4, 1e-1)})
    with pytest.raises(ConfigError, match="names step 2, but the chain has steps 0 .. 1"):
        declare({"2.trainer.lr": LogUniform(1e-4, 1e-1)})
    with pytest.raises(ConfigError, match="no 'distilation' in modules.*It holds: finetuning"):
        declare({"trainer.modules.distilation.temperature": Uniform(1, 4)})
    with pytest.raises(ConfigError, match=r"0's trainer config .* has modules = None, not a dict"):
        declare({"0.trainer.modules.finetuning.unfreeze_at_epoch": Integer(1, 3)})


def test_a_value_the_function_refuses_fails_when_declared():
    with pytest.raises(ConfigError, match="trainer.optimizer='adamm' makes an invalid trainer config"):
        declare({"trainer.optimizer": Categorical(["adam", "adamm"])})
    with pytest.raises(ConfigError, match="finetuning"):
        declare({"trainer.modules.finetuning.unfreeze_at": Integer(1, 3)})


@pytest.mark.parametrize("make, message", [
    (lambda: LogUniform(0.1, 0.01), "inverted"),
    (lambda: Uniform(0.5, -0.5), r"inverted \(low 0.5 > high -0.5\); swap the bounds"),
    (lambda: Integer(8, 1), "inverted"),
    (lambda: Uniform(1.0, 1.0), "empty"),
    (lambda: Integer(3, 3), "empty"),
    (lambda: LogUniform(0.0, 1.0), "low > 0"),
    (lambda: Integer(1, 2.5), "must be an int"),
    (lambda: Categorical([]), "no choices"),
    (lambda: Categorical([[8], [16]]), r"not hashable; write it as the tuple \(8,\)"),
    (lambda: Categorical([{"a": 1}]), "not hashable; put each of its entries"),
    (lambda: Categorical([1, 1]), "repeat"),
    (lambda: Categorical([object()]), "cannot be stored in a config"),
])
def test_bad_ranges_and_choices_fail_where_written(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_the_objective_must_be_measured_and_the_budget_positive():
    with pytest.raises(ConfigError, match="objective 'tset.accuracy' is not a metric this run measures. Did you mean "
                                          "'test.accuracy'"):
        declare({"trainer.lr": LogUniform(1e-4, 1e-1)}, objective="tset.accuracy")
    with pytest.raises(ConfigError, match="objective 'validation.f1' is not a metric this run measures"):
        declare({"trainer.lr": LogUniform(1e-4, 1e-1)}, objective="validation.f1")
    assert declare({"trainer.lr": LogUniform(1e-4, 1e-1)}, objective="train.loss").objective == "train.loss"
    for trials in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="trials must be a whole number >= 1"):
            declare({"trainer.lr": LogUniform(1e-4, 1e-1)}, trials=trials)
    with pytest.raises(ConfigError, match="needs a budget"):
        declare({"trainer.lr": LogUniform(1e-4, 1e-1)}, trials=None)
    with pytest.raises(ConfigError, match="timeout must be a number of seconds > 0"):
        declare({"trainer.lr": LogUniform(1e-4, 1e-1)}, timeout=0)
    with pytest.raises(ConfigError, match="non-empty dict"):
        declare({})


def test_direction_follows_the_objective_and_pruning_needs_a_per_epoch_value():
    space = {"trainer.lr": LogUniform(1e-4, 1e-1)}
    assert declare(space).direction == "maximize"                       # score = validation.accuracy
    assert declare(space, objective="validation.loss").direction == "minimize"
    assert declare(space, objective="test.accuracy").epoch_metric is None
    with pytest.raises(ConfigError, match="not measured per epoch"):
        declare(space, objective="test.accuracy", pruner="median")
    with pytest.raises(ConfigError, match="direction must be 'maximize' or 'minimize'"):
        declare(space, direction="up")


def test_samplers_and_pruners_are_checked_by_name_and_options():
    space = {"trainer.lr": LogUniform(1e-4, 1e-1)}
    with pytest.raises(ConfigError, match="unknown sampler 'tpee'; Did you mean 'tpe'"):
        declare(space, sampler="tpee")
    with pytest.raises(ConfigError, match="sampler 'tpe' has no option 'n_startup'.*Did you mean 'n_startup_trials'"):
        declare(space, sampler={"tpe": {"n_startup": 3}})
    with pytest.raises(ConfigError, match="unknown pruner 'hyperbnd'; Did you mean 'hyperband'"):
        declare(space, pruner="hyperbnd")
    with pytest.raises(ConfigError, match="grid sampler needs Categorical choices"):
        declare(space, sampler="grid")


def test_the_grid_sampler_caps_the_budget_at_the_grid_size():
    search = declare({"trainer.lr": Categorical([0.1, 0.01]), "trainer.epochs": Integer(2, 4)},
                     sampler="grid", trials=None, timeout=60)
    assert search.trials == 6


def test_labelled_choices_round_trip_through_optuna_values():
    choice = Categorical([(8,), (32, 16)])
    assert choice.to_optuna().choices == ("[8]", "[32,16]")
    assert choice.decode("[32,16]") == (32, 16)
    assert choice.encode((8,)) == "[8]"
    plain = Categorical(["adam", "sgd"])
    assert plain.decode("sgd") == "sgd" and plain.encode("sgd") == "sgd"


def test_the_fingerprint_changes_with_what_is_searched():
    one = declare({"trainer.lr": LogUniform(1e-4, 1e-1)})
    assert one.fingerprint == declare({"trainer.lr": LogUniform(1e-4, 1e-1)}, trials=7).fingerprint
    assert one.fingerprint != declare({"trainer.lr": LogUniform(1e-4, 1e-2)}).fingerprint
    assert one.fingerprint != declare({"trainer.lr": LogUniform(1e-4, 1e-1)}, objective="validation.loss").fingerprint


@pytest.mark.parametrize("budget, message", [
    ({"trials": 0}, "trials must be a whole number >= 1, got 0; a budget of 0 trials runs nothing"),
    ({"trials": 1.5}, "trials must be a whole number >= 1"),
    ({"timeout": 0}, "timeout must be a number of seconds > 0, got 0; a time limit of 0 starts no trial"),
    ({"timeout": float("nan")}, "timeout must be a number of seconds > 0"),
])
def test_running_a_budget_of_nothing_is_refused_before_the_database_is_touched(budget, message):
    from nntransfer.search.engine import optimize

    with pytest.raises(ConfigError, match=message):
        optimize(declare({"trainer.lr": LogUniform(1e-4, 1e-1)}), **budget)


RECIPE = f'''
from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig
from nntransfer.search import LogUniform, Search

search = Search(Experiment(DatasetConfig.for_fn("{DIGITS}"), ModelConfig.for_fn("{MLP}"), TrainerConfig.for_fn("{TRAINER}"),
                           seed=1), {{"trainer.lr": LogUniform(1e-4, 1e-1)}}, name="s", trials=3)
'''


def test_the_command_line_refuses_zero_trials_and_a_time_limit_of_zero(tmp_path, capsys):
    from nntransfer.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["search", "r.py", "--trials", "0"])
    assert stop.value.code == 2 and "at least 1" in capsys.readouterr().err
    recipe = tmp_path / "timed_search.py"
    recipe.write_text(RECIPE)
    assert main(["search", str(recipe), "--timeout", "0"]) == 2
    assert "a time limit of 0 starts no trial" in capsys.readouterr().err
