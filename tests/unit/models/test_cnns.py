import pytest
import torch
import torchvision
from torch.utils.data import DataLoader

from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.errors import ConfigError
from nntransfer.models.lenet import LeNet5, lenet5_model_fn
from nntransfer.models.resnet import ResNet, resnet_model_fn
from nntransfer.models.vgg import VGG, vgg_model_fn
from nntransfer.transfer.freezing import freeze_all_but, trainable_parameter_names
from nntransfer.transfer.loading import load_partial

torch.set_num_threads(1)


class _Images(torch.utils.data.Dataset):
    """A few zero images of a given shape, for building models at any size."""

    def __init__(self, shape, num_classes=10):
        self.shape, self.num_classes = shape, num_classes

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return torch.zeros(self.shape), torch.tensor(0)


def _loaders(shape, num_classes=10):
    return {"train": DataLoader(_Images(shape, num_classes), batch_size=2)}


SMALL_BUILDERS = {
    "lenet": lambda data, seed, **kw: lenet5_model_fn(data, seed, **kw),
    "resnet18": lambda data, seed, **kw: resnet_model_fn(data, seed, depth=18, base_width=4, **kw),
    "resnet34": lambda data, seed, **kw: resnet_model_fn(data, seed, depth=34, base_width=4, **kw),
    "resnet50": lambda data, seed, **kw: resnet_model_fn(data, seed, depth=50, base_width=4, **kw),
    "vgg11": lambda data, seed, **kw: vgg_model_fn(
        data, seed, depth=11, classifier_width=16, base_width=8, **kw
    ),
    "vgg16_bn": lambda data, seed, **kw: vgg_model_fn(
        data, seed, depth=16, batch_norm=True, classifier_width=16, base_width=8, **kw
    ),
}


@pytest.mark.parametrize("builder", sorted(SMALL_BUILDERS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 16, 16), (1, 28, 28), (3, 32, 32)])
def test_models_run_on_small_inputs_with_shared_names(builder, shape):
    model = SMALL_BUILDERS[builder](_loaders(shape, num_classes=7), 0)
    model.eval()
    x = torch.randn(2, *shape)
    features = model.features(x)
    assert features.ndim == 2
    assert torch.equal(model.classifier(features), model(x))
    assert model(x).shape == (2, 7)


def test_models_accept_imagenet_size_and_match_torchvision_names():
    ours = VGG(16, (3, 224, 224), 1000, batch_norm=True, classifier_width=8)
    theirs = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"], batch_norm=True)
    assert {k: v.shape for k, v in ours.features.state_dict().items()} == {
        k: v.shape for k, v in theirs.state_dict().items()
    }
    assert ours.classifier[0].in_features == 512 * 7 * 7
    assert sorted(ours.classifier.state_dict()) == [f"{i}.{p}" for i in (0, 3, 6) for p in ("bias", "weight")]
    resnet = ResNet(18, (3, 224, 224), 1000)
    assert resnet.stem == "imagenet"
    renamed = {
        ("classifier" + k[2:] if k.startswith("fc.") else "features." + k): v.shape
        for k, v in torchvision.models.resnet18().state_dict().items()
    }
    assert {k: v.shape for k, v in resnet.state_dict().items()} == renamed


@pytest.mark.parametrize("builder", sorted(SMALL_BUILDERS))
def test_same_seed_same_weights(builder):
    data = _loaders((1, 8, 8))
    first, again, other = (SMALL_BUILDERS[builder](data, seed) for seed in (1, 1, 2))
    def same(a, b):
        return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))

    assert same(first, again)
    assert not same(first, other)


@pytest.mark.parametrize(
    "builder, options",
    [
        ("lenet", {"global_pool": True}),
        ("resnet18", {}),
        ("resnet50", {}),
        ("vgg11", {"global_pool": True}),
        ("vgg16_bn", {"global_pool": True}),
    ],
)
def test_global_pool_models_transfer_every_parameter_between_resolutions(builder, options):
    """Multigrid: train at 8x8, load into the 16x16 (and 32x32) network."""
    coarse = SMALL_BUILDERS[builder](_loaders((1, 8, 8)), 0, **options)
    for size in (16, 32):
        fine = SMALL_BUILDERS[builder](_loaders((1, size, size)), 1, **options)
        report = load_partial(fine, coarse.state_dict(), warn=False)
        assert report.shape_mismatched == {} and report.missing == []
        assert len(report.loaded) == len(coarse.state_dict())
        fine.eval()
        assert fine(torch.randn(2, 1, size, size)).shape == (2, 10)


def test_classic_heads_depend_on_resolution():
    coarse = lenet5_model_fn(_loaders((1, 8, 8)), 0)
    fine = lenet5_model_fn(_loaders((1, 28, 28)), 0)
    report = load_partial(fine, coarse.state_dict(), warn=False)
    assert list(report.shape_mismatched) == ["classifier.fc1.weight"]


def test_vgg_keeps_layer_indices_when_pools_are_dropped():
    small = VGG(11, (1, 8, 8), 10, classifier_width=8)
    large = VGG(11, (1, 32, 32), 10, classifier_width=8)
    assert list(small.state_dict()) == list(large.state_dict())
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in small.features) == 3
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in large.features) == 5


def test_freeze_all_but_classifier_leaves_only_the_head_trainable():
    model = resnet_model_fn(_loaders((1, 8, 8)), 0, base_width=4)
    freeze_all_but(model, "classifier")
    assert trainable_parameter_names(model) == ["classifier.weight", "classifier.bias"]


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: resnet_model_fn(_loaders((1, 8, 8)), 0, depth=20), "18, 34, 50"),
        (lambda: resnet_model_fn(_loaders((1, 8, 8)), 0, stem="tiny"), "stem"),
        (lambda: vgg_model_fn(_loaders((1, 8, 8)), 0, depth=19), "11, 16"),
        (lambda: lenet5_model_fn(_loaders((64,)), 0), "flatten"),
        (lambda: lenet5_model_fn(_loaders((1, 1, 1)), 0), "image_size"),
    ],
)
def test_bad_configs_raise_config_error(call, fragment):
    with pytest.raises(ConfigError, match=fragment):
        call()


def test_lenet_learns_digits():
    torch.manual_seed(0)
    digits = digits_dataset_fn(0)
    model = lenet5_model_fn(digits, 0, activation="relu")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(6):
        for x, y in digits["train"]:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        correct = sum((model(x).argmax(1) == y).sum().item() for x, y in digits["test"])
    assert correct / len(digits["test"].dataset) > 0.8
    assert isinstance(model, LeNet5)
