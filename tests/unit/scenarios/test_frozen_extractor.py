"""A frozen feature extractor really stays frozen, and the summary counts what trains.

Checked on LeNet-5 (no BatchNorm) and on a narrow ResNet-18, whose BatchNorm
running statistics would drift if frozen BatchNorm layers ran in train mode.
"""

import copy

import pytest
import torch

from nntransfer.datasets.cached_features import cached_feature_loaders
from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.models.heads import replace_head
from nntransfer.models.lenet import lenet5_model_fn
from nntransfer.models.resnet import resnet_model_fn
from nntransfer.trainer.standard import standard_trainer
from nntransfer.transfer import model_summary

SEED = 0
BUILDERS = {
    "lenet5": lambda loaders: lenet5_model_fn(loaders, SEED),
    "resnet18": lambda loaders: resnet_model_fn(loaders, SEED, depth=18, base_width=4),
}


def pretrained_with_new_head(name):
    source = digits_dataset_fn(SEED, class_range=[0, 4], split_seed=SEED)
    model = BUILDERS[name](source)
    standard_trainer(model, source, SEED, epochs=1, lr=3e-3)
    replace_head(model, 5, seed=SEED)
    return model


def target_loaders():
    return digits_dataset_fn(SEED, class_range=[5, 9], examples_per_class=10, split_seed=SEED, batch_size=16)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_training_the_head_leaves_every_backbone_tensor_bit_identical(name):
    model = pretrained_with_new_head(name)
    backbone_before = {key: value.clone() for key, value in model.features.state_dict().items()}
    head_before = {key: value.clone() for key, value in model.classifier.state_dict().items()}

    standard_trainer(model, target_loaders(), SEED, epochs=3, lr=1e-2, modules={"finetuning": {"head": "classifier"}})

    backbone_after = model.features.state_dict()
    assert backbone_before.keys() == backbone_after.keys()
    changed = [key for key, value in backbone_before.items() if not torch.equal(value, backbone_after[key])]
    assert changed == []
    assert any(not torch.equal(value, model.classifier.state_dict()[key]) for key, value in head_before.items())


def test_summary_counts_trainable_parameters_of_frozen_lenet_exactly():
    model = pretrained_with_new_head("lenet5")
    model.features.requires_grad_(False)
    # By hand: LeNet-5 on 8x8 digits gives 16 channels x 2 x 2 = 64 features.
    conv1 = 1 * 6 * 5 * 5 + 6
    conv2 = 6 * 16 * 5 * 5 + 16
    fc1, fc2, fc3 = 64 * 120 + 120, 120 * 84 + 84, 84 * 5 + 5
    summary = model_summary(model, (1, 1, 8, 8))
    assert summary.trainable_params == fc1 + fc2 + fc3 == 18389
    assert summary.non_trainable_params == conv1 + conv2 == 2572
    assert summary.total_params == sum(p.numel() for p in model.parameters())
    frozen_rows = {row.name for row in summary.rows if row.frozen}
    assert frozen_rows == {"features.conv1", "features.conv2"}


def test_cached_features_train_the_same_head_as_the_frozen_backbone():
    """The fast path (features once) and the slow path (backbone every epoch) agree."""
    model = pretrained_with_new_head("lenet5")
    head = copy.deepcopy(model.classifier)
    loaders = target_loaders()
    _, slow, _ = standard_trainer(model, loaders, SEED, epochs=3, lr=1e-2, modules={"finetuning": {"head": "classifier"}})
    fast_loaders = cached_feature_loaders(model, loaders, layer="features", seed=SEED)
    _, fast, _ = standard_trainer(head, fast_loaders, SEED, epochs=3, lr=1e-2)
    assert fast["final"]["test.accuracy"] == slow["final"]["test.accuracy"]
    assert fast["final"]["test.loss"] == pytest.approx(slow["final"]["test.loss"], rel=1e-4)
