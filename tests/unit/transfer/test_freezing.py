import pytest
import torch
from torch import nn

from nntransfer.errors import ConfigError
from nntransfer.transfer.freezing import (
    freeze,
    freeze_all_but,
    frozen_parameter_names,
    is_kept_in_eval,
    trainable_parameter_names,
    unfreeze,
)


def make_net():
    torch.manual_seed(0)
    net = nn.Module()
    net.features = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU())
    net.classifier = nn.Linear(6, 3)
    net.forward = lambda x: net.classifier(net.features(x))
    return net


def test_freeze_all_but_head_lists_names():
    net = make_net()
    frozen = freeze_all_but(net, "classifier")
    assert sorted(frozen) == sorted(frozen_parameter_names(net))
    assert trainable_parameter_names(net) == ["classifier.weight", "classifier.bias"]
    assert "features.1.weight" in frozen_parameter_names(net)


def test_frozen_batchnorm_stays_in_eval_after_train():
    net = make_net()
    freeze(net, "features")
    net.train()
    before = net.features[1].running_mean.clone()
    net(torch.randn(8, 4) * 5 + 3)
    assert is_kept_in_eval(net.features[1]) is True
    assert not net.features[1].training
    assert torch.equal(net.features[1].running_mean, before)


def test_train_batchnorm_keeps_bn_trainable_and_updating():
    net = make_net()
    freeze(net, "features", train_batchnorm=True)
    assert trainable_parameter_names(net) == [
        "features.1.weight",
        "features.1.bias",
        "classifier.weight",
        "classifier.bias",
    ]
    net.train()
    before = net.features[1].running_mean.clone()
    net(torch.randn(8, 4) * 5 + 3)
    assert is_kept_in_eval(net.features[1]) is False
    assert not torch.equal(net.features[1].running_mean, before)


def test_unfreeze_restores_training_and_batchnorm_mode():
    net = make_net()
    freeze(net)
    assert trainable_parameter_names(net) == []
    net.train()
    changed = unfreeze(net, "features.0")
    assert changed == ["features.0.weight", "features.0.bias"]
    assert is_kept_in_eval(net.features[1])
    unfreeze(net, exclude="classifier")
    assert not is_kept_in_eval(net.features[1])
    assert net.features[1].training
    assert frozen_parameter_names(net) == ["classifier.weight", "classifier.bias"]


def test_frozen_parameters_get_no_gradient():
    net = make_net()
    freeze_all_but(net, "classifier")
    net(torch.randn(5, 4)).sum().backward()
    assert net.features[0].weight.grad is None
    assert net.classifier.weight.grad is not None


def test_pattern_that_matches_nothing_is_an_error():
    with pytest.raises(ConfigError, match="top-level modules are \\['features', 'classifier'\\]"):
        freeze(make_net(), "backbone")
    with pytest.raises(ConfigError, match="head"):
        freeze_all_but(make_net(), [])
    with pytest.raises(ConfigError, match="pattern string"):
        freeze(make_net(), 3)


def test_batchnorm_without_affine_parameters_is_kept_in_eval_by_its_buffers():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, affine=False), nn.Linear(4, 2))
    freeze(net, ["0", "1"])
    net.train()
    before = net[1].running_mean.clone()
    net(torch.randn(6, 3) + 4)
    assert torch.equal(net[1].running_mean, before)
    unfreeze(net, "2")  # outside the BatchNorm layer: it stays held
    assert is_kept_in_eval(net[1])
    unfreeze(net, ["0", "1"])
    assert not is_kept_in_eval(net[1]) and net[1].training
