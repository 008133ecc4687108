"""Table options: config fields the table layer reads instead of the function."""

import pytest

from nntransfer.builder import get_model
from nntransfer.configs import ModelConfig
from nntransfer.configs.functions import split_table_options
from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.errors import ConfigError

MLP = "nntransfer.models.mlp.mlp_model_fn"


def test_transfer_option_is_hashed_only_when_set():
    plain = ModelConfig.for_fn(MLP)
    steered = ModelConfig.for_fn(MLP, transfer={"exclude": ["classifier"]})
    assert "transfer" not in plain.to_dict()
    assert steered.to_dict()["transfer"] == {"exclude": ["classifier"]}
    assert plain.hash != steered.hash
    assert type(plain).from_dict(steered.to_dict()) == steered


def test_transfer_option_must_be_a_dict():
    with pytest.raises(ConfigError, match="transfer"):
        ModelConfig.for_fn(MLP, transfer=["classifier"])


def test_split_table_options_leaves_the_function_its_keywords_only():
    config = ModelConfig.for_fn(MLP, hidden_sizes=[4], transfer={"exclude": ["classifier"]}).to_dict()
    kwargs, options = split_table_options(MLP, "model", config)
    assert options == {"transfer": {"exclude": ["classifier"]}} and "transfer" not in kwargs
    model = get_model(MLP, kwargs, digits_dataset_fn(0, batch_size=16), seed=0)
    assert model.classifier.in_features == 4


@pytest.mark.parametrize(
    "transfer, match",
    [
        ({"exclde": ["classifier"]}, r"unknown keys \['exclde'\]; Did you mean 'exclude'\?"),
        ({"rename": ["backbone", "features"]}, r"\['rename'\] must map old name prefixes"),
        ({"include": [3]}, r"\['include'\] must be a name pattern or a list"),
        ({"exclude": "re:classifier[("}, r"not a valid regular expression"),
    ],
)
def test_a_bad_transfer_option_fails_when_the_config_is_made(transfer, match):
    with pytest.raises(ConfigError, match=match):
        ModelConfig.for_fn(MLP, transfer=transfer)


def test_a_good_transfer_option_is_accepted_in_each_form():
    for transfer in ({"exclude": "classifier"}, {"include": ["features", "re:features\\.[0-3]\\..*"]},
                     {"rename": {"backbone": "features"}}):
        assert ModelConfig.for_fn(MLP, transfer=transfer).to_dict()["transfer"] == transfer
