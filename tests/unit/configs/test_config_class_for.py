"""Config classes built from a function's signature."""

import textwrap

import pytest

from nntransfer.configs import DatasetConfig, ModelConfig, TrainerConfig, config_class_for
from nntransfer.errors import ConfigError, FunctionResolutionError

BUILDERS = '''
from __future__ import annotations

def digits_dataset_fn(seed, batch_size: int = 64, lr: float = 1, classes: list[int] | None = None,
                      scale: float = None, name="digits", transfer_data=None):
    return {"seed": seed, "batch_size": batch_size}

def mlp_model_fn(dataloaders, seed, hidden: int, **kwargs):
    return None

def fit_trainer_fn(model, dataloaders, seed, uid=None, cb=None, *, epochs: int = 3):
    return 0.0, {}, {}

def missing_seed_fn(batch_size=3):
    return None

def positional_only_fn(seed, size, /):
    return None

def commented_fn(seed, comment=""):
    return None

def hashing_fn(seed, hash="x"):
    return None

def kind_fn(seed, kind="digits"):
    return None

def fn_fn(seed, fn="relu"):
    return None

def bad_default_fn(seed, dtype=object()):
    return None

not_callable = 3
'''


@pytest.fixture
def builders(tmp_path, monkeypatch):
    """A real importable module of builder functions, unique per test."""
    name = f"builders_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(BUILDERS))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_fields_come_from_the_keyword_parameters(builders):
    cls = config_class_for(f"{builders}.digits_dataset_fn", "dataset")
    assert issubclass(cls, DatasetConfig)
    assert cls.__name__ == "DigitsDatasetFnConfig"
    assert cls.fn == f"{builders}.digits_dataset_fn"
    config = cls()
    assert config.to_dict() == {
        "batch_size": 64,
        "lr": 1.0,
        "classes": None,
        "scale": None,
        "name": "digits",
    }
    assert type(config.lr) is float


def test_transfer_data_is_filled_at_run_time_not_configured(builders):
    cls = config_class_for(f"{builders}.digits_dataset_fn", "dataset")
    with pytest.raises(ConfigError, match="no field 'transfer_data'"):
        cls(transfer_data={"train": {}})


def test_annotations_are_enforced(builders):
    cls = config_class_for(f"{builders}.digits_dataset_fn", "dataset")
    with pytest.raises(ConfigError, match="batch_size"):
        cls(batch_size="many")
    with pytest.raises(ConfigError, match="no field 'seed'"):
        cls(seed=1)
    assert cls(scale=2).scale == 2.0
    assert cls(name=["any", "json"]).name == ["any", "json"]


def test_class_is_cached_per_path_and_kind(builders):
    path = f"{builders}.digits_dataset_fn"
    assert config_class_for(path, "dataset") is config_class_for(path, "dataset")


def test_for_fn_shortcut_matches_the_class(builders):
    path = f"{builders}.digits_dataset_fn"
    config = DatasetConfig.for_fn(path, batch_size=8, comment="small")
    assert config == config_class_for(path, "dataset")(batch_size=8, comment="small")
    assert config.key == {"dataset_fn": path, "dataset_hash": config.hash}


def test_kwargs_function_accepts_extra_keys_and_required_params(builders):
    path = f"{builders}.mlp_model_fn"
    with pytest.raises(ConfigError, match="hidden"):
        ModelConfig.for_fn(path)
    config = ModelConfig.for_fn(path, hidden=10, dropout=0.5)
    assert config.to_dict() == {"hidden": 10, "dropout": 0.5}
    assert config.kind == "model"


def test_trainer_contract_parameters_are_not_fields(builders):
    config = TrainerConfig.for_fn(f"{builders}.fit_trainer_fn", epochs=5)
    assert config.to_dict() == {"epochs": 5}


def test_missing_contract_parameter_is_reported(builders):
    with pytest.raises(ConfigError, match=r"does not take \['seed'\]"):
        config_class_for(f"{builders}.missing_seed_fn", "dataset")


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("positional_only_fn", "positional-only"),
        ("commented_fn", "comment"),
        ("hashing_fn", "'hash'"),
        ("kind_fn", "parameter 'kind'.*Rename"),
        ("fn_fn", "parameter 'fn'.*Rename"),
        ("bad_default_fn", "dtype"),
    ],
)
def test_unusable_signatures_are_reported(builders, function, message):
    with pytest.raises(ConfigError, match=message):
        config_class_for(f"{builders}.{function}", "dataset")


def test_resolution_errors_say_which_part_failed(builders):
    with pytest.raises(FunctionResolutionError, match="cannot be imported"):
        config_class_for("no_such_package_xyz.data.fn", "dataset")
    with pytest.raises(FunctionResolutionError, match="no attribute 'nope'"):
        config_class_for(f"{builders}.nope", "dataset")
    with pytest.raises(FunctionResolutionError, match="not a function"):
        config_class_for(f"{builders}.not_callable", "dataset")


def test_bad_kind_and_path_type(builders):
    with pytest.raises(ConfigError, match="kind must be one of"):
        config_class_for(f"{builders}.digits_dataset_fn", "optimizer")
    with pytest.raises(ConfigError, match="dotted path"):
        config_class_for(len, "dataset")


def test_for_fn_on_the_base_class_asks_for_a_kind(builders):
    from nntransfer.configs import Config

    with pytest.raises(ConfigError, match="needs a kind"):
        Config.for_fn(f"{builders}.digits_dataset_fn")


def test_derived_configs_copy_and_pickle(builders):
    import copy
    import pickle

    config = ModelConfig.for_fn(f"{builders}.mlp_model_fn", hidden=3, dropout=float("nan"), comment="c")
    assert pickle.loads(pickle.dumps(config)) == config
    assert copy.deepcopy(config) == config
