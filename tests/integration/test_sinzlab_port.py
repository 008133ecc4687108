"""sinzlab nntransfer's example recipe (nntransfer_recipes' baselines), ported: digits instead of CIFAR.

The lab's config classes set their defaults in ``__init__``; the recipe is a
``transfer_experiments`` dict keyed by ``Description``; it runs as
nntransfer_recipes' ``main.py`` ran it: fill the tables, then per level add a
``TrainedModelTransferRecipe`` from ``get_restrictions`` and populate.  One
chain trains with main-loop modules written for sinzlab's trainer.
"""

from __future__ import annotations

import os

import pytest

from nntransfer.hashing import make_hash
from nntransfer.legacy.configs import (
    DatasetConfig,
    Description,
    Experiment,
    ModelConfig,
    TrainerConfig,
    TransferExperiment,
)

FNS = "itest_nnfabrik"


class DigitsDatasetConfig(DatasetConfig):
    fn = f"{FNS}.digits_dataset_fn"

    def __init__(self, **kwargs):
        self.load_kwargs(**kwargs)
        self.batch_size = 64
        self.dataset_cls = "digits"
        super().__init__(**kwargs)


class DigitsModelConfig(ModelConfig):
    fn = f"{FNS}.digits_model_fn"

    def __init__(self, **kwargs):
        self.load_kwargs(**kwargs)
        self.type = "mlp"
        self.h_dim = 8
        super().__init__(**kwargs)


class DigitsTrainerConfig(TrainerConfig):
    fn = f"{FNS}.sinzlab_trainer_fn"

    def __init__(self, **kwargs):
        self.load_kwargs(**kwargs)
        self.max_iter = 2
        self.lr = 0.01
        self.main_loop_modules = []
        self.noise_std = None
        self.l2 = 0.0
        self.data_transfer = False
        super().__init__(**kwargs)

    def conditional_assignment(self):
        if self.l2 and f"{FNS}.OldWeightPenalty" not in self.main_loop_modules:
            self.main_loop_modules.append(f"{FNS}.OldWeightPenalty")


def recipe():
    """nntransfer_recipes' ``_2021_07_28_example/baselines.py``, with a second, transferring chain."""
    transfer_experiments = {}
    experiments = [Experiment(dataset=DigitsDatasetConfig(), model=DigitsModelConfig(),
                              trainer=DigitsTrainerConfig(comment="Baseline Trainer"), seed=42)]
    transfer_experiments[Description(name="Baseline Experiment", seed=42)] = TransferExperiment(experiments)
    noisy = DigitsTrainerConfig(comment="Noise Augmented", main_loop_modules=[f"{FNS}.OldNoiseAugmentation"],
                                noise_std={0.08: 0.5, -1: 0.5}, l2=1e-4)
    transfer_experiments[Description(name="Noise Augmented -> Transfer", seed=42)] = TransferExperiment(
        [Experiment(dataset=DigitsDatasetConfig(), model=DigitsModelConfig(), trainer=noisy, seed=42),
         Experiment(dataset=DigitsDatasetConfig(batch_size=32), model=DigitsModelConfig(),
                    trainer=DigitsTrainerConfig(comment="Transfer"), seed=42)],
        update=[{}, {"trainer": {"lr": 0.005}}],
    )
    return transfer_experiments


def test_config_classes_keep_sinzlabs_shape():
    config = DigitsTrainerConfig(max_iter=3)
    assert config.max_iter == 3 and config.lr == 0.01  # the keyword wins over the default set after it
    assert config.patience is None  # unset attributes read as None
    key = config.get_key()
    assert key == {"trainer_hash": make_hash({**config.__dict__, "fn": config.fn}), "trainer_fn": config.fn}
    config.update({"lr": 0.1})
    assert config.lr == 0.1 and config.get_key() != key
    penalised = DigitsTrainerConfig(l2=0.1)
    assert penalised.main_loop_modules == [f"{FNS}.OldWeightPenalty"]  # conditional_assignment ran


def test_json_round_trip_keeps_non_string_keys_without_eval(tmp_path):
    config = DigitsTrainerConfig(noise_std={0.08: 0.5, -1: 0.5, (1, 2): 0.0})
    config.save(str(tmp_path))
    again = DigitsTrainerConfig.from_json_file(str(tmp_path / "trainer"))
    assert again == config and again.get_key() == config.get_key()
    (tmp_path / "evil").write_text('{"noise_std": {"__import__(\'os\').system(\'false\')": 1}}')
    assert list(DigitsTrainerConfig.from_json_file(str(tmp_path / "evil")).noise_std) == [
        "__import__('os').system('false')"]
    experiment = recipe()[Description("Noise Augmented -> Transfer", 42)]
    rebuilt = TransferExperiment.from_dict(experiment.to_dict())
    assert [c.get_key() for c in rebuilt.configs] == [c.get_key() for c in experiment.configs]


