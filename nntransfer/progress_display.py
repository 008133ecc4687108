"""What a running training shows, whatever its trainer: step, epoch of total, the objective and an ETA.

The table layer's training callback receives every epoch's metrics through
``cb`` (nnfabrik's contract), so a training shows its progress without its
trainer config naming any module.  Where it shows it:

* in a notebook, a ``tqdm.auto`` bar (a widget, no stray cursor codes);
* on a terminal (stderr is a TTY), a tqdm bar on stderr;
* otherwise (a batch job, a log file), one INFO line per epoch through
  ``logging``: ``<label>: epoch 3/20, validation.accuracy 0.9312, ETA 0:00:41``.

Nothing is shown when nntransfer's logger is quieter than INFO (``-q``), or
when ``NNTRANSFER_PROGRESS=off``.  The label says what trains (recipe,
chain, step, seed; see :func:`nntransfer.runner.step_labels`).
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
import time

log = logging.getLogger("nntransfer.progress")

OBJECTIVES = ("validation.accuracy", "validation.loss", "train.accuracy", "train.loss")
"""Metrics shown when the trainer config names no ``score_metric``, the first one present."""


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    try:
        return shell is not None and type(shell.get_ipython()).__name__ == "ZMQInteractiveShell"
    except Exception:
        return False


def _mode() -> str | None:
    if os.environ.get("NNTRANSFER_PROGRESS", "").strip().lower() in ("off", "0", "no", "false"):
        return None
    if not log.isEnabledFor(logging.INFO) and not _in_notebook():
        return None
    if _in_notebook():
        return "notebook"
    if sys.stderr is not None and hasattr(sys.stderr, "isatty") and sys.stderr.isatty():
        return "terminal"
    return "log"


def objective_of(metrics: dict, preferred: str | None = None) -> str | None:
    """The metric to show: ``preferred`` (the trainer's score metric) when measured, else the first of :data:`OBJECTIVES`."""
    for name in (preferred, *OBJECTIVES):
        if name and isinstance(metrics.get(name), (int, float)):
            return name
    return None


def _eta(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(round(seconds))))


class EpochDisplay:
    """Shows the epochs of one training (see the module doc); ``update`` after each epoch, ``close`` at the end."""

    def __init__(self, label: str, epochs: int | None = None, objective: str | None = None):
        self.label = label
        self.epochs = epochs
        self.objective = objective
        self.mode = _mode()
        self._bar = None
        self._started = time.monotonic()
        self._first_epoch = None

    def update(self, epoch, metrics: dict | None) -> None:
        if self.mode is None or not isinstance(epoch, int):
            return
        metrics = metrics or {}
        if self._first_epoch is None:
            self._first_epoch = epoch - 1  # a resumed training starts after its checkpoint's epoch
        name = objective_of(metrics, self.objective)
        shown = f"{name} {metrics[name]:.4g}" if name else ""
        if self.mode == "log":
            total = f"/{self.epochs}" if self.epochs else ""
            parts = [f"epoch {epoch}{total}", shown, self._eta_text(epoch)]
            log.info("%s: %s", self.label, ", ".join(part for part in parts if part))
            return
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.epochs, initial=self._first_epoch, desc=self.label, unit="epoch",
                             file=sys.stderr, leave=False, dynamic_ncols=True)
        self._bar.update(epoch - self._bar.n)
        if shown:
            self._bar.set_postfix_str(shown, refresh=True)

    def _eta_text(self, epoch: int) -> str:
        done = epoch - self._first_epoch
        if not self.epochs or done <= 0 or epoch >= self.epochs:
            return ""
        return f"ETA {_eta((time.monotonic() - self._started) / done * (self.epochs - epoch))}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
