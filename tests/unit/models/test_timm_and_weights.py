"""timm backbones by name and weight files (.safetensors, torch.save) for every builder."""

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import DataLoader

timm = pytest.importorskip("timm")

from nntransfer.configs import ModelConfig  # noqa: E402
from nntransfer.errors import ConfigError, TransferError  # noqa: E402
from nntransfer.models.timm_models import TimmModel, timm_model_fn  # noqa: E402
from nntransfer.models.weights import read_state_dict  # noqa: E402
from nntransfer.models.zoo import torchvision_model_fn  # noqa: E402
from nntransfer.transfer.freezing import freeze_all_but, trainable_parameter_names  # noqa: E402
from nntransfer.transfer.loading import load_partial  # noqa: E402


class _Images(torch.utils.data.Dataset):
    def __init__(self, shape, num_classes):
        self.shape, self.num_classes = shape, num_classes

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return torch.rand(self.shape), torch.tensor(index % self.num_classes)


def _loaders(shape, num_classes):
    return {"train": DataLoader(_Images(shape, num_classes), batch_size=4)}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def resnet_files(tmp_path_factory):
    """A timm resnet18 with fixed random 'pretrained' weights, as .safetensors and as .pth."""
    torch.manual_seed(0)
    network = timm.create_model("resnet18", num_classes=20)
    folder = tmp_path_factory.mktemp("weights")
    save_file(network.state_dict(), str(folder / "model.safetensors"))
    torch.save({"state_dict": network.state_dict()}, folder / "model.pth")
    return network.eval(), folder


def test_both_formats_give_the_same_state_dict(resnet_files):
    network, folder = resnet_files
    assert _same(read_state_dict(str(folder / "model.safetensors")), network.state_dict())
    assert _same(read_state_dict(str(folder / "model.pth")), network.state_dict())


def test_a_ddp_prefix_is_removed(tmp_path):
    layer = nn.Linear(3, 2)
    torch.save({f"module.{k}": v for k, v in layer.state_dict().items()}, tmp_path / "ddp.pt")
    assert _same(read_state_dict(str(tmp_path / "ddp.pt")), layer.state_dict())


class _NotWeights:
    pass


@pytest.mark.parametrize(
    "content, fragment",
    [
        ({"weight": _NotWeights()}, "weights_only"),
        ({"weight": torch.zeros(2), "epoch": 3}, "not tensors"),
        ([torch.zeros(2)], "does not hold a state_dict"),
    ],
)
def test_files_that_are_not_plain_weights_are_refused(tmp_path, content, fragment):
    path = tmp_path / "bad.pt"
    torch.save(content, path)
    with pytest.raises(TransferError, match=fragment):
        read_state_dict(str(path))


def test_a_broken_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(TransferError, match="safetensors"):
        read_state_dict(str(path))


def test_timm_model_adapts_channels_and_keeps_the_matching_head(resnet_files):
    network, folder = resnet_files
    model = timm_model_fn(_loaders((1, 32, 32), 20), 0, name="resnet18", weights_path=str(folder / "model.safetensors"))
    assert isinstance(model, TimmModel)
    assert torch.equal(model.classifier.weight, network.fc.weight)
    assert torch.allclose(model.features.conv1.weight, network.conv1.weight.sum(dim=1, keepdim=True))
    assert torch.equal(model.features.layer4[1].conv2.weight, network.layer4[1].conv2.weight)
    model.eval()
    grey = torch.rand(2, 1, 32, 32)
    pooled = network.forward_head(network.forward_features(grey.repeat(1, 3, 1, 1)), pre_logits=True)
    assert torch.allclose(model.features(grey), pooled, atol=1e-4)
    assert torch.allclose(model(grey), network(grey.repeat(1, 3, 1, 1)), atol=1e-4)


