"""Experiment and TransferExperiment: keys, seeds, chained step keys."""

import pytest

from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig, TransferExperiment
from nntransfer.errors import ConfigError
from nntransfer.steps import collapse_history


class Data(DatasetConfig):
    fn = "pkg.data.load"
    size: int = 10


class Net(ModelConfig):
    fn = "pkg.models.net"
    hidden: int = 4


class Fit(TrainerConfig):
    fn = "pkg.trainers.fit"
    epochs: int = 1


class Generate(TrainerConfig):
    fn = "pkg.trainers.generate_logits"


def experiment(seed=1, **data):
    return Experiment(Data(**data), Net(), Fit(), seed=seed)


def test_key_joins_the_three_config_keys_and_the_seed():
    exp = experiment(seed=7)
    assert exp.key() == {**Data().key, **Net().key, **Fit().key, "seed": 7}
    assert exp.keys() == [exp.key(7)]


def test_several_seeds_give_one_key_each():
    exp = experiment(seed=[3, 1, 2])
    assert [key["seed"] for key in exp.keys()] == [3, 1, 2]
    with pytest.raises(ConfigError, match="several seeds"):
        exp.key()
    with pytest.raises(ConfigError, match="not one of"):
        exp.key(4)


@pytest.mark.parametrize("seed", [-1, 2**31, True, 1.0, "1", [], [1, 1]])
def test_bad_seeds_are_refused(seed):
    with pytest.raises(ConfigError, match="seed"):
        experiment(seed=seed)


def test_configs_must_be_instances_of_the_right_kind():
    with pytest.raises(ConfigError, match="dataset must be a DatasetConfig"):
        Experiment(Net(), Net(), Fit())
    with pytest.raises(ConfigError, match="pass an instance"):
        Experiment(Data, Net(), Fit())
    with pytest.raises(ConfigError, match="trainer must be a TrainerConfig"):
        Experiment(Data(), Net(), {"epochs": 1})


def test_experiment_equality():
    assert experiment(seed=1) == experiment(seed=1)
    assert experiment(seed=1) != experiment(seed=2)
    assert experiment(size=3) != experiment(size=4)


def test_one_step_chain_equals_the_plain_experiment_at_step_zero():
    exp = experiment(seed=5)
    (step,) = TransferExperiment([exp]).steps()
    assert step == {**exp.key(), "transfer_step": 0, "data_transfer": False, "collapsed_history": ""}
    assert exp.steps() == [step]


def distillation_chain(seed=42):
    teacher = Experiment(Data(), Net(hidden=32), Fit(), seed=seed)
    generate = Experiment(Data(), Net(hidden=32), Generate(), seed=seed)
    student = Experiment(Data(size=20), Net(hidden=8), Fit(epochs=2), seed=seed)
    return TransferExperiment(
        [teacher, generate, student],
        update=[{"data_transfer": False}, {"data_transfer": True}, None],
    )


def test_chain_steps_fold_the_previous_key_into_the_history():
    steps = distillation_chain().steps()
    assert [s["transfer_step"] for s in steps] == [0, 1, 2]
    assert [s["data_transfer"] for s in steps] == [0, 1, 0]
    assert all(type(s["data_transfer"]) is int for s in steps)  # as the table stores the flag
    assert steps[0]["collapsed_history"] == ""
    assert steps[1]["collapsed_history"] == collapse_history("", steps[0])
    assert steps[2]["collapsed_history"] == collapse_history(steps[1]["collapsed_history"], steps[1])
    assert steps[2]["trainer_hash"] == Fit(epochs=2).hash


def test_chain_histories_are_pinned():
    steps = distillation_chain().steps()
    assert steps[1]["collapsed_history"] == "219ae0b0a94c512990b6bf6e1e240fe7"
    assert steps[2]["collapsed_history"] == "2fdab678fd3961edf797426f7f4e0294"


def test_same_step_after_a_different_past_gets_a_different_history():
    direct = TransferExperiment([experiment(size=1), experiment(size=3)]).steps()
    detour = TransferExperiment([experiment(size=2), experiment(size=3)]).steps()
    assert {k: v for k, v in direct[1].items() if k != "collapsed_history"} == {
        k: v for k, v in detour[1].items() if k != "collapsed_history"
    }
    assert direct[1]["collapsed_history"] != detour[1]["collapsed_history"]


def test_data_transfer_changes_the_next_history():
    model_state = TransferExperiment([experiment(), experiment(size=3)]).steps()
    data = TransferExperiment([experiment(), experiment(size=3)], update=[{"data_transfer": True}, None]).steps()
    assert model_state[1]["collapsed_history"] != data[1]["collapsed_history"]


def test_steps_per_seed_and_all_steps():
    chain = TransferExperiment([experiment(seed=[1, 2]), experiment(seed=[1, 2], size=3)])
    assert [s["seed"] for s in chain.all_steps()] == [1, 1, 2, 2]
    assert chain.steps(1)[1]["collapsed_history"] != chain.steps(2)[1]["collapsed_history"]
    with pytest.raises(ConfigError, match="several seeds"):
        chain.steps()


@pytest.mark.parametrize(
    ("experiments", "update", "message"),
    [
        (experiment(), None, "must be a list"),
        ([], None, "at least one"),
        ([experiment(), "step"], None, r"experiments\[1\] is a str"),
        ([experiment(seed=1), experiment(seed=2)], None, "same seeds"),
        ([experiment(), experiment()], [None], "2 steps"),
        ([experiment()], {"data_transfer": True}, "one dict"),
        ([experiment()], [{"data_transfr": True}], "unknown options"),
        ([experiment()], [{"data_transfer": 1}], "True or False"),
        ([experiment()], ["yes"], r"update\[0\] must be a dict"),
    ],
)
def test_chain_input_errors(experiments, update, message):
    with pytest.raises(ConfigError, match=message):
        TransferExperiment(experiments, update=update)
