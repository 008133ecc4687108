import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nntransfer.errors import ConfigError, TrainingError
from nntransfer.trainer.loop import Loop
from nntransfer.trainer.module import MainLoopModule
from nntransfer.trainer.modules.noise_augmentation import NoiseAugmentation
from nntransfer.trainer.state import State

torch.set_num_threads(1)


class Recorder(MainLoopModule):
    """Keeps what the model was fed, per phase and epoch (runs after the noise)."""

    name = "recorder"
    order = 120

    def __init__(self):
        self.seen = {}

    def pre_forward(self, state):
        entry = self.seen.setdefault((state.phase, state.epoch), [])
        entry.append((state.inputs.clone(), dict(state.extras)))


def loaders(n=32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    return {
        "train": DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True),
        "validation": DataLoader(TensorDataset(x, y), batch_size=8),
    }


def fit(noise, epochs=2, seed=0):
    torch.manual_seed(0)
    recorder = Recorder()
    Loop(nn.Linear(6, 2), loaders(), epochs=epochs, device="cpu", seed=seed,
         modules=[noise, recorder]).fit()
    return recorder.seen


def prepared(module, seed=0):
    state = State(model=nn.Linear(6, 2), loaders={}, seed=seed)
    module.setup(state)
    return state


def apply(module, state, x, phase="train", batch_index=0):
    state.phase, state.batch_index, state.inputs, state.extras = phase, batch_index, x, {}
    module.pre_forward(state)
    return state.inputs


def test_per_sample_mixture_records_levels_and_clean_inputs():
    module = NoiseAugmentation(std=[None, 0.5, 2.0], per="sample")
    state = prepared(module)
    x = torch.randn(400, 6)
    noisy = apply(module, state, x)
    std = state.extras["noise_std"]
    assert set(std.tolist()) == {0.0, 0.5, 2.0}
    assert state.extras["clean_inputs"] is x
    clean = std == 0
    assert torch.equal(noisy[clean], x[clean])
    assert not torch.equal(noisy[~clean], x[~clean])
    measured = (noisy - x)[std == 2.0].std().item()
    assert measured == pytest.approx(2.0, rel=0.1)


def test_per_batch_uses_one_level_and_probabilities():
    module = NoiseAugmentation(std=[0.1, 1.0], probabilities=[0, 1], per="batch")
    state = prepared(module)
    apply(module, state, torch.randn(16, 6))
    assert torch.equal(state.extras["noise_std"], torch.full((16,), 1.0))


def test_snr_sets_std_from_signal_power():
    module = NoiseAugmentation(snr=[4.0, None])
    state = prepared(module)
    x = torch.randn(64, 6) * torch.linspace(0.5, 3, 64).unsqueeze(1)
    apply(module, state, x)
    levels = state.extras["noise_level"]
    expected = torch.where(torch.isinf(levels), torch.zeros(64), (x.pow(2).mean(1) / 4.0).sqrt())
    assert torch.allclose(state.extras["noise_std"], expected)
    assert set(levels.tolist()) == {4.0, math.inf}


def test_validation_noise_is_identical_every_epoch_training_noise_is_not():
    seen = fit(NoiseAugmentation(std=0.3, phases=("train", "validation")))
    val1 = torch.cat([x for x, _ in seen[("validation", 1)]])
    val2 = torch.cat([x for x, _ in seen[("validation", 2)]])
    assert torch.equal(val1, val2)
    train_std = [e["noise_std"] for _, e in seen[("train", 1)]]
    assert all(torch.equal(s, torch.full_like(s, 0.3)) for s in train_std)
    noise1 = seen[("train", 1)][0][0] - seen[("train", 1)][0][1]["clean_inputs"]
    noise2 = seen[("train", 2)][0][0] - seen[("train", 2)][0][1]["clean_inputs"]
    assert not torch.allclose(noise1, noise2)


def test_default_leaves_validation_clean_and_is_seeded():
    seen = fit(NoiseAugmentation(std=1.0), epochs=1)
    assert all("noise_std" not in extras for _, extras in seen[("validation", 1)])
    again = fit(NoiseAugmentation(std=1.0), epochs=1)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(seen[("train", 1)], again[("train", 1)]))
    other = fit(NoiseAugmentation(std=1.0), epochs=1, seed=1)
    assert not torch.equal(seen[("train", 1)][0][0], other[("train", 1)][0][0])


def test_generator_state_round_trip_continues_the_same_noise():
    first = NoiseAugmentation(std=1.0)
    state = prepared(first)
    x = torch.zeros(4, 6)
    apply(first, state, x)
    saved = first.state_dict()
    expected = apply(first, state, x)

    second = NoiseAugmentation(std=1.0)
    second.load_state_dict(saved)
    state2 = prepared(second)
    assert torch.equal(apply(second, state2, x), expected)


def test_errors():
    with pytest.raises(ConfigError, match="exactly one"):
        NoiseAugmentation()
    with pytest.raises(ConfigError, match="exactly one"):
        NoiseAugmentation(std=1.0, snr=2.0)
    with pytest.raises(ConfigError, match="> 0"):
        NoiseAugmentation(snr=[0.0])
    with pytest.raises(ConfigError, match="one per level"):
        NoiseAugmentation(std=[0.1, 0.2], probabilities=[1.0])
    with pytest.raises(ConfigError, match="per must be"):
        NoiseAugmentation(std=0.1, per="epoch")
    module = NoiseAugmentation(std=0.1)
    state = prepared(module)
    with pytest.raises(TrainingError, match="floating-point"):
        apply(module, state, torch.zeros(2, 6, dtype=torch.long))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_noise_on_cuda_is_reproducible():
    first = fit_on("cuda")
    second = fit_on("cuda")
    for (a, ea), (b, eb) in zip(first[("validation", 1)], second[("validation", 1)]):
        assert a.device.type == "cuda" and ea["noise_std"].device.type == "cuda"
        assert torch.equal(a, b)
    assert torch.equal(first[("validation", 1)][0][0], first[("validation", 2)][0][0])


def fit_on(device):
    torch.manual_seed(0)
    recorder = Recorder()
    Loop(nn.Linear(6, 2), loaders(), epochs=2, device=device, seed=0,
         modules=[NoiseAugmentation(std=[0.1, 1.0], phases=("train", "validation")), recorder]).fit()
    return recorder.seen


def test_fixed_eval_seed_gives_the_same_validation_noise_across_runs():
    def validation_inputs(seed):
        noise = NoiseAugmentation(std=0.5, phases=("train", "validation"), eval_seed=5)
        return torch.cat([x for x, _ in fit(noise, epochs=1, seed=seed)[("validation", 1)]])

    assert torch.equal(validation_inputs(0), validation_inputs(1))
