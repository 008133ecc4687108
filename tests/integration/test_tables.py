"""The fabrik tables and TrainedModel on a real database."""

from __future__ import annotations

import pytest
import torch

from nntransfer.errors import ConfigError, DuplicateEntryError, FabrikantError, FunctionResolutionError

DIGITS = "nntransfer.datasets.digits.digits_dataset_fn"
MLP = "nntransfer.models.mlp.mlp_model_fn"
TINY = "itest_functions.tiny_trainer"


def add_basic(db, trainer=TINY, trainer_config=None, seed=3):
    db.Dataset().add_entry(dataset_fn=DIGITS, dataset_config={"batch_size": 64}, dataset_comment="digits")
    db.Model().add_entry(model_fn=MLP, model_config={"hidden_sizes": [16]}, model_comment="mlp")
    db.Trainer().add_entry(trainer_fn=trainer, trainer_config=trainer_config or {}, trainer_comment="tiny")
    db.Seed().insert1({"seed": seed}, skip_duplicates=True)


def test_add_entry_returns_key_and_is_idempotent(db):
    key = db.Dataset().add_entry(dataset_fn=DIGITS, dataset_config={"batch_size": 32})
    again = db.Dataset().add_entry(dataset_fn=DIGITS, dataset_config={"batch_size": 32}, skip_duplicates=True)
    assert key == again
    assert set(key) == {"dataset_fn", "dataset_hash"}
    assert len(db.Dataset()) == 1
    row = (db.Dataset() & key).fetch1()
    assert row["dataset_config"]["batch_size"] == 32  # completed with the function's defaults
    assert row["dataset_config"]["validation_fraction"] == 0.2
    # the defaults written out are the same entry as the defaults left out
    assert db.Dataset().add_entry(dataset_fn=DIGITS, dataset_config=row["dataset_config"]) == key
    assert row["dataset_fabrikant"]  # the current user, added on first use


def test_function_that_does_not_import_inserts_nothing(db):
    with pytest.raises(FunctionResolutionError, match="no_such_module"):
        db.Model().add_entry(model_fn="no_such_module.fn", model_config={})
    with pytest.raises(FunctionResolutionError, match="has no attribute 'nope'"):
        db.Model().add_entry(model_fn="nntransfer.models.mlp.nope", model_config={})
    assert len(db.Model()) == 0


def test_config_that_is_not_json_or_not_in_the_signature_is_rejected(db):
    with pytest.raises(ConfigError, match="batch_size"):
        db.Dataset().add_entry(dataset_fn=DIGITS, dataset_config={"batch_size": object()})
    with pytest.raises(ConfigError, match="batchsize"):
        db.Dataset().add_entry(dataset_fn=DIGITS, dataset_config={"batchsize": 32})
    with pytest.raises(ConfigError, match="transform is of type builtins.object"):
        db.Trainer().add_entry(trainer_fn="itest_functions.kwargs_trainer", trainer_config={"transform": object()})
    assert len(db.Dataset()) == 0 and len(db.Trainer()) == 0


def test_different_config_under_an_existing_key_is_an_error(db):
    from nntransfer.configs import config_class_for
    from nntransfer.hashing import config_hash

    full = config_class_for(DIGITS, "dataset")(batch_size=8).to_dict()
    db.Dataset().insert1(
        {
            "dataset_fn": DIGITS,
            "dataset_hash": config_hash(full),
            "dataset_config": {**full, "batch_size": 9},
            "dataset_fabrikant": db.Fabrikant.get_current_user(),
        }
    )
    with pytest.raises(DuplicateEntryError, match="different configuration"):
        db.Dataset().add_entry(dataset_fn=DIGITS, dataset_config={"batch_size": 8})
    assert len(db.Dataset()) == 1


def test_unknown_fabrikant_is_a_clear_error(db):
    with pytest.raises(FabrikantError, match="'nobody' is not in the Fabrikant table"):
        db.Trainer().add_entry(trainer_fn=TINY, trainer_config={}, trainer_fabrikant="nobody")
    db.Fabrikant().insert1({"fabrikant_name": "ada", "dj_username": "ada"})
    key = db.Trainer().add_entry(trainer_fn=TINY, trainer_config={}, trainer_fabrikant="ada")
    assert (db.Trainer() & key).fetch1("trainer_fabrikant") == "ada"