def test_transfer_experiment_updates_steps_and_keys_its_chain_as_sinzlab_did():
    experiment = recipe()[Description("Noise Augmented -> Transfer", 42)]
    assert experiment.configs[1].trainer.lr == 0.005 and experiment.configs[0].trainer.lr == 0.01
    assert experiment.comment == "Noise Augmented -> Transfer"
    step0 = {**experiment.configs[0].get_key(), "transfer_step": 0, "data_transfer": 0, "collapsed_history": ""}
    assert experiment.get_restrictions(1)["collapsed_history"] == make_hash(step0)
    assert experiment.get_restrictions(2) == {}
    with pytest.raises(Exception, match="'dataset', 'model' and 'trainer'"):
        TransferExperiment([experiment.configs[0]], update=[{"optimizer": {}}])


@pytest.fixture
def lab_tables(nnfabrik_main):
    """The lab's tables module (sinzlab's nntransfer.tables.nnfabrik and .transfer), in a schema of this session."""
    from nntransfer.nnfabrik.templates.transfer.checkpoint import TransferredTrainedModelChkptBase, my_checkpoint
    from nntransfer.nnfabrik.templates.transfer.recipes import TrainedModelTransferRecipe

    from nntransfer.nnfabrik.main import my_nnfabrik

    lab = my_nnfabrik(f"{os.environ['NNTRANSFER_SCHEMA']}_sinzlab", additional_tables=(TrainedModelTransferRecipe,))

    @lab.schema
    class TransferredTrainedModel(TransferredTrainedModelChkptBase):
        table_comment = "Transferred trained models"
        nnfabrik = lab
        checkpoint_table = my_checkpoint(lab)

    lab.TransferredTrainedModel = TransferredTrainedModel
    for config_class, table in ((DigitsDatasetConfig, lab.Dataset), (DigitsModelConfig, lab.Model),
                                (DigitsTrainerConfig, lab.Trainer)):
        config_class.table = table()
    Experiment.seed_table = lab.Seed
    yield lab
    for config_class in (DigitsDatasetConfig, DigitsModelConfig, DigitsTrainerConfig):
        config_class.table = None
    Experiment.seed_table = None
    lab.schema.drop()


def run_experiments(configs, tables, level):
    """nntransfer_recipes' main.run_experiments, against the lab's tables."""
    restrictions = []
    for config in configs.values():
        restriction = config.get_restrictions(level)
        if restriction:
            restrictions.append(restriction)
            if level > 0:
                tables.TrainedModelTransferRecipe().add_entry(
                    transfer_from=config.get_restrictions(level - 1),
                    transfer_to=config.configs[level].get_restrictions()[0],
                    transfer_step=level,
                    data_transfer=bool(config.configs[level].trainer.data_transfer),
                )
                tables.TransferredTrainedModel.transfer_recipe = [tables.TrainedModelTransferRecipe()]
    if not restrictions:
        return False
    tables.TransferredTrainedModel().populate(restrictions, reserve_jobs=True)
    return True


def test_the_ported_recipe_runs_level_by_level_with_old_style_modules(lab_tables):
    configs = recipe()
    lab_tables.Fabrikant().insert1(dict(fabrikant_name="you", email="you@lab", affiliation="lab", dj_username="you"),
                                   skip_duplicates=True)
    for config in configs.values():
        config.add_to_table()
    level = 0
    while run_experiments(configs, lab_tables, level):
        level += 1
    table = lab_tables.TransferredTrainedModel()
    assert level == 2 and len(table) == 3
    chain = configs[Description("Noise Augmented -> Transfer", 42)]
    transferred = (table & chain.get_restrictions(1)).fetch1()
    assert transferred["transfer_step"] == 1 and transferred["received"] == "model_state"
    assert (lab_tables.Trainer & transferred).fn_config[1]["lr"] == 0.005
    noisy = table.fetch_output(chain.get_restrictions(0))["history"]
    assert all(0.0 < share < 1.0 for share in noisy["train.Noise.noised"])  # about half the batches had noise
    assert all(penalty > 0 for penalty in noisy["train.Penalty.l2"])
    final = table.fetch_output(chain.get_restrictions(0))["final"]  # sinzlab's test_final_model, recorded
    assert final["test.Noise.noised"] == 0.0 and final["test.Penalty.l2"] > 0  # no noise outside training
    assert (lab_tables.Dataset & chain.configs[1].dataset.get_key()).fn_config[1]["batch_size"] == 32
