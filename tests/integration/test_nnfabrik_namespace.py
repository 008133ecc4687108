"""nnfabrik's tutorials and API through nntransfer.nnfabrik, with functions written in nnfabrik's style.

The flows follow nnfabrik's three notebooks (nnfabrik_example, checkpoint_example,
transfer_example / tutorial 3 of seed 000) with only the imports changed,
on scikit-learn's digits instead of MNIST (see ``itest_nnfabrik``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

FNS = "itest_nnfabrik"
DATA = f"{FNS}.digits_dataset_fn"
MODEL = f"{FNS}.digits_model_fn"
TRAIN = f"{FNS}.digits_trainer_fn"


def _example_module(suffix):
    """nnfabrik's example module (nnfabrik/examples/nnfabrik.py): my_nnfabrik with the recipe tables."""
    from nntransfer.nnfabrik import dj

    dj.config["enable_python_native_blobs"] = True  # what nnfabrik's notebooks write; accepted
    from nntransfer.nnfabrik.main import my_nnfabrik
    from nntransfer.nnfabrik.templates.transfer.recipes import (
        DatasetTransferRecipe,
        ModelTransferRecipe,
        TrainedModelTransferRecipe,
        TrainerDatasetTransferRecipe,
        TrainerTransferRecipe,
    )
    module = my_nnfabrik(
        f"{os.environ['NNTRANSFER_SCHEMA']}_{suffix}",
        additional_tables=(TrainedModelTransferRecipe, DatasetTransferRecipe, ModelTransferRecipe,
                           TrainerTransferRecipe, TrainerDatasetTransferRecipe),
    )
    module.Fabrikant().insert1(dict(fabrikant_name="Your Name", email="your@email.com", affiliation="thelab",
                                    dj_username="yourname"), skip_duplicates=True)
    return module


@pytest.fixture(scope="module")
def nnf(nnfabrik_main):
    """The example module of most tests; the transfer tutorial gets its own (its populate takes every entry)."""
    module = _example_module("nnfex")
    yield module
    module.schema.drop()


@pytest.fixture
def fresh_nnf(nnf):
    module = _example_module("nnftr")
    yield module
    module.schema.drop()


def _tutorial_entries(nnf, h_dim=5, epochs=1):
    keys = {}
    keys.update(nnf.Dataset().add_entry(dataset_fn=DATA, dataset_config=dict(batch_size=64),
                                        dataset_fabrikant="Your Name", dataset_comment="digits",
                                        skip_duplicates=True))
    keys.update(nnf.Model().add_entry(model_fn=MODEL, model_config=dict(h_dim=h_dim), model_fabrikant="Your Name",
                                      model_comment="MLP", skip_duplicates=True))
    keys.update(nnf.Trainer().add_entry(trainer_fn=TRAIN, trainer_config=dict(epochs=epochs),
                                        trainer_fabrikant="Your Name", trainer_comment="trainer",
                                        skip_duplicates=True))
    nnf.Seed().insert1({"seed": 2020}, skip_duplicates=True)
    return {**keys, "seed": 2020}


def test_tutorial_1_keys_rows_with_nnfabriks_hashes_and_trains(nnf):
    from nntransfer.nnfabrik.templates.trained_model import TrainedModelBase
    from nntransfer.nnfabrik.utility.dj_helpers import make_hash

    key = _tutorial_entries(nnf)
    assert key["dataset_hash"] == "9aee736870714f8b7c3cc084087ce886"  # the hash printed in nnfabrik's tutorial
    assert key["trainer_hash"] == "79e921430b7f44a205d79d0087b59dc0"
    assert key["model_hash"] == make_hash({"h_dim": 5})

    @nnf.schema
    class TrainedModel(TrainedModelBase):
        table_comment = "Trained models"
        nnfabrik = nnf

    TrainedModel.populate(display_progress=False)
    row = (TrainedModel & {"dataset_hash": make_hash(dict(batch_size=64))}).fetch1()
    assert row["comment"] == "digits. MLP. trainer"
    accuracies, epochs = TrainedModel().fetch_output(key)  # the trainer's tuple output, as given
    assert epochs == 1 and len(accuracies) == 1
    dataloaders, model = TrainedModel().load_model(key)
    assert set(dataloaders) == {"train", "validation", "test"}
    full = TrainedModel().get_full_config(key)
    assert full["dataset_config"] == {"batch_size": 64} and set(full["state_dict"]) == set(model.state_dict())
    with pytest.raises(ValueError, match="Please specify either `nnfabrik` or `model_table`"):
        class Orphan(TrainedModelBase):
            table_comment = "no context"


