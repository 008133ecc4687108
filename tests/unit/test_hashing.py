"""Canonical JSON and hashes: the pinned values below must never change.

A changed value means every row already in somebody's database would get a
new identity; if that is truly intended, it needs a migration, not a test edit.
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import nntransfer
from nntransfer.errors import ConfigError
from nntransfer.hashing import canonical_json, config_hash, from_jsonable, to_jsonable
from nntransfer.steps import collapse_history

PINNED = [
    ({}, "2afb9b83f9314e5d029766197f539792"),
    ({"batch_size": 64, "lr": 0.1}, "7f26f343b089f3df2b29bceed14c7e8e"),
    ({"lr": 1.0}, "8cb0e9191718477b495ae30c33f5b3b8"),
    ({"lr": 1}, "bf93dd6a86b5a148085643ead51ab782"),
    (
        {"b": (1, 2.5), "a": {"z": None, "y": True}, "n": math.nan, "i": -math.inf, "s": "ü"},
        "c45af370f0c35dcd547851abbd2c94ff",
    ),
]

STEP0_KEY = {
    "dataset_fn": "d.f",
    "dataset_hash": "a" * 32,
    "model_fn": "m.f",
    "model_hash": "b" * 32,
    "trainer_fn": "t.f",
    "trainer_hash": "c" * 32,
    "seed": 42,
    "transfer_step": 0,
    "data_transfer": True,
}
STEP1_HISTORY = "e7b920de0937f301fb89035be7744c03"
STEP2_HISTORY = "426acb83f95467595db55f7ec4b71a42"


@pytest.mark.parametrize(("config", "expected"), PINNED)
def test_config_hash_is_pinned(config, expected):
    assert config_hash(config) == expected


def test_pinned_hashes_hold_in_other_processes():
    """Hashes must not depend on the interpreter's string-hash randomisation."""
    script = (
        "import math\n"
        "from nntransfer.hashing import config_hash\nfrom nntransfer.steps import collapse_history\n"
        f"configs = {[c for c, _ in PINNED[:4]]!r}\n"
        "print(' '.join(config_hash(c) for c in configs))\n"
        f"print(collapse_history('', {STEP0_KEY!r}))\n"
    )
    expected = " ".join(h for _, h in PINNED[:4]) + "\n" + STEP1_HISTORY + "\n"
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(nntransfer.__file__)))
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=package_parent)
        result = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        assert result.stdout == expected


def test_key_order_does_not_matter():
    assert config_hash({"a": 1, "b": {"x": 1, "y": 2}}) == config_hash({"b": {"y": 2, "x": 1}, "a": 1})


def test_canonical_form_is_compact_sorted_and_exact():
    text = canonical_json({"b": (1, 0.1), "a": {"z": None, "y": True}, "c": 1e-300})
    assert text == '{"a":{"y":true,"z":null},"b":[1,0.1],"c":1e-300}'


def test_special_floats_are_tagged():
    text = canonical_json({"n": math.nan, "p": math.inf, "m": -math.inf})
    assert text == '{"m":{"__float__":"-inf"},"n":{"__float__":"nan"},"p":{"__float__":"inf"}}'


def test_int_float_and_bool_are_distinct():
    assert len({config_hash({"x": 1}), config_hash({"x": 1.0}), config_hash({"x": True})}) == 3


def test_tuple_and_list_hash_the_same():
    assert config_hash({"x": (1, 2)}) == config_hash({"x": [1, 2]})


def test_numpy_scalars_are_python_numbers():
    native = {"i": 3, "f": 0.5, "b": False}
    numpy_valued = {"i": np.int64(3), "f": np.float64(0.5), "b": np.bool_(False)}
    assert canonical_json(numpy_valued) == canonical_json(native)


def test_numpy_array_is_refused_with_a_hint():
    with pytest.raises(ConfigError, match=r"config\['w'\] is a numpy array.*tolist"):
        canonical_json({"w": np.zeros(3)})


@pytest.mark.parametrize("value", [{1, 2}, b"raw", object(), len, 1 + 2j])
def test_unsupported_values_name_their_path_and_type(value):
    config = {"modules": {"x": [0, value]}}
    with pytest.raises(ConfigError, match=r"trainer_config\['modules'\]\['x'\]\[1\] is of type"):
        canonical_json(config, "trainer_config")


def test_tensor_is_refused():
    torch = pytest.importorskip("torch")
    with pytest.raises(ConfigError, match="torch.Tensor"):
        config_hash({"w": torch.zeros(2)})


def test_non_string_keys_are_tagged_so_1_and_the_string_1_stay_apart():
    assert canonical_json({1: "a"}) == '{"__items__":[[1,"a"]]}'
    assert canonical_json({1: "a"}) != canonical_json({"1": "a"})
    with pytest.raises(ConfigError, match="dict key"):
        canonical_json({frozenset(): 1})


def test_reserved_float_tag_key_is_refused():
    with pytest.raises(ConfigError, match="reserved"):
        canonical_json({"x": {"__float__": "nan"}})


def test_config_hash_needs_a_dict():
    with pytest.raises(ConfigError, match="needs a dict"):
        config_hash([("a", 1)])


def test_jsonable_round_trip_restores_special_floats():
    value = {"n": math.nan, "p": math.inf, "m": -math.inf, "l": [1.5, {"q": None}]}
    restored = from_jsonable(to_jsonable(value))
    assert math.isnan(restored["n"])
    assert restored["p"] == math.inf and restored["m"] == -math.inf
    assert restored["l"] == [1.5, {"q": None}]


def test_collapse_history_is_pinned_over_two_steps():
    step1 = collapse_history("", STEP0_KEY)
    assert step1 == STEP1_HISTORY
    step1_key = dict(STEP0_KEY, transfer_step=1, data_transfer=False, collapsed_history=step1)
    assert collapse_history(step1, step1_key) == STEP2_HISTORY


def test_collapse_history_ignores_extra_fields_and_normalises_db_types():
    fetched = dict(STEP0_KEY, seed=np.int64(42), transfer_step=np.int32(0), data_transfer=1, score=0.9)
    assert collapse_history("", fetched) == STEP1_HISTORY


@pytest.mark.parametrize(
    "field", ["dataset_hash", "model_fn", "trainer_hash", "seed", "transfer_step", "data_transfer"]
)
def test_collapse_history_depends_on_every_key_field(field):
    changed = dict(STEP0_KEY)
    changed[field] = {"seed": 7, "transfer_step": 3, "data_transfer": False}.get(field, "other")
    assert collapse_history("", changed) != STEP1_HISTORY


def test_collapse_history_depends_on_previous_history():
    assert collapse_history("x" * 32, STEP0_KEY) != STEP1_HISTORY


def test_collapse_history_reports_missing_fields():
    incomplete = {k: v for k, v in STEP0_KEY.items() if k != "trainer_hash"}
    with pytest.raises(ConfigError, match="trainer_hash"):
        collapse_history("", incomplete)


def test_collapse_history_refuses_inconsistent_history():
    with pytest.raises(ConfigError, match="collapsed_history"):
        collapse_history("", dict(STEP0_KEY, collapsed_history="f" * 32))


@pytest.mark.parametrize(
    ("field", "value"), [("seed", True), ("seed", "42"), ("data_transfer", 2), ("model_hash", 5)]
)
def test_collapse_history_refuses_bad_field_types(field, value):
    with pytest.raises(ConfigError, match=field):
        collapse_history("", dict(STEP0_KEY, **{field: value}))
