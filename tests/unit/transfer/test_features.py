import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from nntransfer.errors import TransferError
from nntransfer.transfer.features import FeatureCapture, LayerNotFoundError, extract_features


def make_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))


def test_capture_keeps_graph_unless_detached():
    net = make_net()
    x = torch.randn(4, 3)
    with FeatureCapture(net, ["1", "3"]) as captured:
        out = net(x)
        assert torch.equal(captured["3"], out) and captured["3"].requires_grad
        assert captured["1"].requires_grad
    with FeatureCapture(net, "1", detach=True) as captured:
        net(x)
        assert not captured["1"].requires_grad
    net(x)
    assert set(captured.outputs) == {"1"}  # hooks removed: nothing new recorded



def test_capture_is_not_overwritten_by_a_later_inplace_op():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(inplace=True), nn.Linear(5, 2))
    x = torch.randn(8, 3)
    before_relu = net[0](x)
    with FeatureCapture(net, "0", detach=True) as captured:
        net(x)
        torch.testing.assert_close(captured["0"], before_relu.detach())
    features = extract_features(net, TensorDataset(x, torch.zeros(8).long()), layer="0")
    np.testing.assert_allclose(features, before_relu.detach().numpy(), rtol=1e-6)
    with FeatureCapture(net, "0") as captured:
        net(x)
        captured["0"].sum().backward()
    torch.testing.assert_close(net[0].bias.grad, torch.full((5,), 8.0))

def test_capture_unknown_layer_and_missing_output():
    net = make_net()
    with pytest.raises(LayerNotFoundError, match="available layers: 0, 1, 2, 3"):
        FeatureCapture(net, "fc")
    with FeatureCapture(net, "2") as captured:
        with pytest.raises(TransferError, match="run a forward pass"):
            captured["2"]


def test_extract_is_in_dataset_order_even_with_shuffled_loader():
    net = make_net()
    x = torch.randn(23, 3)
    y = torch.arange(23)
    loader = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True)
    net.train()
    features = extract_features(net, loader)
    assert net.training
    net.eval()
    with torch.no_grad():
        expected = net(x).numpy()
    assert features.shape == (23, 2)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)


def test_extract_named_layers_returns_dict():
    net = make_net()
    x = torch.randn(10, 3)
    loader = DataLoader(TensorDataset(x, torch.zeros(10)), batch_size=3, shuffle=True)
    out = extract_features(net, loader, layer=["0", "2"])
    assert set(out) == {"0", "2"}
    assert out["0"].shape == (10, 5)
    assert (out["2"] >= 0).all()
    single = extract_features(net, loader, layer="0")
    np.testing.assert_array_equal(single, out["0"])


def test_extract_uses_loader_collate_fn():
    data = [({"x": torch.full((3,), float(i))}, i) for i in range(7)]

    def collate(items):
        return torch.stack([item[0]["x"] for item in items]), torch.tensor([item[1] for item in items])

    net = nn.Linear(3, 1)
    loader = DataLoader(data, batch_size=2, shuffle=True, collate_fn=collate)
    out = extract_features(net, loader)
    with torch.no_grad():
        expected = net(torch.stack([torch.full((3,), float(i)) for i in range(7)])).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_extract_refuses_iterable_dataset_and_bad_rows():
    class Stream(IterableDataset):
        def __iter__(self):
            yield torch.zeros(3), 0

    with pytest.raises(TransferError, match="map-style"):
        extract_features(make_net(), DataLoader(Stream()))

    class Pooled(nn.Module):
        def forward(self, x):
            return x.mean(0, keepdim=True)

    loader = DataLoader(TensorDataset(torch.randn(6, 3), torch.zeros(6)), batch_size=3)
    with pytest.raises(TransferError, match="one row per input sample"):
        extract_features(Pooled(), loader)


def test_extract_unwraps_extras_output_models_and_passes_data_key():
    class MultiTask(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleDict({"a": nn.Linear(3, 2), "b": nn.Linear(3, 4)})

        def forward(self, x, data_key="a"):
            return {"hidden": x}, self.heads[data_key](x)

    net = MultiTask()
    loader = DataLoader(TensorDataset(torch.randn(5, 3), torch.zeros(5)), batch_size=2)
    assert extract_features(net, loader).shape == (5, 2)
    assert extract_features(net, loader, data_key="b").shape == (5, 4)
