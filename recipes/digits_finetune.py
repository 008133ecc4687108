"""Few-shot transfer on digits: scratch vs frozen feature extractor vs fine-tuning.

Seeds 003/004's scenarios on scikit-learn's digits (no download): a LeNet-5
learns digits 0-4, then digits 5-9 are learnt from only 5 examples per class
(25 images) in four ways, each for 3 seeds:

* ``scratch``: a fresh LeNet-5 on the 25 images;
* ``frozen_extractor``: the pretrained ``features`` with a new ``classifier``
  (the model config's ``transfer`` option leaves the old head out); only the
  classifier trains (the ``finetuning`` module freezes everything else);
* ``finetune``: the same, and the backbone joins at epoch 5 at a tenth of the
  learning rate;
* ``cached_extractor``: the fast fixed feature extractor.  A data step runs
  the pretrained backbone once over each split and hands on its features;
  the next step trains a head of the same shape (MLP 64 -> 120 -> 84 -> 5) on
  them.  Valid because the backbone is frozen and nothing is augmented.

The pretraining step is the same experiment in every chain, so it is trained
once per seed.  Run with ``nntransfer run recipes/digits_finetune.py``.
"""

from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig, TransferExperiment

DIGITS = "nntransfer.datasets.digits.digits_dataset_fn"
FEATURES = "nntransfer.datasets.cached_features.transferred_features_dataset_fn"
LENET = "nntransfer.models.lenet.lenet5_model_fn"
MLP = "nntransfer.models.mlp.mlp_model_fn"
TRAINER = "nntransfer.trainer.standard.standard_trainer"
GENERATE = "nntransfer.trainer.generate.generate_transfer_data"
SEEDS = [1, 2, 3]
EPOCHS = 10  # the budget on the target task, the same for every variant

# Data: all of 0-4 to pretrain; 5 images per class of 5-9 to transfer to.
# split_seed fixes the split, so every seed sees the same 25 images and test set.
source = DatasetConfig.for_fn(DIGITS, class_range=[0, 4], split_seed=0, comment="digits 0-4")
target_options = {"class_range": [5, 9], "examples_per_class": 5, "split_seed": 0, "batch_size": 16}
target = DatasetConfig.for_fn(DIGITS, **target_options, comment="digits 5-9, 5 per class")
target_features = DatasetConfig.for_fn(
    FEATURES, dataset_fn=DIGITS, dataset_config=target_options, comment="LeNet features of digits 5-9, 5 per class"
)

# Models: LeNet-5; the transfer variants load all but the pretrained classifier.
lenet = ModelConfig.for_fn(LENET, comment="LeNet-5")
lenet_new_head = ModelConfig.for_fn(LENET, transfer={"exclude": ["classifier"]}, comment="LeNet-5, new head")
head = ModelConfig.for_fn(MLP, hidden_sizes=[120, 84], activation="tanh", comment="LeNet-5 head alone")

# Trainers.
pretrain = TrainerConfig.for_fn(TRAINER, epochs=20, lr=3e-3, comment="pretrain, 20 epochs")
plain = TrainerConfig.for_fn(TRAINER, epochs=EPOCHS, lr=3e-3, comment="all layers")
head_only = TrainerConfig.for_fn(
    TRAINER, epochs=EPOCHS, lr=3e-3, modules={"finetuning": {"head": "classifier"}}, comment="head only"
)
unfreeze = TrainerConfig.for_fn(
    TRAINER,
    epochs=EPOCHS,
    lr=3e-3,
    modules={"finetuning": {"head": "classifier", "unfreeze_at_epoch": 5, "unfreeze_lr_factor": 0.1}},
    comment="head, backbone from epoch 5",
)
features_of_backbone = TrainerConfig.for_fn(GENERATE, layers=["features"], comment="backbone features, computed once")

pretrained = Experiment(source, lenet, pretrain, seed=SEEDS)

experiments = {
    "scratch": Experiment(target, lenet, plain, seed=SEEDS),
    "frozen_extractor": TransferExperiment([pretrained, Experiment(target, lenet_new_head, head_only, seed=SEEDS)]),
    "finetune": TransferExperiment([pretrained, Experiment(target, lenet_new_head, unfreeze, seed=SEEDS)]),
    "cached_extractor": TransferExperiment(
        [
            pretrained,
            # Loads the whole pretrained state; its score is the old 0-4 head's on 5-9 labels, meaningless.
            Experiment(target, lenet, features_of_backbone, seed=SEEDS),
            Experiment(target_features, head, plain, seed=SEEDS),
        ],
        update=[None, {"data_transfer": True}, None],  # step 1 hands on its features, not its state
    ),
}
