"""Transfer data records the split and sample order it was computed on, and a mismatch is refused on receipt."""

import numpy as np
import pytest
import torch

from nntransfer.datasets.cached_features import transferred_features_dataset_fn
from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.errors import TransferError
from nntransfer.models.mlp import mlp_model_fn
from nntransfer.serialization import transfer_data_from_bytes, transfer_data_to_bytes
from nntransfer.trainer.generate import generate_transfer_data
from nntransfer.transfer.provenance import ORDER_KEY, SPLIT_KEY, order_fingerprint

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def generated():
    """Logits and features of an untrained MLP on digits (seed 0), as stored and read back."""
    loaders = digits_dataset_fn(0)
    model = mlp_model_fn(loaders, 0, hidden_sizes=[8])
    _, output, _ = generate_transfer_data(model, loaders, 0, layers=("features",), device="cpu")
    return transfer_data_from_bytes(transfer_data_to_bytes(output["transfer_data"]))


def test_generated_data_records_split_and_sample_order(generated):
    labels = digits_dataset_fn(0)["validation"].dataset.labels
    assert str(generated["validation"][SPLIT_KEY]) == "validation"
    assert str(generated["validation"][ORDER_KEY]) == order_fingerprint(labels)
    loaders = digits_dataset_fn(0, transfer_data=generated)
    extras = next(iter(loaders["validation"]))[2]
    assert set(extras) == {"logits", "features.features", "index"}


def test_record_entries_added_by_a_layer_above_are_not_attached_as_rows(generated):
    annotated = {**generated["test"], "provenance.dataset_hash": np.asarray("0" * 32)}
    loaders = digits_dataset_fn(0, transfer_data={"test": annotated})
    assert set(next(iter(loaders["test"]))[2]) == {"logits", "features.features", "index"}


def test_logits_of_another_split_of_the_same_size_are_refused(generated):
    assert len(generated["validation"]["logits"]) == len(generated["test"]["logits"])
    with pytest.raises(TransferError, match="computed on split 'validation'.*handed to split 'test'"):
        digits_dataset_fn(0, transfer_data={"test": generated["validation"]})


def test_logits_of_another_sample_order_are_refused(generated):
    """split_seed 1 gives a validation split of the same size with other samples in another order."""
    with pytest.raises(TransferError, match=r"fingerprint [0-9a-f]+.*fingerprint [0-9a-f]+"):
        digits_dataset_fn(0, split_seed=1, transfer_data={"validation": generated["validation"]})


def test_transferred_features_check_the_split_too(generated):
    swapped = {**generated, "test": generated["validation"]}
    with pytest.raises(TransferError, match="computed on split 'validation'.*handed to split 'test'"):
        transferred_features_dataset_fn(0, dataset_config={}, transfer_data=swapped)
    loaders = transferred_features_dataset_fn(0, dataset_config={}, transfer_data=generated)
    assert loaders["test"].dataset.input_shape == (8,)


def test_data_without_a_record_is_checked_by_length_only():
    """Data stored before the record existed, or made by hand, still arrives."""
    n_test = len(digits_dataset_fn(0)["test"].dataset)
    loaders = digits_dataset_fn(0, transfer_data={"test": {"logits": np.zeros((n_test, 10))}})
    assert set(next(iter(loaders["test"]))[2]) == {"logits", "index"}


def test_the_fingerprint_depends_on_order_and_values_not_on_the_integer_type():
    labels = np.array([3, 1, 4, 1, 5])
    assert order_fingerprint(labels) == order_fingerprint(torch.tensor(labels, dtype=torch.int32))
    assert order_fingerprint(labels) != order_fingerprint(labels[::-1])
    assert order_fingerprint(labels) != order_fingerprint(labels[:4])
    assert order_fingerprint([{"a": 1}]) is None
