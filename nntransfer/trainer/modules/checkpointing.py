"""Checkpoints every N epochs, and resume from the last one.

A checkpoint holds everything a run needs to continue exactly: model,
optimizer, scheduler, AMP scaler, every main-loop module's ``state_dict``,
the history, the loop's counters and the random states of python, numpy and
torch (and CUDA when in use).  A run resumed from epoch k therefore ends
bit-identical on CPU to one that never stopped.

A signal that stops training (Ctrl-C, SIGTERM; see
:mod:`nntransfer.trainer.interrupt`) makes it write "last" at once, in the
middle of an epoch if need be: such a checkpoint also holds how far the
epoch got, and a run resumed from it continues after the last batch trained,
bit-identical on CPU as well.

Tags: ``"last"`` is written every ``every`` epochs (but not sooner than
``min_interval`` seconds after the previous one) and at the end of training;
``"best"`` whenever ``objective`` improves (unless ``save_best=False``).  The
store keeps one checkpoint per tag.

Where checkpoints go, in this order of precedence:

* ``store=``: a :class:`~nntransfer.trainer.checkpoints.CheckpointStore`
  passed by code that builds the module itself;
* the store that the run's nnfabrik ``cb`` brings (its ``checkpoint_store``
  attribute, see :mod:`nntransfer.trainer.checkpoints`), which the loop puts
  in ``state.checkpoint_store``, so a job that crashed and is picked up again
  resumes from its last checkpoint.  When the config does not name this
  module, :meth:`Checkpointing.default_instance` still adds it for such a
  store (see :func:`nntransfer.trainer.modules.default_modules`); a module
  added this way writes "last" at most every :data:`AUTO_INTERVAL` seconds
  and no "best": it exists for resuming, and a database write per short
  epoch would cost more than the minutes of training a crash can lose;
* ``folder=``: a :class:`~nntransfer.trainer.checkpoints.LocalCheckpointStore`
  in that folder.
"""

import logging
import math
import time

from nntransfer.errors import ConfigError
from nntransfer.trainer.checkpoints import LocalCheckpointStore
from nntransfer.trainer.module import MainLoopModule
from nntransfer.trainer.objective import resolve_maximize
from nntransfer.trainer.randomness import capture_rng, data_generators, restore_rng

log = logging.getLogger("nntransfer.trainer")

AUTO_INTERVAL = 30.0
"""Seconds between "last" checkpoints of a module added for a ``cb``'s checkpoint store."""