def test_populate_trains_outside_a_transaction_and_stores_the_state(db, store_dir):
    add_basic(db)
    result = db.TrainedModel.populate(reserve_jobs=True)
    assert result["success_count"] == 1
    row = db.TrainedModel().fetch1()
    assert 0.0 <= row["score"] <= 1.0
    assert row["output"]["transaction_open_while_training"] is False
    assert row["comment"] == "digits. mlp. tiny"
    storage = db.TrainedModel.ModelStorage().fetch1()
    assert (store_dir / storage["model_state"]).is_file()
    dataloaders, model = db.TrainedModel().load_model()
    assert set(dataloaders) == {"train", "validation", "test"}
    stored = db.TrainedModel().fetch_state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, stored[name])
    # a second populate finds nothing to do
    assert db.TrainedModel.populate(reserve_jobs=True)["success_count"] == 0


def test_trainer_error_marks_the_job_and_leaves_nothing(db, store_dir):
    add_basic(db, trainer="itest_functions.failing_trainer", trainer_config={"message": "exploded at epoch 3"})
    result = db.TrainedModel.populate(reserve_jobs=True, suppress_errors=True)
    assert result["success_count"] == 0 and len(result["error_list"]) == 1
    assert len(db.TrainedModel()) == 0 and len(db.TrainedModel.ModelStorage()) == 0
    errors = db.TrainedModel.jobs.errors.to_dicts()
    assert len(errors) == 1 and "exploded at epoch 3" in errors[0]["error_message"]
    key = db.TrainedModel.key_source.fetch1("KEY")
    path = db.ArtifactStore.path_for(db.TrainedModel(), key, "model_state.pt")
    assert not (store_dir / path).parent.exists()


def test_transfer_data_goes_to_the_store(db):
    add_basic(db, trainer="itest_functions.data_trainer")
    db.TrainedModel.populate()
    data = db.TrainedModel().fetch_transfer_data()
    n = len(db.TrainedModel().load_model()[0]["train"].dataset)
    assert data["train"]["logits"].shape == (n, 2)
    assert "transfer_data" not in db.TrainedModel().fetch1("output")
    # what it was computed on travels with it: the generating step's dataset
    key = db.TrainedModel().fetch1("KEY")
    assert str(data["train"]["provenance.dataset_fn"]) == key["dataset_fn"]
    assert str(data["train"]["provenance.dataset_hash"]) == key["dataset_hash"]


def test_template_table_in_a_users_own_schema(db, user_schema):
    @user_schema
    class MyTrainedModel(db.TrainedModelBase):
        table_comment = "my trained models"

    add_basic(db)
    MyTrainedModel.populate()
    assert len(MyTrainedModel()) == 1
    assert len(MyTrainedModel.ModelStorage()) == 1
    assert MyTrainedModel.ModelStorage is not db.TrainedModel.ModelStorage
    model = MyTrainedModel().load_model(include_dataloader=False)
    assert isinstance(model, torch.nn.Module)


def test_configs_and_experiments_insert_idempotently(db):
    from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig

    dataset = DatasetConfig.for_fn(DIGITS, batch_size=32, comment="first")
    model = ModelConfig.for_fn(MLP, hidden_sizes=[8])
    trainer = TrainerConfig.for_fn(TINY, steps=1, lr=float("nan"))
    experiment = Experiment(dataset, model, trainer, seed=[1, 2])
    keys = db.insert(experiment)
    assert keys == db.insert(experiment) == experiment.keys()
    assert len(db.Dataset()) == len(db.Model()) == len(db.Trainer()) == 1 and len(db.Seed()) == 2
    # the comment is not hashed: the same config with another comment is the same entry
    assert db.insert(DatasetConfig.for_fn(DIGITS, batch_size=32, comment="second")) == dataset.key
    fn, config = db.Trainer().get_config(trainer.key)
    assert fn == TINY and config["lr"] != config["lr"]  # NaN survives the round trip
    assert type(trainer).from_dict(config) == trainer
    assert len(db.TrainedModel.key_source & keys) == 2


