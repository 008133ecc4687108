"""Scores, outputs and artifacts as the tables store them, without a database."""

import math

import numpy as np
import pytest
import torch

from nntransfer.serialization import score_to_float


@pytest.mark.parametrize(
    "score",
    [0.75, np.float32(0.75), np.float64(0.75), np.array(0.75, dtype=np.float32), torch.tensor(0.75), 3, np.int64(3)],
)
def test_numeric_scores_of_any_numeric_type_are_kept(score):
    value = score_to_float(score)
    assert type(value) is float
    assert value == float(score)


@pytest.mark.parametrize(
    "score", [None, math.nan, np.float32("nan"), math.inf, torch.tensor(float("-inf")), [0.5], "0.5", True, torch.ones(2)]
)
def test_what_is_not_one_finite_number_is_stored_as_null(score):
    assert score_to_float(score) is None


def test_output_values_of_subclasses_of_plain_types_are_stored_as_their_values():
    """An output is converted after training; a stray enum must not fail the insert."""
    import enum

    from nntransfer.serialization import output_from_json, output_to_json

    class Phase(enum.IntEnum):
        TRAIN = 1

    class Mode(str, enum.Enum):
        FAST = "fast"

    class Ratio(float):
        pass

    stored = output_to_json({"phase": Phase.TRAIN, "mode": Mode.FAST, "ratio": Ratio(0.5), "flag": np.bool_(True)})
    assert stored == {"phase": 1, "mode": "fast", "ratio": 0.5, "flag": True}
    assert [type(stored[name]) for name in ("phase", "mode", "ratio", "flag")] == [int, str, float, bool]
    assert output_from_json(stored) == stored


def test_output_keeps_nan_and_turns_other_objects_into_their_repr():
    from nntransfer.serialization import output_from_json, output_to_json

    stored = output_to_json({"loss": [np.float32("nan"), 1.0], "items": {1, 2}, "curve": torch.tensor([1.0, 2.0])})
    restored = output_from_json(stored)
    assert math.isnan(restored["loss"][0]) and restored["loss"][1] == 1.0
    assert restored["items"] == "{1, 2}" and restored["curve"] == [1.0, 2.0]


def test_transfer_data_round_trips_and_object_arrays_are_refused_when_written():
    from nntransfer.errors import TransferError
    from nntransfer.serialization import transfer_data_from_bytes, transfer_data_to_bytes

    logits = np.arange(6, dtype=np.float32).reshape(3, 2)
    restored = transfer_data_from_bytes(transfer_data_to_bytes({"train": {"logits": logits}}))
    np.testing.assert_array_equal(restored["train"]["logits"], logits)
    ragged = np.array([[1.0], [1.0, 2.0]], dtype=object)
    with pytest.raises(TransferError, match="'train/logits' is an array of Python objects"):
        transfer_data_to_bytes({"train": {"logits": ragged}})
