"""nnfabrik's model configs hold transfer=True; it means the flexible (partial) load."""

import pytest

from nntransfer.configs import ModelConfig
from nntransfer.configs.functions import split_table_options
from nntransfer.errors import ConfigError

MLP = "nntransfer.models.mlp.mlp_model_fn"


def test_transfer_true_is_accepted_hashed_and_taken_out_before_the_call():
    config = ModelConfig.for_fn(MLP, hidden_sizes=[8], transfer=True)
    assert config.to_dict()["transfer"] is True
    assert config.hash != ModelConfig.for_fn(MLP, hidden_sizes=[8]).hash
    keywords, options = split_table_options(MLP, "model", config.to_dict())
    assert "transfer" not in keywords and options == {"transfer": True}


def test_a_transfer_value_that_is_neither_a_dict_nor_a_bool_is_refused():
    with pytest.raises(ConfigError, match="transfer"):
        ModelConfig.for_fn(MLP, transfer="yes")
