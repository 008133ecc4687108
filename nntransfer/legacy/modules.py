"""Main-loop modules written for sinzlab nntransfer's trainer, run in this loop.

Such a module is built as ``Module(trainer)`` and reads ``trainer.config``,
``trainer.data_loaders``, ``trainer.device``, ``trainer.seed`` and
``trainer.tracker``; its events take and return values::

    pre_epoch(model, mode, **options)
    pre_forward(model, inputs, task_key, shared_memory) -> (model, inputs)
    post_forward(outputs, loss, targets, **shared_memory) -> (outputs, loss, targets)
    post_backward(model); post_optimizer(model); post_epoch(model)

:class:`LegacyModules` is one new-style module that builds them and calls
them at the matching events, in the order given::

    modules={"nntransfer.legacy.modules.LegacyModules": {
        "modules": ["mylab.modules.NoiseAugmentation"], "config": trainer_config.to_dict()}}

``config`` is what the old modules read as ``trainer.config`` (attributes,
None when unset).  Translations: ``mode`` is ``"Training"``,
``"Validation"`` or ``"Test"``, with ``pre_epoch``/``post_epoch`` around
each phase; ``outputs`` is ``(model_extras, outputs)`` for models that return
extras; the ``loss`` a module receives starts at zero and what it adds joins
the loop's loss (which is computed again when a module replaced outputs or
targets); ``shared_memory["break_epoch"]`` ends the epoch.
``tracker.log_objective(value, (mode, name, key))`` sums per phase and
records ``<phase>.<name>.<key>``, divided by the group's ``normalization``
when one is logged: a training pass's values per epoch in the history; a
validation or test pass's with the loop's own metrics of that pass, so the
final evaluation's (sinzlab's ``test_final_model``) land in the output's
``final``, as sinzlab's trainer returned its tracker with the ``"Test"``
entries.  An evaluation pass ends (``post_epoch``, then its values are
handed over) at its last batch, which the loader's length tells; a pass over
a loader without length ends when the next phase starts, too late for the
final evaluation's values, so give such loaders a ``__len__``.  A
``pre_forward`` must hand back the model it was given: this loop calls the
model itself.
"""

from __future__ import annotations

import torch

from nntransfer.errors import ConfigError, ModuleRequirementError
from nntransfer.resolve import import_dotted
from nntransfer.trainer.batches import count_batches
from nntransfer.trainer.control import StopEpoch
from nntransfer.trainer.module import MainLoopModule

MODES = {"train": "Training", "validation": "Validation", "test": "Test"}
PHASES = {mode: phase for phase, mode in MODES.items()}


class _Config:
    """Attribute access to a config dict; what it does not hold reads as None (as sinzlab's configs did)."""

    def __init__(self, values: dict):
        self.__dict__.update(values)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return None


class _Tracker:
    """What the old modules call on ``trainer.tracker``: sums per phase, recorded per epoch."""

    def __init__(self):
        self.sums = {}
        self.state = None

    @property
    def epoch(self):
        return self.state.epoch if self.state is not None else 0

    def add_objectives(self, objectives, init_epoch=False):
        """Objectives are created when first logged here."""

    def log_objective(self, value, keys=()):
        keys = tuple(keys)
        value = value.item() if hasattr(value, "item") else value
        self.sums[keys] = self.sums.get(keys, 0.0) + float(value)

    def flush(self, state, in_pass: bool = False) -> None:
        """Hand the sums to ``state``; ``in_pass``: at the end of the evaluation pass of ``state.phase``.

        There the values of that phase join the pass's metrics (the loop
        reads them when the pass ends); all others are logged for the epoch.
        """
        groups = {}
        for keys, total in self.sums.items():
            groups.setdefault(keys[:-1], {})[keys[-1]] = total
        for group, values in groups.items():
            norm = values.pop("normalization", None)
            for name, total in values.items():
                mode, *rest = group + (name,)
                phase = PHASES.get(mode, str(mode).lower())
                value = total / norm if norm else total
                if in_pass and phase == state.phase:  # [total, normalization]: exact over the ranks of a DDP run
                    state.accumulate(".".join(map(str, rest)), value, norm or 1.0)
                else:
                    state.log(".".join([phase, *map(str, rest)]), value)
        self.sums.clear()