def test_a_failed_training_resumes_from_its_database_checkpoint(db, tmp_path):
    from nntransfer.builder import get_data, get_model
    from nntransfer.trainer.standard import standard_trainer

    marker = str(tmp_path / "crashed")
    add_basic(db, trainer="itest_functions.crash_once_trainer",
              trainer_config={"marker": marker, "epochs": 4, "lr": 0.01, "modules": {"checkpointing": {}}})
    first = db.TrainedModel.populate(reserve_jobs=True, suppress_errors=True)
    assert "node lost after epoch 2" in first["error_list"][0][1]
    assert len(db.Checkpoint()) > 0
    db.TrainedModel.jobs.errors.delete()  # what `nntransfer retry` does
    assert db.TrainedModel.populate(reserve_jobs=True)["success_count"] == 1
    output = db.TrainedModel().fetch_output()
    assert output["resumed_from"] == 2 and output["epochs"] == 4
    assert len(db.Checkpoint()) == 0  # removed once the result is stored

    dataloaders = get_data(DIGITS, {"batch_size": 64}, 3)
    _, _, expected = standard_trainer(get_model(MLP, {"hidden_sizes": [16]}, dataloaders, 3), dataloaders, 3,
                                      epochs=4, lr=0.01)
    stored = db.TrainedModel().fetch_state_dict()
    for name, tensor in expected.items():
        assert torch.equal(stored[name], tensor), name


@pytest.mark.parametrize("score_type", ["float32", "tensor"])
def test_a_numpy_or_tensor_score_is_stored_not_dropped(db, score_type):
    add_basic(db, trainer="itest_functions.numpy_score_trainer", trainer_config={"score_type": score_type})
    db.TrainedModel.populate()
    assert db.TrainedModel().fetch1("score") == pytest.approx(0.75)


def test_a_declared_config_class_inserts_the_row_its_key_selects(db):
    from nntransfer.configs import TrainerConfig
    from nntransfer.errors import ConfigError

    class Tiny(TrainerConfig):
        fn = TINY
        steps: int = 2
        lr: float = 0.1
        state_floats: int = 0

    class OnlySteps(TrainerConfig):
        fn = TINY
        steps: int = 2

    config = Tiny(steps=1)
    assert db.insert(config) == config.key
    assert len(db.Trainer() & config.key) == 1
    # the table completes configs with the function's defaults, so a class that
    # leaves some out would hash to a key that selects no row
    with pytest.raises(ConfigError, match=r"does not hash the parameters \['lr', 'state_floats'\]"):
        db.insert(OnlySteps(steps=3))
    assert len(db.Trainer()) == 1


def test_an_experiment_with_one_bad_option_inserts_nothing(db):
    from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig
    from nntransfer.errors import ConfigError

    class OnlySteps(TrainerConfig):
        fn = TINY
        steps: int = 2

    good = Experiment(DatasetConfig.for_fn(DIGITS), ModelConfig.for_fn(MLP), TrainerConfig.for_fn(TINY), seed=[1, 2])
    bad = Experiment(good.dataset, good.model, OnlySteps(), seed=3)
    # the trainer is checked after the dataset and model: nothing of them may stay behind
    with pytest.raises(ConfigError, match="does not hash the parameters"):
        db.insert(bad)
    assert len(db.Dataset()) == len(db.Model()) == len(db.Trainer()) == len(db.Seed()) == 0
    assert db.insert(good) == good.keys()


def test_add_entry_and_insert_are_one_path(db):
    """add_entry(nnfabrik keywords) and insert(config) check alike and give the same row."""
    from nntransfer.configs import ModelConfig
    from nntransfer.errors import ConfigError

    key = db.Model().add_entry(model_fn=MLP, model_config={"hidden_sizes": [8]}, model_comment="by add_entry")
    assert db.insert(ModelConfig.for_fn(MLP, hidden_sizes=[8])) == key
    assert len(db.Model()) == 1
    for bad in ({"transfer": {"exclde": ["classifier"]}}, {"hidden_size": [8]}):
        with pytest.raises(ConfigError, match="exclude|hidden_sizes"):
            db.Model().add_entry(model_fn=MLP, model_config=bad)
    assert len(db.Model()) == 1


def test_a_comment_longer_than_its_column_is_a_config_error(db):
    from nntransfer.errors import ConfigError

    with pytest.raises(ConfigError, match="dataset_comment has 300 characters, but its column holds 256"):
        db.Dataset().add_entry(dataset_fn=DIGITS, dataset_config={}, dataset_comment="x" * 300)
    assert len(db.Dataset()) == 0
