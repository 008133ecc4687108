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
