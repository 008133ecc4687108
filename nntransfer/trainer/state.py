"""The one object that the loop and every main-loop module share.

Modules receive the :class:`State` at each event instead of a long argument
list, and change the run by changing it (replace ``state.inputs``, add to
``state.loss``, set ``state.param_groups`` in ``setup``, ...).
"""

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(eq=False)
class State:
    """Everything about a run that a module may read or change.

    ``epoch`` counts from 1 while an epoch runs (0 before the first), so after
    training it is the number of epochs done.  ``metrics`` holds the current
    epoch's values under ``"<phase>.<name>"`` keys (``"train.loss"``,
    ``"validation.accuracy"``, ...); at the end of the epoch they are appended
    to ``history`` (name -> one value per epoch, ``None`` where an epoch did not
    measure it, aligned with ``history["epoch"]``).  ``checkpoint_store`` is the
    store that the run's ``cb`` brought (see :mod:`nntransfer.trainer.checkpoints`),
    or None.  ``partial_epoch`` describes an epoch that a signal interrupted
    (see :mod:`nntransfer.trainer.interrupt`): set by the loop before the
    ``interrupt`` hooks, and by checkpointing when it resumes such an epoch.
    """

    model: torch.nn.Module
    loaders: dict
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    max_epochs: int = 1
    seed: int | None = None
    optimizer: torch.optim.Optimizer | None = None
    scheduler: Any = None
    loss_fn: Any = None
    scaler: Any = None
    param_groups: list | None = None
    accumulation_steps: int = 1
    epoch: int = 0
    phase: str = "train"
    data_key: Any = None
    batch_index: int = 0
    inputs: Any = None
    targets: Any = None
    extras: dict = field(default_factory=dict)
    outputs: Any = None
    model_extras: Any = None
    loss: Any = None
    is_step: bool = False
    optimizer_steps: int = 0
    skipped_batches: int = 0
    skipped_steps: int = 0
    nonfinite_batches: int = 0
    stop_requested: bool = False
    checkpoint_store: Any = None
    partial_epoch: dict | None = None
    modules: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    _sums: dict = field(default_factory=dict, repr=False)
    _closed: bool = field(default=False, repr=False)

    def log(self, name: str, value) -> None:
        """Record a per-epoch value under ``name`` as given (e.g. ``"lr"``).

        A tensor is turned into a float once, at the end of the epoch, so
        logging never forces a device sync in the middle of training.  Values
        logged in ``post_epoch`` (after the epoch's metrics were closed) go
        straight into the epoch's entry of ``history``.
        """
        if not self._closed:
            self.metrics[name] = value
            return
        value = _to_python(value)
        self.metrics[name] = value
        values = self.history.setdefault(name, [None] * len(self.history["epoch"]))
        values[-1] = value

    def accumulate(self, name: str, value, weight: float = 1.0) -> None:
        """Add a per-batch value whose epoch mean is recorded as ``"<phase>.<name>"``.

        ``value`` is a mean over ``weight`` samples (e.g. a batch's mean loss
        term and the batch size); sums stay tensors until the epoch ends.
        """
        key = f"{self.phase}.{name}"
        entry = self._sums.get(key)
        value = value.detach() if isinstance(value, torch.Tensor) else value
        if entry is None:
            self._sums[key] = [value * weight, weight]
        else:
            entry[0] = entry[0] + value * weight
            entry[1] += weight

    def close_epoch(self) -> None:
        """Turn the epoch's values into floats and append them to ``history``.

        Called by the loop after validation and before ``post_epoch``.
        """
        for key, (total, weight) in self._sums.items():
            self.metrics[key] = total / weight if weight else None
        self._sums.clear()
        self.metrics = {name: _to_python(value) for name, value in self.metrics.items()}
        epochs = self.history.setdefault("epoch", [])
        done = len(epochs)
        epochs.append(self.epoch)
        for name, value in self.metrics.items():
            if name == "epoch":
                continue
            self.history.setdefault(name, [None] * done).append(value)
        for name, values in self.history.items():
            if len(values) == done:
                values.append(None)
        self._closed = True

    def new_epoch(self) -> None:
        """Start an empty set of metrics for the next epoch."""
        self.metrics = {}
        self._sums.clear()
        self._closed = False

    def last(self, name: str, default=None):
        """The most recent non-None value of ``name`` in history (or the current epoch)."""
        if name in self.metrics and self.metrics[name] is not None:
            return self.metrics[name]
        for value in reversed(self.history.get(name, ())):
            if value is not None:
                return value
        return default


def _to_python(value):
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.detach().cpu().tolist()
    return value
