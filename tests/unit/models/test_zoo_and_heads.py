import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader

from nntransfer.errors import ConfigError, TransferError
from nntransfer.models.heads import find_head, replace_head
from nntransfer.models.mlp import MLP
from nntransfer.models.vgg import VGG
from nntransfer.models.zoo import ZooModel, torchvision_model_fn

torch.set_num_threads(1)


class _Images(torch.utils.data.Dataset):
    def __init__(self, shape, num_classes):
        self.shape, self.num_classes = shape, num_classes

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return torch.rand(self.shape), torch.tensor(0)


def _loaders(shape, num_classes):
    return {"train": DataLoader(_Images(shape, num_classes), batch_size=2)}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A mobilenet with 'pretrained' (random, fixed) weights saved to a local file."""
    torch.manual_seed(0)
    network = torchvision.models.mobilenet_v3_small(num_classes=20)
    path = tmp_path_factory.mktemp("weights") / "mobilenet.pt"
    torch.save(network.state_dict(), path)
    return network, path


@pytest.mark.parametrize(
    "model, expected",
    [
        (MLP(4, 3), "classifier"),
        (VGG(11, (1, 8, 8), 3, classifier_width=4, base_width=8), "classifier.6"),
        (nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), "2"),
    ],
)
def test_find_head_names_the_final_linear(model, expected):
    assert find_head(model) == expected


def test_find_head_on_torchvision_layouts():
    assert find_head(torchvision.models.resnet18()) == "fc"
    assert find_head(torchvision.models.shufflenet_v2_x0_5()) == "fc"


def test_replace_head_keeps_input_size_and_is_seeded():
    model = VGG(11, (1, 8, 8), 10, classifier_width=4, base_width=8)
    body = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("classifier.6")}
    assert replace_head(model, 3, seed=5) == "classifier.6"
    assert model.classifier[6].in_features == 4 and model.classifier[6].out_features == 3
    assert all(torch.equal(model.state_dict()[k], v) for k, v in body.items())
    other = VGG(11, (1, 8, 8), 10, classifier_width=4, base_width=8)
    replace_head(other, 3, seed=5)
    assert torch.equal(other.classifier[6].weight, model.classifier[6].weight)


def test_replace_head_without_linear_layer_explains():
    with pytest.raises(TransferError, match="no nn.Linear"):
        replace_head(nn.Sequential(nn.Conv2d(1, 2, 3)), 4)


def test_zoo_model_loads_local_weights_and_adapts_channels_and_classes(pretrained):
    network, path = pretrained
    model = torchvision_model_fn(_loaders((1, 32, 32), 10), 0, name="mobilenet_v3_small", weights_path=str(path))
    assert isinstance(model, ZooModel)
    assert model.classifier.out_features == 10
    assert isinstance(model.features.classifier[3], nn.Identity)
    first_conv = model.features.features[0][0]
    assert first_conv.in_channels == 1
    assert torch.allclose(first_conv.weight, network.features[0][0].weight.sum(dim=1, keepdim=True))
    assert torch.equal(model.features.features[1].block[0][0].weight, network.features[1].block[0][0].weight)
    model.eval()
    grey = torch.rand(2, 1, 32, 32)
    assert torch.allclose(
        model.features(grey), _penultimate(network.eval(), grey.repeat(1, 3, 1, 1)), atol=1e-4
    )


def _penultimate(network, x):
    """mobilenet's output before its last Linear layer."""
    head = network.classifier[3]
    network.classifier[3] = nn.Identity()
    try:
        return network(x)
    finally:
        network.classifier[3] = head


def test_zoo_model_keeps_the_checkpoint_head_when_classes_match(pretrained):
    network, path = pretrained
    model = torchvision_model_fn(_loaders((3, 32, 32), 20), 0, name="mobilenet_v3_small", weights_path=str(path))
    assert torch.equal(model.classifier.weight, network.classifier[3].weight)


def test_zoo_model_without_weights_is_seeded():
    data = _loaders((3, 32, 32), 4)
    a, b = (torchvision_model_fn(data, 7, name="shufflenet_v2_x0_5") for _ in range(2))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert a(torch.rand(2, 3, 32, 32)).shape == (2, 4)


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        ({"name": "resnet9000"}, ConfigError, "resnet18"),
        ({"name": "resnet18", "weights_path": "does/not/exist.pt"}, ConfigError, "not a file"),
    ],
)
def test_zoo_model_bad_name_or_missing_file(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        torchvision_model_fn(_loaders((3, 32, 32), 4), 0, **kwargs)


def test_zoo_model_rejects_weights_of_another_architecture(tmp_path):
    path = tmp_path / "wrong.pt"
    torch.save(nn.Linear(3, 4).state_dict(), path)
    with pytest.raises(TransferError, match="do not fit"):
        torchvision_model_fn(_loaders((3, 32, 32), 4), 0, name="shufflenet_v2_x0_5", weights_path=str(path))
