"""Epoch-wise learning-rate schedules: step, multistep, plateau, cosine.

Configured as ``{"lr_schedule": {"kind": "step", "step_size": 10, "gamma": 0.5}}``;
the options after ``kind`` go to the matching torch scheduler.  The scheduler
is built in ``start`` (once the optimizer exists), kept in
``state.scheduler`` so that checkpoints carry it, and stepped after every
epoch; ``plateau`` steps on ``monitor`` and only in epochs that measured it.

``cosine`` without ``T_max`` spans the run's epochs.  Its checkpoints are then
tied to that epoch count: a finished run called again with more epochs on the
same checkpoint store (extending it) would go on with the old, spent schedule,
whose rate has reached its minimum and climbs again, and no run of the new
length has the first epochs' rates.  So such an extension is refused; a run
resumed with its own epoch count, and any schedule whose length is given,
continue exactly.
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
        self.length_from_epochs = None
        self.epochs = None

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
        self.epochs = state.max_epochs
        if self.kind == "cosine" and "T_max" not in options:
            self.length_from_epochs = options["T_max"] = max(state.max_epochs, 1)
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

    def state_dict(self) -> dict:
        return {"length_from_epochs": self.length_from_epochs}

    def load_state_dict(self, state_dict: dict) -> None:
        """Refuse a checkpoint whose schedule spans another epoch count than this run's (see the module doc)."""
        saved = state_dict.get("length_from_epochs")
        self.require(
            saved is None or saved == self.length_from_epochs,
            f"the checkpoint was written by a run of {saved} epochs whose cosine schedule spans those "
            f"{saved} epochs; this run has epochs={self.epochs}, and extending it would go on with "
            "the spent schedule (its rate climbs again from the minimum). Give the schedule an explicit "
            "T_max (its length then does not depend on epochs, and extending continues it), or train "
            "this epoch count as a new run (another checkpoint store or folder).",
        )
