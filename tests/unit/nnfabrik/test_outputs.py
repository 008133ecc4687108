"""Trainer outputs come back as the trainer returned them (nnfabrik kept them as blobs)."""

import json
import math

import numpy as np
import pytest

from nntransfer.serialization import output_from_json, output_to_json


def _round_trip(output):
    # through JSON text, as the database column holds it
    return output_from_json(json.loads(json.dumps(output_to_json(output), allow_nan=False)))


def test_a_tuple_output_like_nnfabriks_example_trainer_comes_back_as_a_tuple():
    output = ([97.5, 98.25], 2)
    back = _round_trip(output)
    assert back == output and type(back) is tuple


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8", "bool", "<U5", "complex64"])
def test_arrays_come_back_with_dtype_shape_and_values(dtype):
    array = np.arange(6).reshape(2, 3).astype(dtype)
    back = _round_trip({"scores": array})["scores"]
    assert isinstance(back, np.ndarray) and back.dtype == array.dtype and back.shape == (2, 3)
    np.testing.assert_array_equal(back, array)


def test_nested_structures_keep_their_kinds():
    output = {
        "history": {"loss": [1.0, math.nan], "acc": (0.5, 0.75)},
        "per_unit": [np.ones(2, dtype=np.float32), (1, "a")],
        "by_noise": {0.08: 0.1, -1: 0.5},
        "weird": {"__tuple__": 1},
        "scalar": np.float64(2.5),
        "empty": (),
    }
    back = _round_trip(output)
    assert type(back["history"]["acc"]) is tuple and math.isnan(back["history"]["loss"][1])
    assert back["per_unit"][1] == (1, "a")
    np.testing.assert_array_equal(back["per_unit"][0], np.ones(2, dtype=np.float32))
    assert back["by_noise"] == {0.08: 0.1, -1: 0.5} and back["weird"] == {"__tuple__": 1}
    assert back["scalar"] == 2.5 and back["empty"] == ()


def test_plain_json_outputs_stay_plain_json():
    output = {"history": {"loss": [1.0, 0.5]}, "final": {"test.accuracy": 0.9}}
    assert output_to_json(output) == output


def test_arrays_are_stored_without_pickle():
    stored = output_to_json(np.array([[1.0], [1.0, 2.0]], dtype=object))
    assert stored == [[1.0], [1.0, 2.0]]
