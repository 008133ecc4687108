"""The loop enforces the control-flow table of nntransfer.trainer.control, in every phase."""

import pytest
import torch
from torch.nn.functional import cross_entropy

from nntransfer.errors import TrainingError
from nntransfer.trainer.control import ALLOWED, LoopControl, SkipBatch, SkipOptimizerStep, StopEpoch, StopTraining
from nntransfer.trainer.loop import Loop
from nntransfer.trainer.module import MainLoopModule

HOOKS = (
    "setup", "start", "pre_epoch", "pre_forward", "post_forward",
    "post_backward", "post_optimizer", "post_epoch", "finish", "teardown",
)
BATCH_EVENTS = ("pre_forward", "post_forward", "post_backward", "post_optimizer")
CONTROLS = (SkipBatch, SkipOptimizerStep, StopEpoch, StopTraining)

PERMITTED = {
    ("pre_epoch", StopTraining),
    *((event, control) for event in ("pre_forward", "post_forward") for control in (SkipBatch, StopEpoch, StopTraining)),
    *(("post_backward", control) for control in CONTROLS),
    ("post_optimizer", StopEpoch),
    ("post_optimizer", StopTraining),
    ("post_epoch", StopTraining),
}
"""The documented table (control.py, docs/trainer.md), written out here rather than read from ALLOWED."""

FORBIDDEN = [(hook, control) for hook in HOOKS for control in CONTROLS if (hook, control) not in PERMITTED]


class RaiseFrom(MainLoopModule):
    """Raises ``control`` from ``hook`` whenever ``when(state)`` holds; batch events only in ``phase``."""

    name = "raise_from"

    def __init__(self, hook, control, phase="train", when=lambda state: True):
        self.hook, self.control, self.phase, self.when = hook, control, phase, when
        self.epochs_closed = []

    def _maybe(self, hook, state):
        if hook != self.hook or (hook in BATCH_EVENTS and state.phase != self.phase):
            return
        if self.when(state):
            raise self.control

    def setup(self, state):
        self._maybe("setup", state)

    def start(self, state):
        self._maybe("start", state)

    def pre_epoch(self, state):
        self._maybe("pre_epoch", state)

    def pre_forward(self, state):
        self._maybe("pre_forward", state)

    def post_forward(self, state):
        self._maybe("post_forward", state)

    def post_backward(self, state):
        self._maybe("post_backward", state)

    def post_optimizer(self, state):
        self._maybe("post_optimizer", state)

    def post_epoch(self, state):
        self.epochs_closed.append(state.epoch)
        self._maybe("post_epoch", state)

    def finish(self, state):
        self._maybe("finish", state)

    def teardown(self, state):
        self._maybe("teardown", state)


def test_the_enforced_table_is_the_documented_one():
    assert set(ALLOWED) == set(HOOKS)
    assert {(hook, control) for hook, controls in ALLOWED.items() for control in controls} == PERMITTED
    assert len(FORBIDDEN) == 26


@pytest.mark.parametrize("hook, control", FORBIDDEN, ids=[f"{hook}-{control.__name__}" for hook, control in FORBIDDEN])
def test_a_control_exception_where_the_table_forbids_it_is_a_training_error(model, loaders, hook, control):
    trainer = Loop(model, loaders, epochs=1, device="cpu", modules=[RaiseFrom(hook, control)])
    with pytest.raises(TrainingError, match=rf"module 'raise_from' raised {control.__name__} from {hook}[ ,]") as caught:
        trainer.fit()
    assert isinstance(caught.value.__cause__, control)


def test_the_bare_base_class_is_refused_and_the_message_lists_what_is_allowed(model, loaders):
    trainer = Loop(model, loaders, epochs=1, device="cpu", modules=[RaiseFrom("post_backward", LoopControl)])
    with pytest.raises(TrainingError, match="allowed there: SkipBatch, SkipOptimizerStep, StopEpoch, StopTraining"):
        trainer.fit()


