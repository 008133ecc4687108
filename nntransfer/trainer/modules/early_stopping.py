"""Early stopping with rounds of learning-rate decay and restore-best.

When the objective has not improved by more than ``tolerance`` for
``patience`` validations, the module either starts a new round (restore the
best weights, multiply every learning rate by ``lr_decay_factor``) or, once
``lr_decay_steps`` rounds are used up, stops training.  At the end of training
the best weights are restored, so the returned model is the best one seen.
The old nntransfer's default patience crashed and its "decay" left the rate
unchanged; here both are plain numbers and the decay writes the optimizer's
param groups directly.
"""

import logging
import math

from nntransfer.errors import ConfigError
from nntransfer.trainer.control import StopTraining
from nntransfer.trainer.module import MainLoopModule
from nntransfer.trainer.objective import resolve_maximize

log = logging.getLogger(__name__)


class EarlyStopping(MainLoopModule):
    name = "early_stopping"
    order = 600
    metric_options = ("objective",)

    @classmethod
    def check_options(cls, options):
        """The objective's direction must be known: given as ``maximize``, or read from the metric's name."""
        resolve_maximize(cls.name, options["objective"], options["maximize"])

    def __init__(
        self,
        objective: str = "validation.loss",
        maximize: bool | None = None,
        patience: int = 5,
        tolerance: float = 0.0,
        max_epochs: int | None = None,
        lr_decay_steps: int = 0,
        lr_decay_factor: float = 0.1,
        restore_best: bool = True,
    ):
        if not isinstance(patience, int) or patience < 1:
            raise ConfigError(f"early_stopping: patience must be an integer >= 1, got {patience!r}.")
        if not isinstance(lr_decay_steps, int) or lr_decay_steps < 0:
            raise ConfigError(f"early_stopping: lr_decay_steps must be an integer >= 0, got {lr_decay_steps!r}.")
        if not 0 < lr_decay_factor < 1:
            raise ConfigError(f"early_stopping: lr_decay_factor must be in (0, 1), got {lr_decay_factor!r}.")
        if tolerance < 0:
            raise ConfigError(f"early_stopping: tolerance must be >= 0, got {tolerance!r}.")
        if max_epochs is not None and (not isinstance(max_epochs, int) or max_epochs < 1):
            raise ConfigError(f"early_stopping: max_epochs must be None or an integer >= 1, got {max_epochs!r}.")
        self.objective = objective
        self.maximize = resolve_maximize("early_stopping", objective, maximize)
        self.patience = patience
        self.tolerance = tolerance
        self.max_epochs = max_epochs
        self.lr_decay_steps = lr_decay_steps
        self.lr_decay_factor = lr_decay_factor
        self.restore_best = restore_best
        self.best = None
        self.best_epoch = None
        self.best_weights = None
        self.bad_epochs = 0
        self.rounds_done = 0

    def setup(self, state):
        split = self.objective.split(".", 1)[0]
        self.require(
            split == "train" or split in state.loaders,
            f"the objective {self.objective!r} needs a {split!r} loader, but the dataloaders have "
            f"{sorted(state.loaders)}; choose an objective such as 'train.loss'.",
        )

    def improved(self, value) -> bool:
        """Whether ``value`` beats the best so far; NaN never does (it would stay best forever)."""
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.maximize:
            return value > self.best + self.tolerance
        return value < self.best - self.tolerance

    def post_epoch(self, state):
        value = state.metrics.get(self.objective)
        if value is None:
            prefix = self.objective.split(".", 1)[0] + "."
            measured = any(name.startswith(prefix) for name in state.metrics)
            self.require(
                not measured,
                f"objective {self.objective!r} is not among this epoch's metrics "
                f"{sorted(state.metrics)}; choose one of them.",
            )
        elif self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, state.epoch, 0
            if self.restore_best:
                self.best_weights = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.patience:
                self.bad_epochs = 0
                if self.rounds_done >= self.lr_decay_steps:
                    log.info("early stopping at epoch %d; best %s %.6g at epoch %s",
                             state.epoch, self.objective, self.best, self.best_epoch)
                    raise StopTraining
                self.rounds_done += 1
                self._restore(state)
                for group in state.optimizer.param_groups:
                    group["lr"] *= self.lr_decay_factor
                log.info("epoch %d: no improvement for %d validations; learning rate decayed (round %d of %d)",
                         state.epoch, self.patience, self.rounds_done, self.lr_decay_steps)
        if self.max_epochs is not None and state.epoch >= self.max_epochs:
            raise StopTraining

    def finish(self, state):
        self._restore(state)

    def _restore(self, state):
        if self.restore_best and self.best_weights is not None:
            state.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "best_weights": self.best_weights,
            "bad_epochs": self.bad_epochs,
            "rounds_done": self.rounds_done,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict["best"]
        self.best_epoch = state_dict["best_epoch"]
        self.best_weights = state_dict["best_weights"]
        self.bad_epochs = state_dict["bad_epochs"]
        self.rounds_done = state_dict["rounds_done"]
