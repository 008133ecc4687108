"""TransferredTrainedModel and the recipes: nnfabrik's transfer tutorial on digits."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from nntransfer.errors import ConfigError, TransferError

DIGITS = "nntransfer.datasets.digits.digits_dataset_fn"
MLP = "nntransfer.models.mlp.mlp_model_fn"
STANDARD = "nntransfer.trainer.standard.standard_trainer"
GENERATE = "nntransfer.trainer.generate.generate_transfer_data"
TRAIN = {"epochs": 1, "lr": 0.01}
DISTILL = {"epochs": 1, "lr": 0.01, "modules": {"distillation": {"temperature": 2.0, "alpha": 0.5}}}


@pytest.fixture
def tt(db):
    """The tables, with transfer tables, recipes and checkpoints emptied and no recipe registered."""
    from nntransfer.tables import recipes

    for recipe in recipes.recipe_tables():
        recipe.delete_quick()
    db.Checkpoint().delete_quick()
    db.TransferredTrainedModel.jobs.delete()
    db.TransferredTrainedModel.transfer_recipe = []
    yield db
    db.TransferredTrainedModel.transfer_recipe = []


def add(db, kind, fn, config, comment=""):
    table = {"dataset": db.Dataset, "model": db.Model, "trainer": db.Trainer}[kind]
    return table().add_entry(fn=fn, config=config, comment=comment)


def first_step(db, model_config=None):
    """Tutorial 1: one dataset, model, trainer and seed; step 0 trained."""
    mnist = add(db, "dataset", DIGITS, {"batch_size": 64}, "digits")
    model = add(db, "model", MLP, model_config or {"hidden_sizes": [16]}, "mlp")
    trainer = add(db, "trainer", STANDARD, TRAIN, "train")
    db.Seed().insert1({"seed": 1})
    result = db.TransferredTrainedModel.populate()
    assert result["success_count"] == 1
    return mnist, model, trainer


def test_seed_000_flow_with_three_recipe_kinds(tt):
    db = tt
    TransferredTrainedModel = db.TransferredTrainedModel
    mnist, model, trainer = first_step(db)
    step0 = TransferredTrainedModel().fetch1()
    assert (step0["transfer_step"], step0["collapsed_history"], step0["received"]) == (0, "", "")

    # Model-state transfer to augmented data
    augmented = add(db, "dataset", DIGITS, {"batch_size": 64, "augmentation": {"noise": 0.05}}, "augmented")
    db.DatasetTransferRecipe().add_entry(transfer_from=mnist, transfer_to=augmented, transfer_step=1)
    TransferredTrainedModel.transfer_recipe = [db.DatasetTransferRecipe()]
    assert TransferredTrainedModel.populate()["success_count"] == 1
    moved = (TransferredTrainedModel & {"transfer_step": 1}).fetch1()
    assert moved["dataset_hash"] == augmented["dataset_hash"] and moved["trainer_hash"] == trainer["trainer_hash"]
    assert moved["received"] == "model_state"
    assert moved["load_report"]["loaded"] and not moved["load_report"]["shape_mismatched"]
    # nothing new to do: a second call plans and trains nothing
    assert TransferredTrainedModel.populate()["success_count"] == 0

    # Data transfer, step 1: the logit generator
    generator = add(db, "trainer", GENERATE, {}, "Transfer digits logits")
    db.TrainerTransferRecipe().add_entry(transfer_from=trainer, transfer_to=generator, transfer_step=1, data_transfer=True)
    TransferredTrainedModel.transfer_recipe = [db.TrainerTransferRecipe()]
    assert TransferredTrainedModel.populate()["success_count"] == 1
    generated_key = (TransferredTrainedModel & generator).fetch1("KEY")
    logits = TransferredTrainedModel().fetch_transfer_data(generated_key)
    assert set(logits) == {"train", "validation", "test"} and logits["train"]["logits"].shape[1] == 10

    # Data transfer, step 2: the student trains on the logits
    student = add(db, "trainer", STANDARD, DISTILL, "Use transferred logits")
    kd_data = add(db, "dataset", DIGITS, {"batch_size": 64, "augmentation": {"noise": 0.05}, "return_index": True}, "KD")
    db.TrainerDatasetTransferRecipe().add_entry(
        transfer_from={**generator, **mnist}, transfer_to={**student, **kd_data}, transfer_step=2, data_transfer=False
    )
    TransferredTrainedModel.transfer_recipe = [db.TrainerDatasetTransferRecipe()]
    assert TransferredTrainedModel.populate()["success_count"] == 1
    final = (TransferredTrainedModel & {"transfer_step": 2}).fetch1()
    assert final["received"] == "transfer_data"
    assert final["output"]["epochs"] == 1
    assert len(TransferredTrainedModel()) == 4

    chain = TransferredTrainedModel().lineage((TransferredTrainedModel & {"transfer_step": 2}).fetch1("KEY"))
    assert [item["key"]["transfer_step"] for item in chain] == [0, 1, 2]
    assert [item["received"] for item in chain] == ["", "model_state", "transfer_data"]
    assert chain[1]["key"]["trainer_fn"] == GENERATE and chain[0]["key"]["trainer_fn"] == STANDARD
    text = TransferredTrainedModel().describe_lineage(final)
    assert "received the previous step's generated data" in text and "LoadReport" in text


def test_three_step_chain_with_both_transfers_and_partial_load(tt):
    """Step 0 -> (state, new head) -> step 1 generates logits -> step 2 student of another size."""
    db = tt
    T = db.TransferredTrainedModel
    mnist, model, trainer = first_step(db, {"hidden_sizes": [16]})
    reset_head = add(db, "model", MLP, {"hidden_sizes": [16], "transfer": {"exclude": ["classifier"]}}, "new head")
    db.ModelTransferRecipe().add_entry(transfer_from=model, transfer_to=reset_head, transfer_step=1)
    T.transfer_recipe = [db.ModelTransferRecipe()]
    assert T.populate()["success_count"] == 1
    report = (T & {"transfer_step": 1}).fetch1("load_report")
    assert report["excluded"] and all(name.startswith("classifier") for name in report["excluded"])
    assert report["loaded"]

    generator = add(db, "trainer", GENERATE, {}, "logits")
    db.TrainerTransferRecipe().add_entry(transfer_from=trainer, transfer_to=generator, transfer_step=1, data_transfer=True)
    T.transfer_recipe = [db.ModelTransferRecipe(), db.TrainerTransferRecipe()]
    assert T.populate()["success_count"] == 1
    small = add(db, "model", MLP, {"hidden_sizes": [8]}, "student")
    student = add(db, "trainer", STANDARD, DISTILL, "student")
    db.TrainedModelTransferRecipe().add_entry(
        transfer_from={**mnist, **model, **generator}, transfer_to={**mnist, **small, **student}, transfer_step=2
    )
    T.transfer_recipe = [db.ModelTransferRecipe(), db.TrainerTransferRecipe(), db.TrainedModelTransferRecipe()]
    assert T.populate()["success_count"] == 1
    last = (T & {"transfer_step": 2}).fetch1()
    assert last["model_hash"] == small["model_hash"] and last["received"] == "transfer_data"
    # lineage from step 2 back to step 0 goes through the generator, not the head-reset branch
    chain = T().lineage(last)
    assert [item["key"]["trainer_fn"] for item in chain] == [STANDARD, GENERATE, STANDARD]
    assert chain[1]["key"]["model_hash"] == model["model_hash"]
    # the generated logits are the step-0 model's: load it and compare
    teacher = T().load_model(chain[0]["key"], include_dataloader=False)
    data = db.Dataset().get_dataloader(1, mnist)
    first_inputs = data["validation"].dataset[0][0].unsqueeze(0)
    stored = T().fetch_transfer_data(chain[1]["key"])["validation"]["logits"][0]
    np.testing.assert_allclose(teacher.eval()(first_inputs)[0].detach().numpy(), stored, rtol=1e-4, atol=1e-5)


def test_state_that_matches_nothing_is_an_error_recorded_with_the_job(tt):
    db = tt
    T = db.TransferredTrainedModel
    mnist, model, trainer = first_step(db)
    renamed = add(db, "model", MLP, {"hidden_sizes": [16], "transfer": {"include": ["nothing_like_this"]}}, "bad")
    db.ModelTransferRecipe().add_entry(transfer_from=model, transfer_to=renamed, transfer_step=1)
    T.transfer_recipe = [db.ModelTransferRecipe()]
    result = T.populate(reserve_jobs=True, suppress_errors=True)
    assert result["success_count"] == 0 and len(result["error_list"]) == 1
    assert "no entry of the state_dict fits the model" in T.jobs.errors.fetch1("error_message")


def test_transfer_data_of_the_wrong_length_names_both_lengths(tt):
    db = tt
    T = db.TransferredTrainedModel
    mnist = add(db, "dataset", DIGITS, {"batch_size": 64}, "digits")
    add(db, "model", MLP, {"hidden_sizes": [4]})
    data_trainer = add(db, "trainer", "itest_functions.data_trainer", {})
    db.Seed().insert1({"seed": 1})
    chain = [
        {**mnist, **(db.Model & {}).fetch1("KEY"), **data_trainer, "seed": 1, "transfer_step": 0,
         "data_transfer": True, "collapsed_history": ""},
    ]
    other = add(db, "dataset", DIGITS, {"batch_size": 64, "test_fraction": 0.5}, "other split")
    from nntransfer.steps import collapse_history

    trainer = add(db, "trainer", STANDARD, TRAIN)
    chain.append({**chain[0], **other, **trainer, "transfer_step": 1, "data_transfer": False,
                  "collapsed_history": collapse_history("", chain[0])})
    assert T().plan_chain(chain) == 2
    result = T.populate(plan=False, suppress_errors=True)
    assert result["success_count"] == 1 and not result["error_list"]  # step 1 waits for step 0
    result = T.populate(plan=False, suppress_errors=True)
    message = str(result["error_list"][0][1])
    assert "has 1077 rows" in message and "538 samples" in message


def test_recipe_errors_and_no_ops(tt, caplog):
    db = tt
    mnist, model, trainer = first_step(db)
    other = add(db, "dataset", DIGITS, {"batch_size": 32})
    recipe = db.DatasetTransferRecipe()
    key = recipe.add_entry(transfer_from=mnist, transfer_to=other, transfer_step=1)
    assert recipe.add_entry(transfer_from=mnist, transfer_to=other, transfer_step=1) == key
    assert len(recipe) == 1
    with pytest.raises(TransferError, match="cycle"):
        recipe.add_entry(transfer_from=mnist, transfer_to=mnist, transfer_step=1)
    with pytest.raises(TransferError, match="no recipe plans step 2"):
        db.ModelTransferRecipe().add_entry(transfer_from=model, transfer_to=model | {"model_hash": "0" * 32},
                                           transfer_step=3)
    with pytest.raises(ConfigError, match="must have the keys"):
        recipe.add_entry(transfer_from={**mnist, **model}, transfer_to=other, transfer_step=1)
    with pytest.raises(ConfigError, match=">= 1"):
        recipe.add_entry(transfer_from=mnist, transfer_to=other, transfer_step=0)
    with caplog.at_level(logging.WARNING):
        missing = {"dataset_fn": DIGITS, "dataset_hash": "f" * 32}
        assert recipe.add_entry(transfer_from=missing, transfer_to=other, transfer_step=1) is None
    assert "matches no Dataset entry" in caplog.text and "f" * 32 in caplog.text
    assert len(recipe) == 1


def test_hand_made_history_is_refused(tt):
    db = tt
    mnist, model, trainer = first_step(db)
    step0 = db.TransferredTrainedModel().fetch1("KEY")
    forged = {**step0, "transfer_step": 1, "collapsed_history": "x" * 32}
    with pytest.raises(TransferError, match="collapsed_history"):
        db.TransferredTrainedModel().plan_chain([step0, forged])
    with pytest.raises(TransferError, match="skip"):
        db.TransferredTrainedModel().plan_chain([step0, {**forged, "transfer_step": 2}])


def test_user_schema_gets_its_own_plan_table(tt, user_schema):
    from nntransfer.tables import TransferredTrainedModelBase

    @user_schema
    class TransferredTrainedModel(TransferredTrainedModelBase):
        table_comment = "Transferred trained models"

    db = tt
    add(db, "dataset", DIGITS, {"batch_size": 64})
    add(db, "model", MLP, {"hidden_sizes": [4]})
    add(db, "trainer", STANDARD, TRAIN)
    db.Seed().insert1({"seed": 2})
    assert TransferredTrainedModel.populate()["success_count"] == 1
    assert TransferredTrainedModel.plan_table.database == user_schema.database
    assert len(db.TransferredTrainedModel.plan_table()) == 0
    key = TransferredTrainedModel().fetch1("KEY")
    state = TransferredTrainedModel().fetch_state_dict(key)
    assert all(isinstance(value, torch.Tensor) for value in state.values())


def test_several_recipes_combine_for_one_step(tt):
    """Each registered recipe plans its own successors of the same done step."""
    db = tt
    mnist, model, trainer = first_step(db)
    augmented = add(db, "dataset", DIGITS, {"batch_size": 64, "augmentation": {"noise": 0.05}}, "augmented")
    longer = add(db, "trainer", STANDARD, {"epochs": 2, "lr": 0.01}, "two epochs")
    db.DatasetTransferRecipe().add_entry(transfer_from=mnist, transfer_to=augmented, transfer_step=1)
    db.TrainerTransferRecipe().add_entry(transfer_from=trainer, transfer_to=longer, transfer_step=1)
    db.TransferredTrainedModel.transfer_recipe = [db.DatasetTransferRecipe(), db.TrainerTransferRecipe()]
    assert db.TransferredTrainedModel.populate()["success_count"] == 2
    step1 = (db.TransferredTrainedModel & {"transfer_step": 1}).to_dicts()
    changed = sorted((row["dataset_hash"] == augmented["dataset_hash"], row["trainer_hash"] == longer["trainer_hash"])
                     for row in step1)
    assert changed == [(False, True), (True, False)]  # each recipe changed only its own config
    step0 = (db.TransferredTrainedModel & {"transfer_step": 0}).fetch1()
    assert {row["collapsed_history"] for row in step1} == {step0["successor_history"]}
    assert all(row["received"] == "model_state" for row in step1)
    assert db.TransferredTrainedModel.populate()["success_count"] == 0
