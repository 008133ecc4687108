"""Linear learning-rate warmup over the first optimizer steps.

Large learning rates on fresh (or freshly replaced) layers can wreck a
pretrained model in the first steps; warming up scales every param group's
rate from ``start_factor`` times its value up to the full value over
``steps`` optimizer steps (or ``epochs`` epochs' worth of steps).  The rate is
written before the first step and after each step; past the warmup the module
no longer touches it, so an epoch-wise schedule takes over.
"""

from nntransfer.errors import ConfigError
from nntransfer.trainer.batches import count_batches
from nntransfer.trainer.module import MainLoopModule


class Warmup(MainLoopModule):
    name = "warmup"
    order = 450

    def __init__(self, steps: int | None = None, epochs: int | None = None, start_factor: float = 0.0):
        if (steps is None) == (epochs is None):
            raise ConfigError("warmup: give exactly one of steps or epochs.")
        length = steps if steps is not None else epochs
        if not isinstance(length, int) or length < 1:
            raise ConfigError(f"warmup: steps/epochs must be an integer >= 1, got {length!r}.")
        if not 0 <= start_factor < 1:
            raise ConfigError(f"warmup: start_factor must be in [0, 1), got {start_factor!r}.")
        self.steps = steps
        self.epochs = epochs
        self.start_factor = start_factor
        self.total = steps
        self.base_lrs = None

    def setup(self, state):
        if self.epochs is not None:
            batches = count_batches(state.loaders["train"])
            self.require(batches is not None, "warmup by epochs needs train loaders with a length; give steps.")
            per_epoch = -(-batches // state.accumulation_steps)
            self.total = max(1, self.epochs * per_epoch)

    def start(self, state):
        if state.optimizer is None:  # epochs=0: nothing trains, so there is no rate to warm up
            return
        self.base_lrs = [group["lr"] for group in state.optimizer.param_groups]
        self._apply(state, 0)

    def post_optimizer(self, state):
        if state.optimizer_steps <= self.total:
            self._apply(state, state.optimizer_steps)

    def _apply(self, state, step):
        factor = self.start_factor + (1.0 - self.start_factor) * min(step, self.total) / self.total
        for group, base in zip(state.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor

    def state_dict(self) -> dict:
        return {"base_lrs": self.base_lrs, "total": self.total}

    def load_state_dict(self, state_dict: dict) -> None:
        self.base_lrs = state_dict["base_lrs"]
        self.total = state_dict["total"]