def test_config_tables_have_nnfabriks_methods_and_signatures(nnf):
    from itest_nnfabrik import digits_trainer_fn
    from nntransfer.nnfabrik.main import ExistingEntryError

    key = _tutorial_entries(nnf)
    # nnfabrik's current positional order: fn, config, comment, fabrikant, skip_duplicates, return_pk_only
    row = nnf.Dataset().add_entry(DATA, {"batch_size": 32}, "smaller batches", "Your Name", True, False)
    assert row["dataset_config"] == {"batch_size": 32} and row["dataset_comment"] == "smaller batches"
    with pytest.raises(ExistingEntryError, match="already exists"):
        nnf.Dataset().add_entry(DATA, {"batch_size": 32})
    callable_key = nnf.Trainer().add_entry(digits_trainer_fn, {"epochs": 2}, skip_duplicates=True)
    assert callable_key["trainer_fn"] == TRAIN
    assert (nnf.Dataset & key).fn_config == (DATA, {"batch_size": 64})
    assert nnf.Model.resolve_fn(MODEL).__name__ == "digits_model_fn"
    loaders = nnf.Dataset().get_dataloader(key=key)  # the seed comes from the key
    model = nnf.Model().build_model(loaders, seed=1, key=key)
    assert model[1].out_features == 5
    trainer_fn, trainer_config = nnf.Trainer().get_trainer(key=key, build_partial=False)
    assert trainer_fn is digits_trainer_fn and trainer_config == {"epochs": 1}
    with pytest.raises(ValueError, match="can not both be None"):
        nnf.Model().build_model(key=key)


def test_numpy_values_and_non_string_keys_are_stored_under_the_hash_nnfabrik_gave_them(nnf):
    from nntransfer.nnfabrik.utility.dj_helpers import make_hash

    config = {"epochs": np.int64(1), "optimizer": np.random.default_rng(1).choice(["adam", "sgd"]),
              "lr": np.float32(0.01), "noise_std": {0.08: 0.1, -1: 0.5}}
    key = nnf.Trainer().add_entry(TRAIN, config, skip_duplicates=True)
    assert key["trainer_hash"] == make_hash(config)
    _, stored = (nnf.Trainer & key).fn_config
    assert stored["noise_std"] == {0.08: 0.1, -1: 0.5} and type(stored["optimizer"]) is str
    assert make_hash(stored) == key["trainer_hash"]


def test_tutorial_2_checkpoints_resume_where_the_interrupted_training_stopped(nnf, tmp_path, monkeypatch):
    from nntransfer.nnfabrik.templates.checkpoint import TrainedModelChkptBase, my_checkpoint

    Checkpoint = my_checkpoint(nnf)

    @nnf.schema
    class TrainedModelChkpt(TrainedModelChkptBase):
        table_comment = "My Trained models with checkpointing"
        nnfabrik = nnf
        checkpoint_table = Checkpoint

    key = _tutorial_entries(nnf)
    key.update(nnf.Trainer().add_entry(trainer_fn=f"{FNS}.chkpt_trainer_fn", trainer_config=dict(epochs=3),
                                       skip_duplicates=True))
    flag, log = tmp_path / "interrupt", tmp_path / "epochs"
    flag.touch()
    monkeypatch.setenv("NNF_TEST_INTERRUPT", str(flag))
    monkeypatch.setenv("NNF_TEST_EPOCH_LOG", str(log))
    TrainedModelChkpt.populate(key, reserve_jobs=True, suppress_errors=True)
    assert not TrainedModelChkpt & key and log.read_text().split() == ["0", "1"]
    assert len(Checkpoint & {"target": TrainedModelChkpt.full_table_name}) >= 1
    (nnf.schema.jobs & "status='error'").delete()  # as nnfabrik's checkpoint notebook does
    TrainedModelChkpt.populate(key, reserve_jobs=True)
    assert log.read_text().split() == ["0", "1", "2"]
    assert len(TrainedModelChkpt().fetch_output(key)[0]) == 3
    assert not Checkpoint & {"target": TrainedModelChkpt.full_table_name}


