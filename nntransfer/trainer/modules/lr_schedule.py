"""Epoch-wise learning-rate schedules: step, multistep, plateau, cosine.

Configured as ``{"lr_schedule": {"kind": "step", "step_size": 10, "gamma": 0.5}}``;
the options after ``kind`` go to the matching torch scheduler.  The scheduler
is built in ``start`` (once the optimizer exists), kept in
``state.scheduler`` so that checkpoints carry it, and stepped after every
epoch; ``plateau`` steps on ``monitor`` and only in epochs that measured it.
"""

from torch.optim import lr_scheduler

from nntransfer.errors import ConfigError
from nntransfer.resolve import did_you_mean
from nntransfer.trainer.keywords import check_keywords
from nntransfer.trainer.module import MainLoopModule

KINDS = {
    "step": lr_scheduler.StepLR,
    "multistep": lr_scheduler.MultiStepLR,
    "plateau": lr_scheduler.ReduceLROnPlateau,
    "cosine": lr_scheduler.CosineAnnealingLR,
}


class LRSchedule(MainLoopModule):
    name = "lr_schedule"
    order = 400
    metric_options = ("monitor",)

    @classmethod
    def check_options(cls, options):
        """``kind`` must name a schedule, and the options after ``kind`` and ``monitor`` must be its scheduler's."""
        kind = options["kind"]
        if kind not in KINDS:
            raise ConfigError(f"lr_schedule: unknown kind {kind!r};{did_you_mean(kind, KINDS)} known: {', '.join(KINDS)}.")
        if kind == "step" and "step_size" not in options:
            raise ConfigError("lr_schedule: kind 'step' needs step_size (epochs between decays).")
        if kind == "multistep" and "milestones" not in options:
            raise ConfigError("lr_schedule: kind 'multistep' needs milestones (a list of epochs).")
        scheduler_options = {name: value for name, value in options.items() if name not in ("kind", "monitor")}
        # not required=True: the cosine kind's T_max has no default in torch, start() fills it in
        check_keywords(f"lr_schedule kind {kind!r}", KINDS[kind], scheduler_options, positional=1, required=False)

    def __init__(self, kind: str = "step", monitor: str = "validation.loss", **options):
        self.check_options({"kind": kind, "monitor": monitor, **options})
        self.kind = kind
        self.monitor = monitor
        self.options = options

    def setup(self, state):
        if self.kind == "plateau":
            split = self.monitor.split(".", 1)[0]
            self.require(
                split == "train" or split in state.loaders,
                f"kind 'plateau' monitors {self.monitor!r}, but there is no {split!r} loader.",
            )

    def start(self, state):
        if state.optimizer is None:  # epochs=0: nothing trains, so there is nothing to schedule
            return
        self.require(state.scheduler is None, "another module already set state.scheduler; use one schedule.")
        options = dict(self.options)
        if self.kind == "cosine":
            options.setdefault("T_max", max(state.max_epochs, 1))
        try:
            state.scheduler = KINDS[self.kind](state.optimizer, **options)
        except TypeError as error:
            raise ConfigError(f"lr_schedule {self.kind!r} rejects options {self.options}: {error}") from error

    def post_epoch(self, state):
        if self.kind == "plateau":
            value = state.metrics.get(self.monitor)
            if value is not None:
                state.scheduler.step(value)
        else:
            state.scheduler.step()
