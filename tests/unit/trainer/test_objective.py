"""The direction of an objective comes from its metric name unless given."""

import pytest

from nntransfer.errors import ConfigError
from nntransfer.trainer.modules.checkpointing import Checkpointing
from nntransfer.trainer.modules.early_stopping import EarlyStopping
from nntransfer.trainer.objective import resolve_maximize


@pytest.mark.parametrize(
    "objective, expected",
    [("validation.accuracy", True), ("validation.loss", False), ("test.correlation", True), ("train.mse", False)],
)
def test_direction_is_read_from_the_metric_name(objective, expected):
    assert resolve_maximize("m", objective, None) is expected
    assert EarlyStopping(objective=objective).maximize is expected
    assert Checkpointing(objective=objective, folder="x").maximize is expected


def test_an_explicit_direction_wins_and_unknown_names_are_refused():
    assert resolve_maximize("m", "validation.accuracy", False) is False
    with pytest.raises(ConfigError, match="pass maximize=True or maximize=False"):
        EarlyStopping(objective="validation.weirdness")
    with pytest.raises(ConfigError, match="maximize must be"):
        EarlyStopping(objective="validation.loss", maximize="yes")
