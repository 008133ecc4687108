import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nntransfer.errors import ConfigError, ModuleRequirementError
from nntransfer.trainer.loop import Loop
from nntransfer.trainer.modules.representation_monitor import RepresentationMonitor
from nntransfer.transfer.freezing import freeze

torch.set_num_threads(1)


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def loaders(n=40):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    return {
        "train": DataLoader(TensorDataset(x, y), batch_size=10, shuffle=True),
        "validation": DataLoader(TensorDataset(x, y), batch_size=40),
    }, x


def test_records_epoch_statistics_per_layer_and_phase():
    model = net()
    data, x = loaders()
    freeze(model, "0")  # the monitored layers do not change, so validation values are exact
    monitor = RepresentationMonitor(["0", "1"], statistics=["mean", "std", "sparsity", "norm"])
    history = Loop(model, data, epochs=2, device="cpu", seed=0, modules=[monitor]).fit()
    with torch.no_grad():
        h = model[1](model[0](x))
    assert history["validation.repr.1.sparsity"][-1] == pytest.approx((h == 0).float().mean().item())
    assert history["validation.repr.1.mean"][-1] == pytest.approx(h.mean().item(), rel=1e-5)
    assert history["validation.repr.1.norm"][-1] == pytest.approx(h.norm(dim=1).mean().item(), rel=1e-5)
    assert len(history["train.repr.0.std"]) == 2
    assert history["train.repr.0.std"][0] > 0
    assert not model[1]._forward_hooks


def test_phases_and_threshold():
    model = net()
    data, _ = loaders()
    history = Loop(model, data, epochs=1, device="cpu", seed=0,
                   modules=[RepresentationMonitor("1", statistics="sparsity", phases="validation",
                                                  sparsity_threshold=1e9)]).fit()
    assert "train.repr.1.sparsity" not in history
    assert history["validation.repr.1.sparsity"] == [1.0]


def test_errors():
    data, _ = loaders()
    trainer = Loop(net(), data, epochs=1, device="cpu", modules=[RepresentationMonitor("fc")])
    with pytest.raises(ModuleRequirementError, match="'fc' is not a submodule"):
        trainer.fit()
    with pytest.raises(ConfigError, match="unknown statistics"):
        RepresentationMonitor("0", statistics=["median"])
    with pytest.raises(ConfigError, match="layers"):
        RepresentationMonitor([])


def test_hooks_are_removed_when_an_exception_ends_training():
    """A module that fails between the monitor's pre_forward and post_forward must not leave hooks behind."""
    from nntransfer.trainer.module import MainLoopModule

    class Failing(MainLoopModule):
        name = "failing"
        order = 160  # after the monitor (150) put its hooks on

        def pre_forward(self, state):
            raise RuntimeError("broken module")

    data = TensorDataset(torch.randn(16, 4), torch.randint(0, 2, (16,)))
    loaders = {"train": DataLoader(data, batch_size=8)}
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    trainer = Loop(model, loaders, epochs=1, modules=[RepresentationMonitor(layers=["1"]), Failing()])
    with pytest.raises(RuntimeError, match="broken module"):
        trainer.fit()
    assert not any(module._forward_hooks for module in model.modules())
