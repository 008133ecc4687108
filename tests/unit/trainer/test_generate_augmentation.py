"""Transfer data never comes from augmented inputs."""

import numpy as np

from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.models.mlp import mlp_model_fn
from nntransfer.trainer.generate import generate_transfer_data


def test_logits_of_an_augmented_split_are_those_of_the_clean_samples():
    augmented = digits_dataset_fn(0, batch_size=32, augmentation={"shift": 1, "noise": 0.3})
    clean = digits_dataset_fn(0, batch_size=32)
    model = mlp_model_fn(clean, 0, hidden_sizes=[8])
    first = generate_transfer_data(model, augmented, 0, splits=("train",))[1]["transfer_data"]["train"]["logits"]
    second = generate_transfer_data(model, augmented, 0, splits=("train",))[1]["transfer_data"]["train"]["logits"]
    reference = generate_transfer_data(model, clean, 0, splits=("train",))[1]["transfer_data"]["train"]["logits"]
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, reference)
    # the training loader itself still augments
    x_a = next(iter(augmented["train"]))[0]
    assert augmented["train"].dataset.augmentation is not None and x_a.shape[0] == 32