@pytest.mark.parametrize("hook", ["pre_forward", "post_forward"])
@pytest.mark.parametrize("phase", ["validation", "test"])
def test_skip_optimizer_step_is_refused_in_an_evaluation_phase(model, loaders, hook, phase):
    trainer = Loop(model, loaders, epochs=1, device="cpu", modules=[RaiseFrom(hook, SkipOptimizerStep, phase)])
    with pytest.raises(TrainingError, match=rf"SkipOptimizerStep from {hook} in the {phase} phase"):
        trainer.fit()
        trainer.evaluate(phase)


def validation_loss(model, loaders, rows):
    inputs, targets = loaders["validation"].dataset.tensors
    with torch.no_grad():
        return cross_entropy(model(inputs[rows]), targets[rows]).item()


def test_skip_batch_in_validation_leaves_the_batch_out_of_its_metrics(model, loaders):
    skip_first = RaiseFrom("pre_forward", SkipBatch, "validation", when=lambda state: state.batch_index == 0)
    history = Loop(model, loaders, epochs=1, device="cpu", modules=[skip_first]).fit()
    assert history["validation.loss"][0] == pytest.approx(validation_loss(model, loaders, slice(16, None)), rel=1e-5)


def test_stop_epoch_in_validation_keeps_the_batches_read_so_far(model, loaders):
    stop_second = RaiseFrom("post_forward", StopEpoch, "validation", when=lambda state: state.batch_index == 1)
    trainer = Loop(model, loaders, epochs=2, device="cpu", modules=[stop_second])
    history = trainer.fit()
    assert history["epoch"] == [1, 2]
    assert history["validation.loss"][1] == pytest.approx(validation_loss(model, loaders, slice(0, 16)), rel=1e-5)


def test_stop_training_in_validation_ends_training_after_that_epoch(model, loaders):
    stop = RaiseFrom("pre_forward", StopTraining, "validation")
    trainer = Loop(model, loaders, epochs=3, device="cpu", modules=[stop])
    history = trainer.fit()
    assert history["epoch"] == [1] and stop.epochs_closed == [1]
    assert "validation.loss" not in history  # stopped before its first batch counted
    assert trainer.state.optimizer_steps == 6


def test_stop_training_in_an_evaluation_outside_fit_only_ends_that_evaluation(model, loaders):
    stop_second = RaiseFrom("post_forward", StopTraining, "test", when=lambda state: state.batch_index == 1)
    trainer = Loop(model, loaders, epochs=2, device="cpu", modules=[stop_second])
    before = trainer.evaluate("test")
    assert set(before) == {"test.loss", "test.accuracy"} and not trainer.state.stop_requested
    assert trainer.fit()["epoch"] == [1, 2]


def test_stop_epoch_from_post_optimizer_ends_the_epoch_after_that_step(model, loaders):
    stop_first = RaiseFrom("post_optimizer", StopEpoch, when=lambda state: state.optimizer_steps == 1)
    trainer = Loop(model, loaders, epochs=2, device="cpu", modules=[stop_first])
    history = trainer.fit()
    assert trainer.state.optimizer_steps == 1 + 6
    assert None not in history["validation.loss"]


class NoLength:
    """A loader without ``__len__``: the loop cannot see the last batch coming."""

    def __init__(self, loader):
        self.loader = loader

    def __iter__(self):
        return iter(self.loader)


@pytest.mark.parametrize("control, epochs_run", [(StopTraining, [1]), (StopEpoch, [1, 2])])
def test_control_from_the_step_after_a_loader_without_length_ended(model, loaders, control, epochs_run):
    """6 batches, a step every 4: the second step comes after the loader ran out."""
    loaders = {"train": NoLength(loaders["train"]), "validation": loaders["validation"]}
    raiser = RaiseFrom("post_optimizer", control, when=lambda state: state.optimizer_steps == 2)
    trainer = Loop(model, loaders, epochs=2, device="cpu", accumulation_steps=4, modules=[raiser])
    assert trainer.fit()["epoch"] == epochs_run