def test_tutorial_3_model_state_and_distillation_with_the_tutorials_literal_hashes(fresh_nnf):
    nnf = fresh_nnf
    from nntransfer.nnfabrik.templates.transfer import TransferredTrainedModelBase

    @nnf.schema
    class TransferredTrainedModel(TransferredTrainedModelBase):
        table_comment = "Transferred trained models"
        nnfabrik = nnf

    _tutorial_entries(nnf)
    TransferredTrainedModel.populate()
    # (2) model-state transfer to the augmented dataset
    nnf.Dataset().add_entry(dataset_fn=DATA, dataset_config=dict(batch_size=64, apply_augmentation=True),
                            dataset_fabrikant="Your Name", dataset_comment="Augmented digits")
    transfer_from = {"dataset_fn": DATA, "dataset_hash": "9aee736870714f8b7c3cc084087ce886"}
    transfer_to = {"dataset_fn": DATA, "dataset_hash": "28aefc2308569727c6017c66c9122d77"}
    nnf.DatasetTransferRecipe().add_entry(transfer_from=transfer_from, transfer_to=transfer_to, transfer_step=1)
    assert len(nnf.DatasetTransferRecipe() & {"dataset_hash": "28aefc2308569727c6017c66c9122d77"}) == 1
    assert len(nnf.DatasetTransferRecipe() & {"prev_dataset_hash": "28aefc2308569727c6017c66c9122d77"}) == 0
    TransferredTrainedModel.transfer_recipe = [nnf.DatasetTransferRecipe()]
    TransferredTrainedModel.populate("transfer_step=1")
    moved = (TransferredTrainedModel & "transfer_step=1").fetch1()
    assert moved["received"] == "model_state" and moved["load_report"]["loaded"]
    assert len(TransferredTrainedModel().CollapsedHistory()) == 2
    # (3) knowledge distillation: logits of the teacher, then a student trained on them
    nnf.Trainer().add_entry(trainer_fn=f"{FNS}.data_gen_fn", trainer_config=dict(batch_size=64, apply_augmentation=False),
                            trainer_fabrikant="Your Name", trainer_comment="Transfer logits")
    transfer_from = {"trainer_fn": TRAIN, "trainer_hash": "79e921430b7f44a205d79d0087b59dc0"}
    transfer_to = {"trainer_fn": f"{FNS}.data_gen_fn", "trainer_hash": "ab91f734757071bf0b98ab74c6e8583c"}
    nnf.TrainerTransferRecipe().add_entry(transfer_from=transfer_from, transfer_to=transfer_to, transfer_step=1,
                                          data_transfer=True)
    TransferredTrainedModel.transfer_recipe = [nnf.TrainerTransferRecipe()]
    TransferredTrainedModel.populate("transfer_step=1")
    nnf.Trainer().add_entry(trainer_fn=f"{FNS}.kd_trainer_fn", trainer_config=dict(batch_size=64, apply_augmentation=False),
                            trainer_fabrikant="Your Name", trainer_comment="Use transferred logits")
    nnf.Dataset().add_entry(dataset_fn=DATA, dataset_config=dict(batch_size=64, apply_augmentation=True, shuffle=False),
                            dataset_fabrikant="Your Name", dataset_comment="Augmented digits with logits")
    kd_data = nnf.Dataset().add_entry(DATA, dict(batch_size=64, apply_augmentation=True, shuffle=False),
                                      skip_duplicates=True)
    transfer_from = {"trainer_fn": f"{FNS}.data_gen_fn", "trainer_hash": "ab91f734757071bf0b98ab74c6e8583c",
                     "dataset_fn": DATA, "dataset_hash": "9aee736870714f8b7c3cc084087ce886"}
    transfer_to = {"trainer_fn": f"{FNS}.kd_trainer_fn", "trainer_hash": "ab91f734757071bf0b98ab74c6e8583c", **kd_data}
    nnf.TrainerDatasetTransferRecipe().add_entry(transfer_from=transfer_from, transfer_to=transfer_to,
                                                 transfer_step=2, data_transfer=False)
    TransferredTrainedModel.transfer_recipe = [nnf.TrainerDatasetTransferRecipe()]
    TransferredTrainedModel.populate("transfer_step=2")
    student = (TransferredTrainedModel & "transfer_step=2").fetch1()
    # nnfabrik's semantics: the student starts from the teacher's weights and learns from its logits
    assert student["received"] == "state_and_data" and student["load_report"]["loaded"]
    assert len(student["load_report"]["loaded"]) == 4 and not student["load_report"]["missing"]  # all of it
    chain = TransferredTrainedModel().lineage(student)
    assert [step["received"] for step in chain] == ["", "model_state", "state_and_data"]
    generator = (TransferredTrainedModel & {"trainer_fn": f"{FNS}.data_gen_fn"}).fetch1("KEY")
    assert len(TransferredTrainedModel.DataStorage & generator) == 1
    assert set(TransferredTrainedModel().fetch_transfer_data(generator)) == {"train"}


