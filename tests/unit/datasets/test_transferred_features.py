"""transferred_features_dataset_fn: the features a previous step handed on, as inputs."""

import pytest
import torch

from nntransfer.datasets.cached_features import cached_feature_loaders, transferred_features_dataset_fn
from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.errors import DataError, TransferError
from nntransfer.models.lenet import lenet5_model_fn
from nntransfer.trainer.generate import generate_transfer_data

SOURCE = {"class_range": [5, 9], "examples_per_class": 4, "split_seed": 0, "batch_size": 8}


@pytest.fixture(scope="module")
def generated():
    loaders = digits_dataset_fn(3, **SOURCE)
    model = lenet5_model_fn(loaders, 3)
    _, output, _ = generate_transfer_data(model, loaders, 3, layers=("features",))
    return model, loaders, output["transfer_data"]


def test_inputs_are_the_generated_features_and_labels_follow_the_source(generated):
    model, source, transfer_data = generated
    loaders = transferred_features_dataset_fn(3, dataset_config=SOURCE, transfer_data=transfer_data)
    cached = cached_feature_loaders(model, source, layer="features", seed=3)
    for split in ("train", "validation", "test"):
        dataset = loaders[split].dataset
        assert torch.equal(dataset.images, torch.from_numpy(transfer_data[split]["features.features"]))
        assert torch.equal(dataset.labels, source[split].dataset.labels)
        assert dataset.classes == [5, 6, 7, 8, 9]
        assert dataset.input_shape == (64,)
        assert torch.allclose(dataset.images, cached[split].dataset.images.to_tensor(), atol=1e-6)
    # Same seed, same shuffle: the batches come in the same order as the source's.
    first = next(iter(loaders["train"]))[1]
    assert torch.equal(first, next(iter(source["train"]))[1])


def test_without_transfer_data_it_says_which_step_must_come_first():
    with pytest.raises(DataError, match="generate_transfer_data"):
        transferred_features_dataset_fn(0, dataset_config=SOURCE)


def test_a_missing_feature_array_is_named(generated):
    _, _, transfer_data = generated
    with pytest.raises(DataError, match="features.conv"):
        transferred_features_dataset_fn(0, dataset_config=SOURCE, transfer_data=transfer_data, feature="features.conv")


def test_features_from_another_dataset_config_are_refused(generated):
    _, _, transfer_data = generated
    other = {**SOURCE, "examples_per_class": 5}
    with pytest.raises(TransferError, match="same dataset config"):
        transferred_features_dataset_fn(3, dataset_config=other, transfer_data=transfer_data)


def test_a_missing_split_is_named(generated):
    _, _, transfer_data = generated
    partial = {split: arrays for split, arrays in transfer_data.items() if split != "test"}
    with pytest.raises(DataError, match="'test'"):
        transferred_features_dataset_fn(3, dataset_config=SOURCE, transfer_data=partial)


def test_an_augmented_source_config_is_refused(generated):
    """The generated features are of clean images; training on them cannot be augmented."""
    _, _, transfer_data = generated
    augmented = {**SOURCE, "augmentation": {"rotation": 10}}
    with pytest.raises(DataError, match="'train' split is augmented.*remove `augmentation`"):
        transferred_features_dataset_fn(3, dataset_config=augmented, transfer_data=transfer_data)
