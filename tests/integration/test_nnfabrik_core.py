"""What nnfabrik's functions need from the core tables, tested with functions in nnfabrik's style."""

from __future__ import annotations

import numpy as np
import pytest

FNS = "itest_nnfabrik"


def _entries(tables, trainer_fn=f"{FNS}.digits_trainer_fn", trainer_config=None, model_config=None):
    keys = {}
    keys.update(tables.Dataset().add_entry(dataset_fn=f"{FNS}.digits_dataset_fn", dataset_config={"batch_size": 64}))
    keys.update(tables.Model().add_entry(model_fn=f"{FNS}.digits_model_fn", model_config=model_config or {"h_dim": 8}))
    keys.update(tables.Trainer().add_entry(trainer_fn=trainer_fn, trainer_config=trainer_config or {"epochs": 1}))
    tables.Seed().insert1({"seed": 7}, skip_duplicates=True)
    return {**keys, "seed": 7}


def test_a_tuple_output_is_stored_and_comes_back_as_a_tuple(db):
    key = _entries(db)
    db.TrainedModel.populate(key)
    output = db.TrainedModel().fetch_output(key)
    assert type(output) is tuple and output[1] == 1 and isinstance(output[0], list)
    assert db.TrainedModel().load_model(key)[1] is not None


def test_arrays_and_non_string_keys_in_an_output_come_back(db):
    key = _entries(db, trainer_fn=f"{FNS}.array_trainer_fn", trainer_config={})
    db.TrainedModel.populate(key)
    output = db.TrainedModel().fetch_output(key)
    np.testing.assert_array_equal(output["per_unit"], np.arange(4, dtype=np.float32))
    assert output["per_unit"].dtype == np.float32
    assert output["by_noise"] == {0.08: 1.0, -1: 2.0} and output["best"] == 3
    assert (db.TrainedModel & key).fetch1("score") == 0.5