def test_scoring_measures_and_data_info_tables(nnf):
    from itest_nnfabrik import measure_fn
    from nntransfer.nnfabrik.templates import DataInfoBase, ScoringBase, TrainedModelBase
    from nntransfer.nnfabrik.templates.scoring import MeasuresBase, SummaryMeasuresBase, SummaryScoringBase

    @nnf.schema
    class DataInfo(DataInfoBase):
        nnfabrik = nnf

    nnf.DataInfo = DataInfo

    @nnf.schema
    class ScoredModel(TrainedModelBase):
        nnfabrik = nnf

    @nnf.schema
    class Accuracy(ScoringBase):
        trainedmodel_table = ScoredModel
        measure_function = staticmethod(measure_fn)
        measure_attribute = "accuracy"

    @nnf.schema
    class MeanAccuracy(SummaryScoringBase):
        trainedmodel_table = ScoredModel
        measure_function = staticmethod(measure_fn)
        function_kwargs = {"per_unit": False}

    @nnf.schema
    class ClassFrequency(MeasuresBase):
        dataset_table = nnf.Dataset
        measure_function = staticmethod(measure_fn)

    @nnf.schema
    class MeanFrequency(SummaryMeasuresBase):
        dataset_table = nnf.Dataset
        measure_function = staticmethod(measure_fn)
        function_kwargs = {"per_unit": False}

    key = _tutorial_entries(nnf)
    # a config with its own seed (nnsysident's style): DataInfo calls the function with the config alone
    seeded = nnf.Dataset().add_entry(DATA, {"batch_size": 64, "seed": 1}, skip_duplicates=True)
    seeded_key = {**key, **seeded}
    DataInfo.populate(seeded)
    assert DataInfo().fetch_data_info(seeded)["img_classification"]["img_mean"].shape == (1, 8, 8)
    ScoredModel.populate([key, seeded_key])
    built = ScoredModel().load_model(seeded_key, include_dataloader=False)  # from data_info, no dataloader
    assert built[1].in_features == 64
    with pytest.warns(UserWarning, match="no data_info"):
        assert ScoredModel().load_model(key, include_dataloader=False)[1].in_features == 64
    Accuracy.populate(key)
    MeanAccuracy.populate(key)
    assert len(Accuracy.Units & key) == 10
    assert (Accuracy & key).fetch1("accuracy") == pytest.approx((MeanAccuracy & key).fetch1("score"))
    ClassFrequency.populate(seeded)
    MeanFrequency.populate(seeded)
    assert (ClassFrequency & seeded).fetch1("score") == 1.0 and len(ClassFrequency.Units & seeded) == 10
    assert (MeanFrequency & seeded).fetch1("score") == 1.0


def test_experiments_restrict_what_is_populated_from_the_core_tables(nnf):
    from nntransfer.nnfabrik import main
    from nntransfer.nnfabrik.templates.trained_model import TrainedModelBase

    @nnf.schema
    class CoreTrainedModel(TrainedModelBase):
        nnfabrik = "core"

    keys = []
    for h_dim in (3, 4):
        key = {**main.Dataset().add_entry(DATA, {"batch_size": 64}, skip_duplicates=True),
               **main.Model().add_entry(MODEL, {"h_dim": h_dim}, skip_duplicates=True),
               **main.Trainer().add_entry(TRAIN, {"epochs": 1}, skip_duplicates=True)}
        keys.append(key)
    main.Seed().insert1({"seed": 3}, skip_duplicates=True)
    main.Experiments().add_entry("small models", "Your Name", "h_dim 3 only", [keys[0]], skip_duplicates=True)
    CoreTrainedModel.populate(main.Experiments.Restrictions & {"experiment_name": "small models"})
    assert len(CoreTrainedModel()) == 1 and len(CoreTrainedModel & keys[0]) == 1


def test_unsupported_names_say_what_to_use(nnf):
    from nntransfer.nnfabrik.builder import resolve_model
    from nntransfer.nnfabrik.unsupported import NotSupported
    from nntransfer.nnfabrik.utility import dj_helpers

    with pytest.raises(NotSupported, match="full dotted path"):
        resolve_model("mnist_model_fn")
    with pytest.raises(NotSupported, match="record the code version yourself"):
        dj_helpers.gitlog(["."])
    with pytest.raises(NotSupported, match="nntransfer.analysis.results.results"):
        dj_helpers.create_param_expansion("f", None)


