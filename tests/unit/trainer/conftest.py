import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset


@pytest.fixture(autouse=True)
def _one_thread(single_thread):
    """Every trainer test runs on one thread (see tests/conftest.py)."""


def make_dataset(n=96, features=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(n, features, generator=generator)
    targets = (inputs[:, 0] + 0.5 * inputs[:, 1] > 0).long()
    return TensorDataset(inputs, targets)


def make_loaders(n=96, batch_size=16, shuffle=True, seed=0):
    dataset = make_dataset(n, seed=seed)
    return {
        "train": DataLoader(dataset, batch_size=batch_size, shuffle=shuffle),
        "validation": DataLoader(make_dataset(48, seed=seed + 1), batch_size=batch_size),
        "test": DataLoader(make_dataset(48, seed=seed + 2), batch_size=batch_size),
    }


def make_model(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(dropout), torch.nn.Linear(16, 2)
    )


@pytest.fixture
def loaders():
    return make_loaders()


@pytest.fixture
def model():
    return make_model()


@pytest.fixture(name="make_loaders")
def _make_loaders_fixture():
    return make_loaders


@pytest.fixture(name="make_model")
def _make_model_fixture():
    return make_model
