import pytest
import torch
from torch.utils.data import DataLoader, Subset, TensorDataset

from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.errors import ConfigError, DataError
from nntransfer.models.data_info import data_info
from nntransfer.models.mlp import MLP, mlp_model_fn


@pytest.fixture(scope="module")
def digits():
    return digits_dataset_fn(0)


def _same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_sizes_come_from_the_data(digits):
    model = mlp_model_fn(digits, 0, hidden_sizes=[32, 16])
    assert model.features[1].in_features == 64
    assert model.classifier.out_features == 10 and model.classifier.in_features == 16
    assert model(next(iter(digits["train"]))[0]).shape == (64, 10)
    few = digits_dataset_fn(0, classes=[1, 2, 3], image_size=16, flatten=True)
    model = mlp_model_fn(few, 0)
    assert model.features[1].in_features == 256 and model.classifier.out_features == 3


def test_same_seed_same_weights_other_seed_other_weights(digits):
    assert _same_weights(mlp_model_fn(digits, 3), mlp_model_fn(digits, 3))
    assert not _same_weights(mlp_model_fn(digits, 3), mlp_model_fn(digits, 4))


def test_building_leaves_global_rng_and_loader_order_untouched(digits):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    mlp_model_fn(digits, 0)
    assert torch.equal(torch.rand(3), expected)
    untouched, used = digits_dataset_fn(0), digits_dataset_fn(0)
    mlp_model_fn(used, 0)
    first_epoch = [torch.cat([y for _, y in loaders["train"]]) for loaders in (untouched, used)]
    assert torch.equal(*first_epoch)


def test_options_build_the_documented_layers(digits):
    model = mlp_model_fn(digits, 0, hidden_sizes=[8], activation="tanh", dropout=0.5, batch_norm=True)
    kinds = [type(layer).__name__ for layer in model.features]
    assert kinds == ["Flatten", "Linear", "BatchNorm1d", "Tanh", "Dropout"]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"activation": "swish"}, "relu"), ({"dropout": 1.0}, "dropout"), ({"hidden_sizes": [0]}, "hidden_sizes")],
)
def test_bad_options_raise_config_error(digits, kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        mlp_model_fn(digits, 0, **kwargs)


def test_plain_tensor_dataset_needs_num_classes_and_accepts_override():
    data = TensorDataset(torch.zeros(10, 5), torch.zeros(10, dtype=torch.long))
    loaders = {"train": DataLoader(Subset(data, range(6)), batch_size=4)}
    with pytest.raises(DataError, match="num_classes"):
        mlp_model_fn(loaders, 0)
    model = mlp_model_fn(loaders, 0, num_classes=4)
    assert model.features[1].in_features == 5 and model.classifier.out_features == 4


def test_data_info_reads_wrapped_datasets_and_task_dicts(digits):
    wrapped = {"train": DataLoader(Subset(digits["train"].dataset, range(5)), batch_size=2)}
    assert data_info(wrapped).num_classes == 10
    tasks = {"train": {"a": digits["train"], "b": digits["validation"]}}
    assert data_info(tasks).input_shape == (1, 8, 8)
    other = digits_dataset_fn(0, classes=[0, 1])
    with pytest.raises(DataError, match="disagree"):
        data_info({"train": {"a": digits["train"], "b": other["train"]}})
    with pytest.raises(DataError, match="train"):
        data_info({"test": digits["test"]})


def test_mlp_learns_digits(digits):
    torch.manual_seed(0)
    model = mlp_model_fn(digits, 0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(5):
        for x, y in digits["train"]:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in digits["test"])
    assert correct / len(digits["test"].dataset) > 0.85


def test_mlp_class_is_usable_directly():
    model = MLP(input_size=12, num_classes=2, hidden_sizes=())
    assert isinstance(model.features[0], torch.nn.Flatten) and model.classifier.in_features == 12
