"""Progress bar per epoch and one log line per epoch.

The bar (tqdm) appears only when stdout is a terminal and ``bar`` is not
False, so batch jobs and workers write no bar noise; the log line (loss,
metrics, learning rate) goes through ``logging`` at INFO level, where a
worker's log handler picks it up.
"""

import logging
import sys

from nntransfer.trainer.batches import count_batches
from nntransfer.trainer.module import MainLoopModule

log = logging.getLogger("nntransfer.trainer")


class Progress(MainLoopModule):
    name = "progress"
    order = 900

    def __init__(self, bar: bool | None = None, log_epochs: bool = True):
        self.bar = bar
        self.log_epochs = log_epochs
        self._bar = None

    def setup(self, state):
        if self.bar is None:
            self.bar = sys.stdout.isatty()

    def pre_epoch(self, state):
        if self.bar:
            from tqdm import tqdm

            self._bar = tqdm(
                total=count_batches(state.loaders["train"]),
                desc=f"epoch {state.epoch}/{state.max_epochs}",
                leave=False,
                file=sys.stdout,
            )

    def post_optimizer(self, state):
        if self._bar is not None:
            self._bar.update(state.batch_index + 1 - self._bar.n)

    def post_epoch(self, state):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.log_epochs:
            log.info("epoch %d/%d  %s", state.epoch, state.max_epochs, format_metrics(state.metrics))

    def finish(self, state):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def format_metrics(metrics: dict) -> str:
    """``name value`` pairs, numbers in 4 significant digits, for one log line."""
    parts = []
    for name, value in sorted(metrics.items()):
        if isinstance(value, float):
            parts.append(f"{name} {value:.4g}")
        elif value is not None:
            parts.append(f"{name} {value}")
    return "  ".join(parts)
