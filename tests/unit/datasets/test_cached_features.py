import logging

import numpy as np
import pytest
import torch

from nntransfer.datasets.cached_features import cached_feature_loaders, cached_features_dataset_fn
from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.errors import DataError, TransferError
from nntransfer.models.mlp import mlp_model_fn

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.manual_seed(0)
    loaders = digits_dataset_fn(0)
    model = mlp_model_fn(loaders, 0, hidden_sizes=[16])
    path = tmp_path_factory.mktemp("weights") / "mlp.pt"
    torch.save(model.state_dict(), path)
    return model, path


def test_features_follow_dataset_order(trained):
    model, _ = trained
    loaders = digits_dataset_fn(0)
    cached = cached_feature_loaders(model, loaders, layer="features")
    for split in ("train", "test"):
        source, target = loaders[split].dataset, cached[split].dataset
        clean = torch.stack([source[i][0] for i in range(len(source))])
        with torch.no_grad():
            expected = model.features(clean)
        assert torch.allclose(target.images.to_tensor(), expected, atol=1e-6)
        assert torch.equal(target.labels, source.labels)
        assert target.num_classes == 10 and target.input_shape == (16,)


def test_dataset_fn_loads_weights_and_carries_transfer_data(trained):
    model, path = trained
    n_train = len(digits_dataset_fn(0)["train"].dataset)
    logits = np.random.default_rng(0).normal(size=(n_train, 10))
    cached = cached_features_dataset_fn(
        0,
        model_config={"hidden_sizes": [16]},
        weights_path=str(path),
        transfer_data={"train": {"logits": logits}},
    )
    x, y, extras = next(iter(cached["train"]))
    assert x.shape == (64, 16)
    assert np.allclose(extras["logits"].numpy(), logits[extras["index"].numpy()], atol=1e-6)
    first = cached["train"].dataset.images[0]
    with torch.no_grad():
        assert torch.allclose(first, model.features(digits_dataset_fn(0)["train"].dataset[0][0][None])[0], atol=1e-6)


def test_a_head_trained_on_cached_features_learns(trained):
    _, path = trained
    cached = cached_features_dataset_fn(0, model_config={"hidden_sizes": [16]}, weights_path=str(path))
    head = mlp_model_fn(cached, 0, hidden_sizes=[])
    optimizer = torch.optim.Adam(head.parameters(), lr=3e-2)
    for _ in range(10):
        for x, y in cached["train"]:
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(head(x), y).backward()
            optimizer.step()
    with torch.no_grad():
        correct = sum((head(x).argmax(1) == y).sum().item() for x, y in cached["test"])
    # A random 16-unit ReLU layer keeps enough of the digits for a linear head.
    assert correct / len(cached["test"].dataset) > 0.6


def test_augmentation_is_refused_since_features_are_computed_once(trained):
    """Features of clean images would be trained on while the config records augmentation."""
    model, path = trained
    augmented = digits_dataset_fn(0, augmentation={"shift": 1, "noise": 0.1})
    with pytest.raises(DataError, match="'train' split is augmented.*remove `augmentation`"):
        cached_feature_loaders(model, augmented, layer="features")
    with pytest.raises(DataError, match="remove `augmentation`"):
        cached_features_dataset_fn(
            0, dataset_config={"augmentation": {"shift": 1}}, model_config={"hidden_sizes": [16]}, weights_path=str(path)
        )


def test_dropout_in_the_backbone_is_logged_as_a_warning(caplog):
    """Cached features come from the backbone in eval mode; a frozen backbone run in training applies dropout."""
    loaders = digits_dataset_fn(0)
    model = mlp_model_fn(loaders, 0, hidden_sizes=[16], dropout=0.3)
    with caplog.at_level(logging.WARNING, logger="nntransfer.datasets.cached_features"):
        cached_feature_loaders(model, loaders, layer="features")
    assert len(caplog.records) == 1 and caplog.records[0].levelno == logging.WARNING
    assert "features.3 (Dropout, p=0.3)" in caplog.text and "eval mode" in caplog.text

    caplog.clear()
    cached_feature_loaders(mlp_model_fn(loaders, 0, hidden_sizes=[16], batch_norm=True), loaders, layer="features")
    assert caplog.records == []  # BatchNorm with running statistics acts as the frozen backbone's does


def test_batchnorm_without_running_statistics_is_logged_as_a_warning(caplog):
    loaders = digits_dataset_fn(0)
    model = mlp_model_fn(loaders, 0, hidden_sizes=[16], batch_norm=True)
    norm = model.features[2]
    norm.track_running_stats = False
    norm.running_mean = norm.running_var = norm.num_batches_tracked = None
    with caplog.at_level(logging.WARNING, logger="nntransfer.datasets.cached_features"):
        cached_feature_loaders(model, loaders, layer="features")
    assert "features.2 (BatchNorm1d without running statistics)" in caplog.text


def test_weights_of_another_network_are_rejected(trained):
    _, path = trained
    with pytest.raises(TransferError, match="do not fit"):
        cached_features_dataset_fn(0, model_config={"hidden_sizes": [8]}, weights_path=str(path))
