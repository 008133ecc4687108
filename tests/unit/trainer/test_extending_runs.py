"""Calling a finished run again with more epochs on the same checkpoint store (extending it).

Extending continues from the checkpoint as if the run had been configured with
the new epoch count from the start.  That is possible only when nothing in the
first epochs depended on the count: a cosine schedule whose ``T_max`` is the
epoch count did, so extending under it is refused, while resuming a run that
stopped early (same count) and extending under an explicit ``T_max`` are exact.
"""

import pytest
import torch

from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.errors import TrainingError
from nntransfer.models.mlp import mlp_model_fn
from nntransfer.trainer.checkpoints import MemoryCheckpointStore
from nntransfer.trainer.standard import standard_trainer


class NodeLost(Exception):
    pass


class Store:
    """A ``cb`` that brings a checkpoint store and can stop the run after an epoch, as a lost node would."""

    def __init__(self, store, stop_after=None):
        self.checkpoint_store = store
        self.stop_after = stop_after

    def __call__(self, epoch):
        if epoch == self.stop_after:
            raise NodeLost


def train(epochs, cb=None, **schedule):
    data = digits_dataset_fn(0, train_subset=0.2)
    model = mlp_model_fn(data, 0, hidden_sizes=[16])
    _, output, state = standard_trainer(
        model, data, 0, cb=cb or Store(MemoryCheckpointStore()), epochs=epochs, lr=0.05, optimizer="sgd",
        modules={"lr_schedule": {"kind": "cosine", **schedule}, "checkpointing": {}},
    )
    return output["history"], state


def test_extending_a_finished_run_under_a_cosine_schedule_of_its_length_is_refused():
    cb = Store(MemoryCheckpointStore())
    history, _ = train(3, cb)
    assert history["lr"][-1] == pytest.approx(0.05 * 0.25)
    with pytest.raises(TrainingError, match="3 epochs.*epochs=6.*T_max"):
        train(6, cb)


def test_a_run_stopped_early_resumes_exactly_under_a_cosine_schedule():
    straight, expected = train(6)
    cb = Store(MemoryCheckpointStore(), stop_after=3)
    with pytest.raises(NodeLost):
        train(6, cb)
    cb.stop_after = None
    resumed, state = train(6, cb)
    assert resumed == straight
    for name, tensor in expected.items():
        assert torch.equal(state[name], tensor), name


def test_an_explicit_t_max_can_be_extended_exactly():
    straight, _ = train(6, T_max=6)
    cb = Store(MemoryCheckpointStore())
    train(3, cb, T_max=6)
    extended, _ = train(6, cb, T_max=6)
    assert extended["lr"] == pytest.approx(straight["lr"])
    assert extended["train.loss"] == straight["train.loss"]