class _Trainer:
    """The ``trainer`` an old module is built with."""

    def __init__(self, state, config, tracker):
        self.config = config
        self.data_loaders = state.loaders
        self.device = state.device
        self.seed = state.seed
        self.tracker = tracker
        self.model = state.model


class LegacyModules(MainLoopModule):
    """Runs sinzlab-style main-loop modules (see the module docstring)."""

    name = "legacy_modules"
    order = 500

    def __init__(self, modules: list, config: dict | None = None, task_key: str = "img_classification"):
        self.check_options({"modules": modules, "config": config})
        self.paths = list(modules)
        self.config = dict(config or {})
        self.task_key = task_key
        self.classes = [import_dotted(path, "main-loop module") for path in self.paths]
        self.tracker = _Tracker()
        self.instances = []
        self.mode = None
        self.left = None  # batches left in the evaluation pass in progress (None: training, or not known)
        self.shared = {}

    @classmethod
    def check_options(cls, options: dict) -> None:
        modules = options.get("modules")
        if not isinstance(modules, (list, tuple)) or not all(isinstance(m, str) and "." in m for m in modules):
            raise ConfigError(f"legacy_modules: modules must be a list of dotted class paths, got {modules!r}.")
        if options.get("config") is not None and not isinstance(options["config"], dict):
            raise ConfigError("legacy_modules: config must be a dict (what the modules read as trainer.config).")

    def setup(self, state):
        self.tracker.state = state
        trainer = _Trainer(state, _Config(self.config), self.tracker)
        self.instances = [cls(trainer=trainer) for cls in self.classes]

    def _enter(self, state, mode):
        if mode == self.mode:
            return
        self._leave(state)
        self.mode = mode
        evaluating = mode != MODES["train"] and state.phase in state.loaders
        self.left = count_batches(state.loaders[state.phase]) if evaluating else None
        for module in self.instances:
            module.pre_epoch(state.model, mode)

    def _leave(self, state, in_pass: bool = False):
        """End the old modules' pass: their ``post_epoch``, then the tracker's sums (see :meth:`_Tracker.flush`)."""
        if self.mode is None:
            return
        for module in self.instances:
            module.post_epoch(state.model)
        self.tracker.flush(state, in_pass)
        self.mode = None
        self.left = None

    def pre_epoch(self, state):
        self._enter(state, "Training")

    def pre_forward(self, state):
        self._enter(state, MODES.get(state.phase, state.phase))
        self.shared = {}
        task_key = state.data_key if state.data_key is not None else self.task_key
        for module in self.instances:
            model, state.inputs = module.pre_forward(state.model, state.inputs, task_key, self.shared)
            if model is not state.model:
                raise ModuleRequirementError(
                    f"{type(module).__name__}.pre_forward returned another model; this loop calls the model itself, "
                    "so a module may change the inputs but must hand back the model it was given."
                )
        if self.shared.get("break_epoch", False):
            if state.phase != "train":
                self._leave(state, in_pass=True)
            raise StopEpoch

    def post_forward(self, state):
        outputs = (state.model_extras, state.outputs) if state.model_extras is not None else state.outputs
        targets = state.targets
        added = torch.zeros(1, device=state.outputs.device)
        for module in self.instances:
            outputs, added, targets = module.post_forward(outputs, added, targets, **self.shared)
        if isinstance(outputs, tuple):
            state.model_extras, outputs = outputs
        if outputs is not state.outputs or targets is not state.targets:
            state.outputs, state.targets = outputs, targets
            state.loss = state.loss_fn(outputs, targets)
        state.loss = state.loss + added.sum()
        if self.left is not None:
            self.left -= 1
            if self.left == 0:  # the evaluation pass's last batch: end it before the loop reads its metrics
                self._leave(state, in_pass=True)

    def post_backward(self, state):
        for module in self.instances:
            module.post_backward(state.model)

    def post_optimizer(self, state):
        for module in self.instances:
            module.post_optimizer(state.model)

    def post_epoch(self, state):
        self._leave(state)

    def finish(self, state):
        self._leave(state)
