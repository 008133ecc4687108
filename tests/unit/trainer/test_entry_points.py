import inspect
import json
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from nntransfer.errors import TrainingError, TransferError
from nntransfer.trainer.generate import generate_transfer_data
from nntransfer.trainer.standard import standard_trainer


def test_standard_trainer_contract(model, loaders):
    score, output, model_state = standard_trainer(
        model, loaders, seed=3, epochs=3, lr=0.01, device="cpu",
        modules={"early_stopping": {"patience": 2}}, score_metric="test.accuracy",
    )
    assert score == output["final"]["test.accuracy"]
    assert {"validation.loss", "validation.accuracy", "test.loss", "test.accuracy"} <= set(output["final"])
    assert output["history"]["epoch"] == list(range(1, output["epochs"] + 1))
    assert set(model_state) == set(model.state_dict())
    assert all(value.device.type == "cpu" for value in model_state.values())
    json.dumps(output)  # plain values only, storable anywhere


def test_standard_trainer_score_is_from_the_returned_model(model, loaders):
    score, output, _ = standard_trainer(model, loaders, seed=0, epochs=2, device="cpu")
    x, y = loaders["validation"].dataset.tensors
    with torch.no_grad():
        assert score == pytest.approx((model(x).argmax(1) == y).float().mean().item())


def test_standard_trainer_signature_is_json_able():
    parameters = list(inspect.signature(standard_trainer).parameters.values())
    assert [p.name for p in parameters[:5]] == ["model", "dataloaders", "seed", "uid", "cb"]
    for parameter in parameters[5:]:
        assert parameter.kind is parameter.KEYWORD_ONLY
        assert parameter.annotation is not parameter.empty
        json.dumps(parameter.default)


def test_standard_trainer_reports_bad_final_choices(model, loaders):
    with pytest.raises(TrainingError, match=r"final_splits names \['holdout'\]"):
        standard_trainer(model, loaders, seed=0, epochs=1, device="cpu", final_splits=("holdout",))
    with pytest.raises(TrainingError, match="score_metric 'test.f1' was not measured"):
        standard_trainer(model, loaders, seed=0, epochs=1, device="cpu", score_metric="test.f1")


class IndexModel(torch.nn.Module):
    """Logits that encode the sample: row i's logits are its inputs, so alignment is checkable."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Identity()
        self.head = torch.nn.Linear(3, 3)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(3))
            self.head.bias.zero_()

    def forward(self, x):
        return self.head(self.body(x))


def test_generated_rows_follow_dataset_order_under_a_shuffled_loader():
    inputs = torch.arange(60, dtype=torch.float32).reshape(20, 3)
    targets = inputs[:, 0].long() % 3
    dataset = TensorDataset(inputs, targets)
    loaders = {
        "train": DataLoader(dataset, batch_size=6, shuffle=True),
        "validation": DataLoader(dataset, batch_size=6),
    }
    score, output, _ = generate_transfer_data(IndexModel(), loaders, seed=0, layers=("body",), device="cpu")
    data = output["transfer_data"]
    assert set(data) == {"train", "validation"}
    np.testing.assert_array_equal(data["train"]["logits"], inputs.numpy())
    np.testing.assert_array_equal(data["train"]["features.body"], inputs.numpy())
    expected = (inputs.argmax(1) == targets).float().mean().item()
    assert score == pytest.approx(expected)
    shuffled = torch.cat([batch[0] for batch in loaders["train"]])
    assert not torch.equal(shuffled, inputs)  # the naive way would have been misaligned


def test_generate_refuses_unusable_input():
    dataset = TensorDataset(torch.randn(4, 3), torch.zeros(4).long())
    with pytest.raises(TransferError, match="none of the splits"):
        generate_transfer_data(IndexModel(), {"other": DataLoader(dataset)}, seed=0, device="cpu")
    per_task = {"train": {"a": DataLoader(dataset)}}
    with pytest.raises(TransferError, match="one loader per data key"):
        generate_transfer_data(IndexModel(), per_task, seed=0, device="cpu")
    score, _, _ = generate_transfer_data(IndexModel(), {"train": DataLoader(dataset)}, seed=0, device="cpu")
    assert math.isnan(score)  # no validation split to score on



class PairLayer(torch.nn.Module):
    def forward(self, x):
        return x, x.sum(1)


class WithPairLayer(torch.nn.Module):
    """A model with a layer that returns a tuple, as recurrent layers do."""

    def __init__(self):
        super().__init__()
        self.pair = PairLayer()
        self.head = torch.nn.Linear(3, 3)

    def forward(self, x):
        return self.head(self.pair(x)[0])


def test_generate_names_a_layer_whose_output_is_not_a_tensor():
    dataset = TensorDataset(torch.randn(4, 3), torch.zeros(4).long())
    with pytest.raises(TransferError, match="layer 'pair' is a tuple, not a tensor"):
        generate_transfer_data(WithPairLayer(), {"train": DataLoader(dataset)}, seed=0, layers=("pair",), device="cpu")
