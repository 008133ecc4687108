"""nnfabrik's hypersearch parameters (Ax's format) become search dimensions."""

import pytest

from nntransfer.errors import ConfigError
from nntransfer.nnfabrik.utility.hypersearch import Bayesian, Random, _dimension
from nntransfer.search import Categorical, Integer, LogUniform, Uniform


def test_ax_parameters_map_to_dimensions():
    assert _dimension({"name": "trainer.lr", "type": "range", "bounds": [1e-4, 1e-1], "log_scale": True}) == \
        LogUniform(1e-4, 1e-1)
    assert _dimension({"name": "trainer.lr", "type": "range", "bounds": [0.1, 0.5]}) == Uniform(0.1, 0.5)
    assert _dimension({"name": "model.n", "type": "range", "bounds": [1, 8]}) == Integer(1, 8)
    assert _dimension({"name": "model.n", "type": "range", "bounds": [1.0, 8.0], "value_type": "int"}) == Integer(1, 8)
    assert _dimension({"name": "model.h", "type": "choice", "values": [[8], [16, 8]]}) == Categorical([(8,), (16, 8)])
    assert _dimension({"name": "seed.seed", "type": "int"}).high == 2**31 - 1
    assert _dimension({"name": "trainer.lr", "type": "fixed", "value": 0.1}) is None
    with pytest.raises(ConfigError, match="knows 'range', 'choice', 'fixed'"):
        _dimension({"name": "trainer.lr", "type": "loguniform"})
    with pytest.raises(ConfigError, match="bounds"):
        _dimension({"name": "trainer.lr", "type": "range"})


def test_auto_params_are_named_by_kind_and_field_as_nnfabrik_names_them():
    params = Random.get_auto_params({"batch_size": {"type": "choice", "values": [32, 64]}}, {},
                                    {"lr": {"type": "range", "bounds": [0.001, 0.1]}}, {"seed": {"type": "int"}})
    assert [p["name"] for p in params] == ["dataset.batch_size", "trainer.lr", "seed.seed"]
    assert Bayesian.get_fixed_params({"a": 1}, {}, {}) == {"dataset": {"a": 1}, "model": {}, "trainer": {}}


def test_batches_of_arms_are_refused_with_what_to_do_instead():
    with pytest.raises(ConfigError, match="arms_per_trial=3: each trial trains one configuration"):
        Bayesian("d.f", {}, {}, "m.f", {}, {}, "t.f", {}, {}, "me", "x.Table", arms_per_trial=3)
