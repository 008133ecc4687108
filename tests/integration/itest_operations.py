"""Trainer functions for the operations tests: slowed down per batch, so a signal or an outage lands mid-training."""

from __future__ import annotations

import time

from nntransfer.trainer.module import MainLoopModule


class SleepPerBatch(MainLoopModule):
    """Sleeps after every training batch (and once, longer, at ``long_batch`` of ``long_epoch`` when given)."""

    name = "sleep_per_batch"

    def __init__(self, seconds: float = 0.02, long_epoch: int | None = None, long_batch: int = 0,
                 long_seconds: float = 0.0, marker: str = ""):
        self.seconds = seconds
        self.long = (long_epoch, long_batch, long_seconds)
        self.marker = marker

    def post_optimizer(self, state):
        epoch, batch, seconds = self.long
        if state.epoch == epoch and state.batch_index == batch:
            if self.marker:
                with open(self.marker, "w") as file:
                    file.write(f"epoch {epoch} batch {batch}\n")
            time.sleep(seconds)
        time.sleep(self.seconds)


def slow_trainer(model, dataloaders, seed, uid=None, cb=None, *, batch_sleep: float = 0.02,
                 long_epoch: int | None = None, long_seconds: float = 0.0, marker: str = "", **config):
    """standard_trainer, sleeping ``batch_sleep`` after each batch (``long_seconds`` once, in ``long_epoch``,
    after writing the file ``marker``)."""
    from nntransfer.trainer.standard import standard_trainer

    modules = list((config.pop("modules", None) or {}).items())
    modules.append(SleepPerBatch(batch_sleep, long_epoch, 1, long_seconds, marker))
    return standard_trainer(model, dataloaders, seed, uid=uid, cb=cb, modules=modules, **config)


def failing_trainer(model, dataloaders, seed, uid=None, cb=None, *, epochs: int = 1):
    """Fails at once, with a message of two lines."""
    raise ValueError("the data has no column 'label'\nsecond line of the message")


def random_trainer(model, dataloaders, seed, uid=None, cb=None, *, epochs: int = 1):
    """A trainer whose result is not reproducible: fresh random weights every time (os.urandom seeded)."""
    import os

    import torch

    generator = torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little") >> 1)
    state = {name: torch.randn(value.shape, generator=generator) for name, value in model.state_dict().items()}
    return 0.5, {"epochs": epochs}, state