def test_the_users_call_back_is_called_and_one_schema_never_mixes_hashings(nnf):
    from nntransfer.hashing import make_hash
    from nntransfer.db import import_datajoint
    from nntransfer.errors import DatabaseError
    from nntransfer.nnfabrik.templates.trained_model import TrainedModelBase
    from nntransfer.tables.fabrik import ConfigTable, _config_definition

    seen = []

    @nnf.schema
    class CalledBack(TrainedModelBase):
        nnfabrik = nnf

        def call_back(self, uid=None, epoch=None, model=None, info=None, **kwargs):
            seen.append(epoch)

    key = _tutorial_entries(nnf)
    key.update(nnf.Trainer().add_entry(f"{FNS}.chkpt_trainer_fn", {"epochs": 2}, skip_duplicates=True))
    CalledBack.populate(key)
    assert seen == [-1, 0, 1]  # the restore, then one save per epoch
    dj = import_datajoint()
    canonical = nnf.schema(type("Dataset", (ConfigTable, dj.Manual),
                                {"kind": "dataset", "definition": _config_definition("dataset")}), context={})
    with pytest.raises(DatabaseError, match="keys its rows with nnfabrik hashes"):
        canonical().add_entry(dataset_fn=DATA, dataset_config={"batch_size": 16})
    assert len(nnf.Dataset & {"dataset_hash": make_hash({"batch_size": 16})}) == 0


def test_checkpoints_stay_after_training_when_the_trainer_config_says_keep_checkpoints(nnf):
    from nntransfer.nnfabrik.templates.checkpoint import TrainedModelChkptBase, my_checkpoint
    from nntransfer.tables.orphans import collect
    from nntransfer.tables.trained import artifact_store

    Checkpoint = my_checkpoint(nnf)

    @nnf.schema
    class KeptChkpt(TrainedModelChkptBase):
        table_comment = "checkpoints kept as the trainer config says"
        nnfabrik = nnf
        checkpoint_table = Checkpoint

    key = _tutorial_entries(nnf)
    kept, removed = ({**key, **nnf.Trainer().add_entry(f"{FNS}.chkpt_trainer_fn", {"epochs": 2, "keep_checkpoints": keep},
                                                       skip_duplicates=True)} for keep in (True, False))
    KeptChkpt.populate([kept, removed])
    assert len(KeptChkpt & [kept, removed]) == 2
    left = (Checkpoint & {"target": KeptChkpt.full_table_name}).to_arrays("trained_key")
    assert left and all(trained["trainer_hash"] == kept["trainer_hash"] for trained in left)
    assert not collect([KeptChkpt()], artifact_store()).checkpoint_rows  # gc keeps them too


def test_a_recipe_continues_steps_that_no_recipe_planned(fresh_nnf):
    """Steps planned as a whole chain (or imported by nntransfer import-nnfabrik) have no recipe; a recipe continues them."""
    nnf = fresh_nnf
    from nntransfer.errors import TransferError
    from nntransfer.nnfabrik.templates.transfer import TransferredTrainedModelBase
    from nntransfer.steps import collapse_history

    @nnf.schema
    class TransferredTrainedModel(TransferredTrainedModelBase):
        nnfabrik = nnf

    step0 = {**_tutorial_entries(nnf), "transfer_step": 0, "collapsed_history": "", "data_transfer": 0}
    flipped = nnf.Dataset().add_entry(DATA, dict(batch_size=64, apply_augmentation=True))
    step1 = {**step0, **flipped, "transfer_step": 1, "collapsed_history": collapse_history("", step0, "nnfabrik")}
    TransferredTrainedModel().plan_chain([step0, step1])
    TransferredTrainedModel.populate(plan=False)
    TransferredTrainedModel.populate(plan=False)
    longer = nnf.Trainer().add_entry(TRAIN, dict(epochs=2))
    transfer_from = {"trainer_fn": TRAIN, "trainer_hash": step1["trainer_hash"]}
    nnf.TrainerTransferRecipe().add_entry(transfer_from=transfer_from, transfer_to=longer, transfer_step=2)
    TransferredTrainedModel.transfer_recipe = [nnf.TrainerTransferRecipe()]
    TransferredTrainedModel.populate("transfer_step=2")
    continued = (TransferredTrainedModel & "transfer_step=2").fetch1()
    assert continued["collapsed_history"] == collapse_history(step1["collapsed_history"], step1, "nnfabrik")
    assert continued["received"] == "model_state" and continued["trainer_hash"] == longer["trainer_hash"]
    with pytest.raises(TransferError, match="no recipe plans step 3 and no transfer table has a step 3"):
        nnf.TrainerTransferRecipe().add_entry(transfer_from=longer, transfer_to=transfer_from, transfer_step=4)
