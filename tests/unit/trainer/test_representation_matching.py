import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nntransfer.errors import ConfigError, ModuleRequirementError
from nntransfer.trainer.loop import Loop
from nntransfer.trainer.modules.noise_augmentation import NoiseAugmentation
from nntransfer.trainer.modules.representation_matching import (
    RepresentationMatching,
    cosine_distance,
)
from nntransfer.trainer.state import State

torch.set_num_threads(1)


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))


def loaders(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] > 0).long()
    return {"train": DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)}


def test_distance_values():
    a = torch.randn(5, 3, 2)
    assert cosine_distance(a, a).abs() < 1e-6
    assert cosine_distance(a, -a) == pytest.approx(2.0)


def test_term_is_added_to_the_loss_and_matches_a_direct_computation():
    model = net()
    state = State(model=model, loaders={})
    module = RepresentationMatching("1", distance="mse", weight=0.5)
    module.setup(state)
    clean = torch.randn(8, 6)
    noisy = clean + torch.randn(8, 6)
    state.phase, state.inputs, state.extras = "train", noisy, {"clean_inputs": clean}
    module.pre_forward(state)
    state.outputs = model(noisy)
    state.loss = torch.tensor(1.0)
    module.post_forward(state)
    with torch.no_grad():
        expected = torch.nn.functional.mse_loss(model[:2](noisy), model[:2](clean))
    assert state.loss.item() == pytest.approx(1.0 + 0.5 * expected.item(), rel=1e-5)
    assert not model[1]._forward_hooks  # hooks do not outlive the batch


def test_matching_makes_the_layer_robust_to_noise():
    def distance_after(modules):
        model = net()
        Loop(model, loaders(), epochs=30, lr=0.01, device="cpu", seed=0, modules=modules).fit()
        g = torch.Generator().manual_seed(1)
        x = torch.randn(256, 6, generator=g)
        noisy = x + torch.randn(256, 6, generator=g)
        with torch.no_grad():
            return cosine_distance(model[:2](noisy), model[:2](x)).item()

    plain = distance_after([NoiseAugmentation(std=1.0)])
    matched = distance_after([NoiseAugmentation(std=1.0), RepresentationMatching("1", weight=5.0)])
    assert matched < 0.7 * plain


def test_history_records_the_term():
    model = net()
    history = Loop(model, loaders(), epochs=2, device="cpu", seed=0,
                   modules={"noise_augmentation": {"std": 0.5},
                            "representation_matching": {"layer": "1"}}).fit()
    assert len(history["train.representation_matching_loss"]) == 2
    assert history["train.representation_matching_loss"][0] > 0


def test_requirements():
    trainer = Loop(net(), loaders(), epochs=1, device="cpu",
                   modules=[RepresentationMatching("features")])
    with pytest.raises(ModuleRequirementError, match="'features' is not a submodule"):
        trainer.fit()
    trainer = Loop(net(), loaders(), epochs=1, device="cpu", modules=[RepresentationMatching("1")])
    with pytest.raises(ModuleRequirementError, match="noise_augmentation"):
        trainer.fit()
    with pytest.raises(ConfigError, match="distance"):
        RepresentationMatching("1", distance="l3")