class Checkpointing(MainLoopModule):
    name = "checkpointing"
    order = 1000
    metric_options = ("objective",)

    @classmethod
    def check_options(cls, options):
        """The objective's direction must be known: given as ``maximize``, or read from the metric's name."""
        resolve_maximize(cls.name, options["objective"], options["maximize"])

    @classmethod
    def default_instance(cls, state):
        """A resume-only instance when the run's ``cb`` brought a store; else none."""
        if state.checkpoint_store is None:
            return None
        return cls(save_best=False, min_interval=AUTO_INTERVAL)

    def __init__(
        self,
        every: int = 1,
        folder: str | None = None,
        objective: str = "validation.loss",
        maximize: bool | None = None,
        resume: bool = True,
        store=None,
        save_best: bool = True,
        min_interval: float = 0.0,
    ):
        if not isinstance(every, int) or every < 1:
            raise ConfigError(f"checkpointing: every must be an integer >= 1, got {every!r}.")
        if not isinstance(min_interval, (int, float)) or min_interval < 0:
            raise ConfigError(f"checkpointing: min_interval must be a number of seconds >= 0, got {min_interval!r}.")
        self.every = every
        self.folder = folder
        self.objective = objective
        self.maximize = resolve_maximize("checkpointing", objective, maximize)
        self.resume = resume
        self.store = store
        self.save_best = save_best
        self.min_interval = float(min_interval)
        self.best = None
        self.resumed_from = None
        self.last_saved = time.monotonic()

    def setup(self, state):
        if self.store is None:
            self.store = state.checkpoint_store
        if self.store is None and self.folder is not None:
            self.store = LocalCheckpointStore(self.folder)
        self.require(
            self.store is not None,
            "no place for checkpoints: give folder='...', pass store=..., "
            "or call the trainer with a cb that has a checkpoint_store attribute.",
        )

    def start(self, state):
        self.last_saved = time.monotonic()
        if not self.resume:
            return
        payload = self.store.load("last")
        if payload is not None:
            self.restore(state, payload)
            self.resumed_from = payload["epoch"]
            partial = payload.get("partial")
            log.info("resumed from the checkpoint written after epoch %d%s", payload["epoch"],
                     f" and {partial['batches']} batches of epoch {payload['epoch'] + 1}" if partial else "")

    def post_epoch(self, state):
        tags = []
        value = state.metrics.get(self.objective)
        if value is not None and not math.isnan(value) and (
            self.best is None or (value > self.best if self.maximize else value < self.best)
        ):
            self.best = value
            if self.save_best:
                tags.append("best")
        final = state.epoch == state.max_epochs or state.stop_requested
        due = state.epoch % self.every == 0 and time.monotonic() - self.last_saved >= self.min_interval
        if final or due:
            tags.append("last")
            self.last_saved = time.monotonic()
        if tags:
            self.store.save(state.epoch, self.capture(state), tags)

    def interrupt(self, state):
        """A signal stops training: write "last" now, with the epoch in progress (``state.partial_epoch``) if any.

        Such a checkpoint counts the epochs completed before the interrupted
        one; :meth:`restore` hands the partial epoch to the loop, which
        continues it after the batches already trained.
        """
        payload = self.capture(state)
        if state.partial_epoch is not None:
            payload["epoch"] = state.epoch - 1
            payload["partial"] = state.partial_epoch
        self.store.save(payload["epoch"], payload, ["last"])

    @staticmethod
    def capture(state) -> dict:
        scheduler = state.scheduler
        return {
            "epoch": state.epoch,
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict() if state.optimizer is not None else None,
            "scheduler": scheduler.state_dict() if hasattr(scheduler, "state_dict") else None,
            "scaler": state.scaler.state_dict() if state.scaler is not None else None,
            "modules": {module.name: module.state_dict() for module in state.modules},
            "history": {name: list(values) for name, values in state.history.items()},
            "counters": {
                "optimizer_steps": state.optimizer_steps,
                "skipped_batches": state.skipped_batches,
                "skipped_steps": state.skipped_steps,
                "nonfinite_batches": state.nonfinite_batches,
                "stop_requested": state.stop_requested,
            },
            "rng": capture_rng(),
            "data_rng": {name: generator.get_state() for name, generator in data_generators(state.loaders).items()},
        }

    @staticmethod
    def restore(state, payload: dict) -> None:
        state.model.load_state_dict(payload["model"])
        if payload["optimizer"] is not None and state.optimizer is not None:
            state.optimizer.load_state_dict(payload["optimizer"])
        if payload["scheduler"] is not None and state.scheduler is not None:
            state.scheduler.load_state_dict(payload["scheduler"])
        if payload["scaler"] is not None and state.scaler is not None:
            state.scaler.load_state_dict(payload["scaler"])
        for module in state.modules:
            if module.name in payload["modules"]:
                module.load_state_dict(payload["modules"][module.name])
        state.history = {name: list(values) for name, values in payload["history"].items()}
        saved = payload.get("data_rng", {})
        for name, generator in data_generators(state.loaders).items():
            if name in saved:
                generator.set_state(saved[name])
        for name, value in payload["counters"].items():
            setattr(state, name, value)
        state.epoch = payload["epoch"]
        state.partial_epoch = payload.get("partial")
        restore_rng(payload["rng"])

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict["best"]
