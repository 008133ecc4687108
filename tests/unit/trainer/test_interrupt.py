"""Ctrl-C and SIGTERM during training: stop at a batch boundary after a checkpoint, resume exactly."""

import os
import signal
import time

import pytest
import torch

from nntransfer.trainer import interrupt
from nntransfer.trainer.checkpoints import MemoryCheckpointStore
from nntransfer.trainer.loop import Loop
from nntransfer.trainer.module import MainLoopModule

MODULES = {
    "lr_schedule": {"kind": "step", "step_size": 2, "gamma": 0.5},
    "warmup": {"steps": 3},
    "early_stopping": {"patience": 10},
}


@pytest.fixture(autouse=True)
def _no_leftover_request():
    interrupt.reset()
    yield
    interrupt.reset()


class Callback:
    def __init__(self, store):
        self.checkpoint_store = store

    def __call__(self, epoch):
        pass


class StopAt(MainLoopModule):
    """Asks for a stop in ``epoch`` after training batch ``batch`` (0-based), as a first signal would."""

    name = "stop_at"

    def __init__(self, epoch, batch, send=None):
        self.epoch, self.batch, self.send = epoch, batch, send

    def post_forward(self, state):
        if state.phase == "train" and (state.epoch, state.batch_index) == (self.epoch, self.batch):
            if self.send is None:
                interrupt.request(signal.SIGTERM)
            else:
                os.kill(os.getpid(), self.send)


def train(make_model, make_loaders, epochs, cb=None, extra=()):
    modules = [*extra]
    loop = Loop(make_model(seed=1, dropout=0.3), make_loaders(), epochs=epochs, seed=7, lr=0.01, device="cpu",
                modules=modules + list(MODULES.items()), cb=cb)
    loop.fit()
    return loop


def weights(loop):
    return {name: tensor.clone() for name, tensor in loop.state.model.state_dict().items()}


@pytest.mark.parametrize("epoch, batch", [(2, 2), (3, 0), (1, 5)])
def test_a_run_stopped_mid_epoch_resumes_bit_identical(make_model, make_loaders, epoch, batch):
    straight = train(make_model, make_loaders, 4)
    cb = Callback(MemoryCheckpointStore())
    with pytest.raises(interrupt.Interrupted, match=f"after batch {batch + 1} of epoch {epoch}") as stopped:
        train(make_model, make_loaders, 4, cb=cb, extra=[StopAt(epoch, batch)])
    assert stopped.value.exit_code == 143
    saved = cb.checkpoint_store.load("last")
    assert saved["epoch"] == epoch - 1 and saved["partial"]["batches"] == batch + 1
    interrupt.reset()

    resumed = train(make_model, make_loaders, 4, cb=cb)
    assert resumed.module("checkpointing").resumed_from == epoch - 1
    for name, tensor in weights(straight).items():
        assert torch.equal(tensor, resumed.state.model.state_dict()[name]), name
    assert resumed.state.history == straight.state.history
    assert resumed.state.optimizer_steps == straight.state.optimizer_steps


def test_resuming_a_partial_epoch_without_skipping_would_differ(make_model, make_loaders):
    """The test above can fail: a resume that starts the interrupted epoch over ends elsewhere."""
    straight = train(make_model, make_loaders, 3)
    cb = Callback(MemoryCheckpointStore())
    with pytest.raises(interrupt.Interrupted):
        train(make_model, make_loaders, 3, cb=cb, extra=[StopAt(2, 3)])
    interrupt.reset()
    payload = cb.checkpoint_store.load("last")
    del payload["partial"]
    cb.checkpoint_store.save(payload["epoch"], payload, ["last"])
    resumed = train(make_model, make_loaders, 3, cb=cb)
    assert any(not torch.equal(tensor, resumed.state.model.state_dict()[name])
               for name, tensor in weights(straight).items())


def test_the_data_pipelines_own_generators_resume_mid_epoch():
    from nntransfer.datasets.digits import digits_dataset_fn
    from nntransfer.models.mlp import mlp_model_fn

    def run(cb=None, extra=()):
        data = digits_dataset_fn(0, batch_size=64, train_subset=0.3, augmentation={"shift": 1, "noise": 0.1})
        loop = Loop(mlp_model_fn(data, 0, hidden_sizes=[16]), data, epochs=3, lr=1e-2, seed=0, cb=cb,
                    modules=list(extra))
        loop.fit()
        return loop

    straight = run()
    cb = Callback(MemoryCheckpointStore())
    with pytest.raises(interrupt.Interrupted):
        run(cb, [StopAt(2, 1)])
    interrupt.reset()
    resumed = run(cb)
    for name, tensor in weights(straight).items():
        assert torch.equal(tensor, resumed.state.model.state_dict()[name]), name


def test_a_stop_asked_for_in_the_last_epochs_validation_lets_the_training_finish(make_model, make_loaders):
    class AskInValidation(MainLoopModule):
        name = "ask"

        def post_forward(self, state):
            if state.phase == "validation" and state.epoch == 2:
                interrupt.request()

    cb = Callback(MemoryCheckpointStore())
    loop = train(make_model, make_loaders, 2, cb=cb, extra=[AskInValidation()])
    assert loop.state.epoch == 2 and interrupt.requested()


def test_real_signals_first_stops_cleanly_second_at_once(make_model, make_loaders):
    cb = Callback(MemoryCheckpointStore())
    with interrupt.handling_signals():
        with pytest.raises(interrupt.Interrupted, match="SIGINT received: training stopped after batch 3 of epoch 2"):
            train(make_model, make_loaders, 3, cb=cb, extra=[StopAt(2, 2, send=signal.SIGINT)])
        assert cb.checkpoint_store.load("last")["partial"]["batches"] == 3
        os.kill(os.getpid(), signal.SIGINT)  # within the repeat window: the same request, nothing happens
        time.sleep(interrupt.REPEAT_WINDOW_S + 0.05)
        with pytest.raises(interrupt.Interrupted, match="second time") as second:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler raises here, in the main thread
        assert second.value.exit_code == 130
    assert not interrupt.requested()  # forgotten when the outermost handling ends
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_outside_the_handling_is_left_to_whoever_handled_it_before():
    seen = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with interrupt.handling_signals():
            with interrupt.handling_signals():  # nested, as populate inside a worker
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
            assert interrupt.requested() and interrupt.signal_name() == "SIGTERM"
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert seen == [signal.SIGTERM] and not interrupt.requested()
    finally:
        signal.signal(signal.SIGTERM, previous)
