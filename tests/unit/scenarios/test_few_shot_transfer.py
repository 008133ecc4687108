"""Pretrain on digits 0-4, transfer to 5-9 with 5 examples per class (seeds 003/004).

Three variants, same LeNet-5, same 25 training images, same optimizer and
epoch budget:

* scratch: random initialisation;
* frozen feature extractor: pretrained ``features``, new ``classifier``, only
  the classifier trains;
* fine-tuning: as above, and the backbone joins at epoch 5 (at a tenth of
  the learning rate).

Strokes learnt on 0-4 are useful for 5-9, so both transfer variants beat
scratch within the budget.
"""

import numpy as np

from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.models.lenet import lenet5_model_fn
from nntransfer.trainer.standard import standard_trainer
from nntransfer.transfer import load_partial

SEEDS = (1, 2, 3)
SOURCE = {"class_range": [0, 4], "split_seed": 0}
TARGET = {"class_range": [5, 9], "examples_per_class": 5, "split_seed": 0, "batch_size": 16}
EPOCHS = 10
VARIANTS = {
    "scratch": None,
    "frozen": {"finetuning": {"head": "classifier"}},
    "finetune": {"finetuning": {"head": "classifier", "unfreeze_at_epoch": 5}},
}


def pretrained_state(seed):
    source = digits_dataset_fn(seed, **SOURCE)
    _, _, state = standard_trainer(lenet5_model_fn(source, seed), source, seed, epochs=20, lr=3e-3)
    return state


def target_accuracy(seed, modules, state):
    loaders = digits_dataset_fn(seed, **TARGET)
    assert len(loaders["train"].dataset) == 25
    model = lenet5_model_fn(loaders, seed)
    if state is not None:
        report = load_partial(model, state, exclude=["classifier"])
        assert report.loaded and all(name.startswith("features.") for name in report.loaded)
    _, output, _ = standard_trainer(model, loaders, seed, epochs=EPOCHS, lr=3e-3, modules=modules)
    return output["final"]["test.accuracy"]


def test_frozen_extractor_and_finetuning_beat_scratch_with_five_examples_per_class():
    accuracy = {name: [] for name in VARIANTS}
    for seed in SEEDS:
        state = pretrained_state(seed)
        for name, modules in VARIANTS.items():
            accuracy[name].append(target_accuracy(seed, modules, None if name == "scratch" else state))
    mean = {name: float(np.mean(values)) for name, values in accuracy.items()}
    # Measured: scratch about 0.72, frozen about 0.82, fine-tuning about 0.82.
    assert mean["frozen"] > mean["scratch"] + 0.03, accuracy
    assert mean["finetune"] > mean["scratch"] + 0.03, accuracy
