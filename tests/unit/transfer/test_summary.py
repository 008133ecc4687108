import pytest
import torch
from torch import nn

from nntransfer.errors import ConfigError
from nntransfer.transfer.freezing import freeze_all_but
from nntransfer.transfer.summary import model_summary


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(64 * 4 * 4, 2)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def test_counts_shapes_and_frozen_marks():
    net = Net()
    freeze_all_but(net, "classifier")
    summary = model_summary(net, (1, 3, 8, 8))
    assert summary.total_params == 1792 + 1024 * 2 + 2
    assert summary.trainable_params == 2050
    assert summary.non_trainable_params == 1792
    rows = {row.name: row for row in summary.rows}
    assert rows["features.0"].output_shape == [1, 64, 8, 8]
    assert rows["features.2"].output_shape == [1, 64, 4, 4]
    assert (rows["features.0"].depth, rows["features.0"].index) == (2, 1)
    assert rows["features.0"].frozen and not rows["classifier"].frozen
    text = str(summary)
    assert "Conv2d: 2-1" in text and "(1,792)" in text
    assert "Trainable params: 2,050" in text
    assert "Non-trainable params: 1,792" in text


def test_training_mode_is_restored_and_batchnorm_accepts_one_sample():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    net.train()
    before = net[1].running_mean.clone()
    summary = model_summary(net, (1, 3))
    assert net.training and net[1].training
    assert torch.equal(net[1].running_mean, before)
    assert summary.rows[0].output_shape == [1, 4]


def test_shared_parameters_counted_once_and_multiple_inputs():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2)
            self.b = self.a

        def forward(self, x, y):
            return self.a(x) + self.b(y)

    summary = model_summary(Two(), [(1, 2), (1, 2)])
    assert summary.total_params == 6


def test_bad_input_size():
    with pytest.raises(ConfigError, match="positive int"):
        model_summary(Net(), (1, 3, 0, 8))
    with pytest.raises(ConfigError, match="shape"):
        model_summary(Net(), 5)
