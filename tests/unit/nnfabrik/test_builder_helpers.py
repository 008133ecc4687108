"""nnfabrik's builder and utility functions, with nnfabrik-style functions written here."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from nntransfer.nnfabrik.builder import get_all_parts, get_data, get_model, get_trainer, resolve_data
from nntransfer.nnfabrik.utility.dj_helpers import cleanup_numpy_scalar
from nntransfer.nnfabrik.utility.nn_helpers import find_prefix, load_state_dict, set_random_seed
from nntransfer.nnfabrik.utility.nnf_helper import dynamic_import, split_module_name


def toy_dataset_fn(seed, **config):
    return {"train": [(torch.ones(2, 3), torch.zeros(2))], "seed": seed, "size": config.get("size", 1)}


def toy_model_fn(dataloaders, seed, **config):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, config.get("hidden", 4)), nn.Linear(config.get("hidden", 4), 2))


def toy_trainer_fn(model, dataloaders, seed, uid=None, cb=None, **config):
    return config.get("epochs", 1), (), model.state_dict()


def test_get_data_takes_the_seed_from_the_config_and_get_all_parts_puts_it_there():
    assert get_data(toy_dataset_fn, {"seed": 3, "size": 2})["seed"] == 3
    dataloaders, model = get_all_parts(toy_dataset_fn, {}, toy_model_fn, {"hidden": 5}, seed=7)
    assert dataloaders["seed"] == 7 and model[0].out_features == 5
    assert resolve_data(f"{__name__}.toy_dataset_fn") is toy_dataset_fn


def test_get_model_loads_a_state_strictly_or_flexibly_when_the_config_says_transfer():
    source = toy_model_fn(None, 1)
    same = get_model(toy_model_fn, {}, seed=2, state_dict=source.state_dict())
    assert torch.equal(same[0].weight, source[0].weight)
    with pytest.raises(RuntimeError, match="shape mismatches"):
        get_model(toy_model_fn, {"hidden": 6}, seed=2, state_dict=source.state_dict())
    bigger = get_model(toy_model_fn, {"hidden": 6, "transfer": True}, seed=2, state_dict=source.state_dict())
    assert bigger[0].out_features == 6  # nothing fitted, nothing loaded, no error: nnfabrik's flexible load


def test_get_trainer_binds_a_config_only_when_one_is_given():
    assert get_trainer(toy_trainer_fn) is toy_trainer_fn
    assert get_trainer(toy_trainer_fn, {"epochs": 3})(toy_model_fn(None, 0), None, 0)[0] == 3


def test_load_state_dict_matches_prefixes_as_nnfabriks_did():
    model = nn.Sequential(OrderedDict(core=nn.Linear(3, 4)))
    wrapped = {f"module.core.{k}": v + 1 for k, v in model.core.state_dict().items()}
    assert find_prefix(list(wrapped)) == ("module.core", 2)
    load_state_dict(model, wrapped, match_names=True, ignore_missing=True, ignore_unused=True)
    assert torch.equal(model.core.bias, wrapped["module.core.bias"])
    with pytest.raises(RuntimeError, match="unused keys"):
        load_state_dict(model, wrapped)


def test_small_helpers():
    data = {"a": np.float32(1.5), "b": [np.int64(2), (np.bool_(True),)]}
    clean = cleanup_numpy_scalar(data)
    assert clean is data and clean == {"a": 1.5, "b": [2, [True]]} and type(clean["b"][0]) is int
    assert split_module_name("a.b.c") == ("a.b", "c") and dynamic_import("math", "pi") == np.pi
    set_random_seed(4)
    first = torch.rand(1)
    set_random_seed(4)
    assert torch.equal(first, torch.rand(1))
