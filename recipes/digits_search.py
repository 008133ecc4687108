"""Search the fine-tuning learning rate and unfreeze epoch of a pretrained LeNet-5 on digits.

The chain of ``digits_finetune.py``: a LeNet-5 pretrained on digits 0-4, then
fine-tuned on 5 examples per class of digits 5-9 with a new head, the
backbone joining at ``unfreeze_at_epoch`` at a tenth of the learning rate.
The search varies the fine-tuning step only, so the pretraining is trained
once and shared by every trial; Optuna's TPE sampler proposes the values and
the median pruner stops fine-tunings whose validation accuracy lags behind
the trials before them.

    nntransfer search recipes/digits_search.py     # 12 trials here, about a minute on 2 cores
    nntransfer status recipes/digits_search.py     # best value and values, trials per state
    nntransfer plot recipes/digits_search.py       # optimisation history and parameter importances
"""

from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig, TransferExperiment
from nntransfer.search import Integer, LogUniform, Search

DIGITS = "nntransfer.datasets.digits.digits_dataset_fn"
LENET = "nntransfer.models.lenet.lenet5_model_fn"
TRAINER = "nntransfer.trainer.standard.standard_trainer"

source = DatasetConfig.for_fn(DIGITS, class_range=[0, 4], split_seed=0, comment="digits 0-4")
target = DatasetConfig.for_fn(DIGITS, class_range=[5, 9], examples_per_class=5, split_seed=0, batch_size=16,
                              comment="digits 5-9, 5 per class")
lenet = ModelConfig.for_fn(LENET, comment="LeNet-5")
lenet_new_head = ModelConfig.for_fn(LENET, transfer={"exclude": ["classifier"]}, comment="LeNet-5, new head")
pretrain = TrainerConfig.for_fn(TRAINER, epochs=10, lr=3e-3, comment="pretrain")
finetune = TrainerConfig.for_fn(
    TRAINER, epochs=10, lr=3e-3,
    modules={"finetuning": {"head": "classifier", "unfreeze_at_epoch": 5, "unfreeze_lr_factor": 0.1}},
    comment="fine-tune: head, then the backbone",
)

chain = TransferExperiment([Experiment(source, lenet, pretrain, seed=1),
                            Experiment(target, lenet_new_head, finetune, seed=1)])

search = Search(
    chain,
    space={
        "trainer.lr": LogUniform(1e-4, 3e-2),
        "trainer.modules.finetuning.unfreeze_at_epoch": Integer(1, 10),
    },
    name="digits finetune lr and unfreeze epoch",
    objective="validation.accuracy",
    trials=12,
    sampler={"tpe": {"n_startup_trials": 5}},
    pruner={"median": {"n_startup_trials": 3, "n_warmup_steps": 4}},
)
