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


def test_nnfabriks_checkpoint_protocol_resumes_where_the_interrupted_run_stopped(db, tmp_path, monkeypatch):
    flag, log = tmp_path / "interrupt", tmp_path / "epochs"
    flag.touch()
    monkeypatch.setenv("NNF_TEST_INTERRUPT", str(flag))
    monkeypatch.setenv("NNF_TEST_EPOCH_LOG", str(log))
    key = _entries(db, trainer_fn=f"{FNS}.chkpt_trainer_fn",
                   trainer_config={"epochs": 4, "interrupt_after": 2, "chkpt_options": {"keep_best_n": 0}})
    db.TrainedModel.populate(key, reserve_jobs=True, suppress_errors=True)
    assert not db.TrainedModel & key
    assert log.read_text().split() == ["0", "1"]
    stored = db.Checkpoint.to_arrays("checkpoint_name")
    assert list(stored) == ["nnfabrik-000001"]  # keep_last_n=1, keep_best_n=0
    (db.TrainedModel.jobs & "status='error'").delete()  # as nnfabrik's checkpoint notebook does
    db.TrainedModel.populate(key, reserve_jobs=True)
    assert log.read_text().split() == ["0", "1", "2", "3"]  # epochs 0 and 1 were not trained again
    accuracies, epochs = db.TrainedModel().fetch_output(key)
    assert epochs == 4 and len(accuracies) == 4  # the tracker came back from the checkpoint
    assert len(db.Checkpoint()) == 0  # removed once the training is stored


def test_ctrl_c_keeps_the_epoch_the_checkpointing_trainer_just_finished(db, tmp_path, monkeypatch):
    from nntransfer.trainer.interrupt import Interrupted

    log = tmp_path / "epochs"
    monkeypatch.setenv("NNF_TEST_EPOCH_LOG", str(log))
    monkeypatch.setenv("NNF_TEST_SIGINT_AFTER", "1")
    key = _entries(db, trainer_fn=f"{FNS}.chkpt_trainer_fn", trainer_config={"epochs": 3})
    with pytest.raises(Interrupted, match="after epoch 1"):
        db.TrainedModel.populate(key, reserve_jobs=True)
    monkeypatch.delenv("NNF_TEST_SIGINT_AFTER")
    assert not db.TrainedModel & key and log.read_text().split() == ["0", "1"]
    db.TrainedModel.populate(key, reserve_jobs=True)  # the job was given back, not failed
    assert log.read_text().split() == ["0", "1", "2"]  # epoch 1 was saved before the stop: not trained again


def test_the_protocol_keeps_the_best_and_restores_it(db):
    from nntransfer.tables import DatabaseCheckpointStore
    from nntransfer.tables.checkpoint_protocol import answer
    from itest_nnfabrik import digits_dataset_fn, digits_model_fn

    key = _entries(db)
    store = DatabaseCheckpointStore(db.TrainedModel(), key)
    model = digits_model_fn(digits_dataset_fn(7), 7, h_dim=8)
    optimizer = __import__("torch").optim.Adam(model.parameters())
    for epoch, score in enumerate([0.5, 0.9, 0.7, 0.6]):
        for parameter in model.parameters():
            parameter.data.fill_(epoch)
        answer(store, epoch, model, {"action": "save", "score": score, "optimizer": optimizer, "keep_best_n": 1,
                                     "keep_last_n": 1, "keep_selection": (0,), "tracker": [score]})
    assert sorted(e["epoch"] for e in store.list()) == [0, 1, 3]
    state = {"action": "best", "optimizer": optimizer}
    answer(store, -1, model, state)
    assert state["epoch"] == 1 and state["score"] == 0.9 and state["tracker"] == [0.9]
    assert all((p == 1).all() for p in model.parameters())
    state = {"action": "last"}
    answer(store, -1, None, state)
    assert state["epoch"] == 3 and set(state) >= {"net", "optimizer", "tracker"}
    with pytest.raises(Exception, match="'save', 'last' and 'best'"):
        answer(store, 0, model, {"action": "restore"})
    with pytest.raises(Exception, match="cannot hold safely"):
        answer(store, 4, model, {"action": "save", "score": 1.0, "thing": object()})
    store.clear()


def test_a_table_with_state_with_data_hands_on_both_as_nnfabrik_did(db, user_schema):
    """Seed 000's flow: teacher, its logits, a student that starts from the teacher and learns from the logits."""
    from nntransfer import insert
    from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig, TransferExperiment
    from nntransfer.runner import populate_all
    from nntransfer.tables import TransferredTrainedModelBase

    @user_schema
    class BothHandedOn(TransferredTrainedModelBase):
        table_comment = "state and data"
        state_with_data = True

    data = DatasetConfig.for_fn(f"{FNS}.digits_dataset_fn", batch_size=64)
    kd_data = DatasetConfig.for_fn(f"{FNS}.digits_dataset_fn", batch_size=64, shuffle=False)
    model = ModelConfig.for_fn(f"{FNS}.digits_model_fn", h_dim=5)
    chain = TransferExperiment(
        [Experiment(data, model, TrainerConfig.for_fn(f"{FNS}.digits_trainer_fn", epochs=1), seed=7),
         Experiment(data, model, TrainerConfig.for_fn(f"{FNS}.data_gen_fn"), seed=7),
         Experiment(kd_data, model, TrainerConfig.for_fn(f"{FNS}.kd_trainer_fn", epochs=1), seed=7)],
        update=[None, {"data_transfer": True}, None],
    )
    steps = insert(chain, table=BothHandedOn())
    populate_all(BothHandedOn, plan=False)
    student = (BothHandedOn & steps[2]).fetch1()
    assert student["received"] == "state_and_data" and student["load_report"]["loaded"]
    assert student["score"] < 1e-3  # its loss against the teacher's logits before training: it is the teacher
    lineage = BothHandedOn().lineage(steps[2])
    assert [step["hands_on"] for step in lineage] == ["model_state", "state_and_data", "model_state"]
    assert [step["received"] for step in lineage] == ["", "model_state", "state_and_data"]
