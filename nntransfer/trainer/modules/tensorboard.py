"""TensorBoard event files: every epoch's metrics, for users who watch runs in TensorBoard.

Switched on in the trainer config, ``modules={"tensorboard": {"log_dir":
"runs"}}``; ``tensorboard --logdir runs`` then shows every run while it
trains.  Each run writes to its own folder ``log_dir/run_name`` (default: the
start time, seed and process id); a metric ``validation.accuracy`` becomes
the scalar ``validation/accuracy`` at step = epoch, so TensorBoard groups
them by phase.  The run's folder is part of the module's checkpointed state,
so a resumed run continues its own curves, and events after the resumed
epoch that the interrupted run had written are purged.

Needs the ``tensorboard`` package (``pip install "nntransfer[tensorboard]"``);
the writer is torch's own ``torch.utils.tensorboard.SummaryWriter``.
"""

import datetime
import os

from nntransfer.errors import ConfigError, ModuleRequirementError
from nntransfer.trainer.module import MainLoopModule


class TensorBoard(MainLoopModule):
    name = "tensorboard"
    order = 850  # after the modules that record metrics, before progress logs them

    def __init__(self, log_dir: str = "runs", run_name: str | None = None, flush_secs: float = 10.0):
        self.check_options({"log_dir": log_dir, "run_name": run_name, "flush_secs": flush_secs})
        self.log_dir = log_dir
        self.run_name = run_name
        self.flush_secs = flush_secs
        self._writer = None

    @classmethod
    def check_options(cls, options: dict) -> None:
        if not isinstance(options["log_dir"], str) or not options["log_dir"]:
            raise ConfigError(f"tensorboard: log_dir must be a folder name, got {options['log_dir']!r}.")
        if options["run_name"] is not None and (not isinstance(options["run_name"], str) or not options["run_name"]):
            raise ConfigError(f"tensorboard: run_name must be a non-empty str or None, got {options['run_name']!r}.")
        if not isinstance(options["flush_secs"], (int, float)) or options["flush_secs"] <= 0:
            raise ConfigError(f"tensorboard: flush_secs must be a number > 0, got {options['flush_secs']!r}.")

    def setup(self, state):
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError as error:
            raise ModuleRequirementError(
                f"the tensorboard module needs the tensorboard package ({error}); "
                'install it with pip install "nntransfer[tensorboard]".'
            ) from None
        if self.run_name is None:
            started = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            self.run_name = f"{started}-seed{state.seed}-pid{os.getpid()}"

    def post_epoch(self, state):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            # a resumed run starts after its checkpointed epoch: events written after it are dropped
            self._writer = SummaryWriter(os.path.join(self.log_dir, self.run_name), purge_step=state.epoch,
                                         flush_secs=self.flush_secs)
        for name, value in state.metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._writer.add_scalar(name.replace(".", "/", 1), value, state.epoch)

    def teardown(self, state):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def state_dict(self) -> dict:
        return {"run_name": self.run_name}

    def load_state_dict(self, state: dict) -> None:
        self.run_name = state["run_name"]
