"""nnfabrik's hashes, pinned: an existing nnfabrik database is keyed by them.

The expected values are those printed in nnfabrik's tutorials (seed 000) or
computed by hand from nnfabrik's documented algorithm (MD5 over a traversal
that ignores key order); they must never change.
"""

import hashlib
import math
from collections import OrderedDict

import numpy as np
import pytest

from nntransfer.errors import ConfigError
from nntransfer.hashing import canonical_json, config_hash, from_jsonable, make_hash, nnfabrik_config, to_jsonable

TUTORIAL = [
    ({"batch_size": 64}, "9aee736870714f8b7c3cc084087ce886"),
    ({"batch_size": 64, "apply_augmentation": True}, "28aefc2308569727c6017c66c9122d77"),
    ({"apply_augmentation": True, "batch_size": 64}, "28aefc2308569727c6017c66c9122d77"),
    ({"epochs": 1}, "79e921430b7f44a205d79d0087b59dc0"),
    ({"batch_size": 64, "apply_augmentation": False}, "ab91f734757071bf0b98ab74c6e8583c"),
]


@pytest.mark.parametrize(("config", "expected"), TUTORIAL)
def test_make_hash_gives_the_hashes_of_nnfabriks_tutorial(config, expected):
    assert make_hash(config) == expected


def _md5(*parts):
    return hashlib.md5("".join(parts).encode()).hexdigest()


def test_make_hash_follows_the_documented_traversal():
    assert make_hash("adam") == _md5("adam")
    assert make_hash(0.5) == _md5("0.5")
    assert make_hash(None) == _md5("None")
    assert make_hash([1, "a"]) == _md5(_md5("1"), _md5("a"))
    assert make_hash({"b": 1, "a": [2]}) == _md5("a", _md5(_md5("2")), "b", _md5("1"))
    assert make_hash({}) == "d41d8cd98f00b204e9800998ecf8427e"


def test_make_hash_ignores_key_order_but_not_in_an_ordered_dict():
    assert make_hash({"a": 1, "b": 2}) == make_hash({"b": 2, "a": 1})
    assert make_hash(OrderedDict(a=1, b=2)) != make_hash(OrderedDict(b=2, a=1))


def test_make_hash_sees_what_nnfabrik_saw():
    assert make_hash((1, 2)) == make_hash([1, 2]) == make_hash(np.array([1, 2]))
    assert make_hash(1) != make_hash(1.0)
    assert make_hash({1: "x"}) == make_hash({"1": "x"})  # nnfabrik wrote keys with str()
    assert make_hash(np.float32(0.1)) == make_hash(0.1)


def test_nnfabrik_config_keeps_the_hash_and_stores_plain_values():
    given = {
        "optimizer": np.random.default_rng(0).choice(["adam", "sgd"]),
        "lr": np.float32(0.1),
        "epochs": np.int64(3),
        "flip": np.bool_(True),
        "noise_std": {0.08: 0.1, -1: 0.5},
        "sizes": (np.int32(4), 8),
    }
    plain = nnfabrik_config(given)
    assert make_hash(plain) == make_hash(given)
    assert type(plain["optimizer"]) is str and plain["lr"] == 0.1 and type(plain["epochs"]) is int
    assert plain["flip"] is True and plain["sizes"] == (4, 8)
    assert from_jsonable(to_jsonable(plain))["noise_std"] == {0.08: 0.1, -1: 0.5}


def test_numpy_strings_are_strings_in_a_config():
    assert canonical_json({"optimizer": np.str_("adam")}) == canonical_json({"optimizer": "adam"})


def test_non_string_keys_round_trip_and_hash_whatever_their_order():
    noise = {0.08: 0.1, 0.12: 0.1, -1: 0.5, None: 0.0, (1, "a"): math.inf}
    back = from_jsonable(to_jsonable({"noise_std": noise}))["noise_std"]
    assert back == noise and {(k, type(k)) for k in back} == {(k, type(k)) for k in noise}
    reordered = dict(reversed(list(noise.items())))
    assert config_hash({"noise_std": noise}) == config_hash({"noise_std": reordered})
    assert config_hash({"n": {1: 2}}) != config_hash({"n": {"1": 2}})


def test_the_items_tag_is_reserved():
    with pytest.raises(ConfigError, match="reserved"):
        canonical_json({"x": {"__items__": []}})


def test_a_dict_field_keeps_non_string_keys_and_a_str_field_takes_a_numpy_string():
    from nntransfer.configs import TrainerConfig

    class Noise(TrainerConfig):
        fn = "lab.train"
        noise_std: dict = {}
        optimizer: str = "adam"

    config = Noise(noise_std={0.08: 0.1, -1: 0.5}, optimizer=np.str_("sgd"))
    assert config.noise_std == {0.08: 0.1, -1: 0.5} and type(config.optimizer) is str
    assert Noise.from_json(config.to_json()) == config


STEP0 = {"dataset_fn": "d.f", "dataset_hash": "a" * 32, "model_fn": "m.f", "model_hash": "b" * 32,
         "trainer_fn": "t.f", "trainer_hash": "c" * 32, "seed": 42, "transfer_step": 0, "data_transfer": True,
         "collapsed_history": ""}


def test_nnfabrik_histories_fold_as_nnfabriks_collapsed_history_did():
    from nntransfer.steps import chain_keys, collapse_history

    step1 = collapse_history("", STEP0, "nnfabrik")
    assert step1 == "5f0258926d11ce53f7832d245357e180"
    step1_key = {**STEP0, "transfer_step": 1, "data_transfer": 0, "collapsed_history": step1}
    assert collapse_history(step1, step1_key, "nnfabrik") == "1501eeb981e58eb2d4487fc85e47f0b6"
    configs = {name: STEP0[name] for name in ("dataset_fn", "dataset_hash", "model_fn", "model_hash",
                                              "trainer_fn", "trainer_hash")}
    keys = chain_keys([configs, configs, configs], 42, [True, False, False], hashing="nnfabrik")
    assert [k["collapsed_history"] for k in keys] == ["", step1, "1501eeb981e58eb2d4487fc85e47f0b6"]
    assert collapse_history("", STEP0) != step1  # the canonical default is unchanged
    with pytest.raises(ConfigError, match="hashing must be one of"):
        collapse_history("", STEP0, "md5")