def test_timm_model_replaces_the_head_seeded_for_other_classes(resnet_files):
    _, folder = resnet_files
    data = _loaders((3, 32, 32), 5)
    a, b = (timm_model_fn(data, 3, name="resnet18", weights_path=str(folder / "model.pth")) for _ in range(2))
    assert a.classifier.out_features == 5
    assert _same(a.state_dict(), b.state_dict())
    c = timm_model_fn(data, 4, name="resnet18", weights_path=str(folder / "model.pth"))
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
    assert torch.equal(a.features.conv1.weight, c.features.conv1.weight)


def test_a_vit_checkpoint_loads_at_another_image_size(tmp_path):
    torch.manual_seed(0)
    source = timm.create_model("vit_tiny_patch16_224", img_size=32, num_classes=3)
    torch.save(source.state_dict(), tmp_path / "vit.pth")
    model = timm_model_fn(
        _loaders((3, 48, 48), 3), 0, name="vit_tiny_patch16_224",
        weights_path=str(tmp_path / "vit.pth"), model_options={"img_size": 48},
    )
    assert model.features.pos_embed.shape[1] == 1 + 3 * 3  # resampled from 2x2 patches to 3x3
    assert torch.equal(model.classifier.weight, source.head.weight)
    assert model(torch.rand(2, 3, 48, 48)).shape == (2, 3)


def test_timm_model_without_weights_is_seeded_and_named_like_every_model():
    data = _loaders((3, 16, 16), 4)
    a, b = (timm_model_fn(data, 7, name="resnet18") for _ in range(2))
    assert _same(a.state_dict(), b.state_dict())
    assert {name.split(".")[0] for name, _ in a.named_parameters()} == {"features", "classifier"}
    assert a(torch.rand(2, 3, 16, 16)).shape == (2, 4)


def test_freezing_and_partial_loading_work_by_the_shared_names(resnet_files):
    _, folder = resnet_files
    model = timm_model_fn(_loaders((3, 32, 32), 5), 0, name="resnet18", weights_path=str(folder / "model.pth"))
    freeze_all_but(model, "classifier")
    assert trainable_parameter_names(model) == ["classifier.weight", "classifier.bias"]
    other = timm_model_fn(_loaders((3, 32, 32), 2), 1, name="resnet18")
    report = load_partial(other, model.state_dict(), exclude=["classifier"])
    assert torch.equal(other.features.conv1.weight, model.features.conv1.weight)
    assert not report.shape_mismatched and report.excluded == ["classifier.weight", "classifier.bias"]


def test_weights_of_another_architecture_are_refused(resnet_files):
    _, folder = resnet_files
    with pytest.raises(TransferError, match="do not fit timm's 'resnet34'"):
        timm_model_fn(_loaders((3, 32, 32), 5), 0, name="resnet34", weights_path=str(folder / "model.pth"))


def test_bad_names_and_options_fail_when_the_config_is_made():
    with pytest.raises(ConfigError, match="Did you mean 'resnet18'"):
        ModelConfig.for_fn("nntransfer.models.timm_models.timm_model_fn", name="resnet181")
    with pytest.raises(ConfigError, match="may not set 'num_classes'"):
        timm_model_fn(_loaders((3, 16, 16), 4), 0, model_options={"num_classes": 3})
    with pytest.raises(ConfigError, match="refuses the options"):
        timm_model_fn(_loaders((3, 16, 16), 4), 0, name="resnet18", model_options={"img_sise": 16})


def test_torchvision_model_reads_safetensors(tmp_path):
    torch.manual_seed(0)
    network = torchvision.models.shufflenet_v2_x0_5(num_classes=4)
    save_file(network.state_dict(), str(tmp_path / "net.safetensors"))
    model = torchvision_model_fn(
        _loaders((3, 32, 32), 4), 0, name="shufflenet_v2_x0_5", weights_path=str(tmp_path / "net.safetensors")
    )
    assert torch.equal(model.classifier.weight, network.fc.weight)
    assert torch.equal(model.features.conv1[0].weight, network.conv1[0].weight)
