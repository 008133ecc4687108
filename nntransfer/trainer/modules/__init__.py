"""Registry of main-loop modules: short name -> dotted path, imported on first use.

A trainer config selects modules as a mapping ``name -> options``::

    modules={"early_stopping": {"patience": 5}, "distillation": {"temperature": 4}}

A name is either one of :data:`REGISTRY` or a user's dotted path to a
:class:`~nntransfer.trainer.module.MainLoopModule` subclass; the options are
passed to its constructor as keyword arguments.

Besides the modules a config names, a run gets the :func:`default_modules`
that registered modules offer for it (``checkpointing`` when the run's ``cb``
brought a checkpoint store), so the loop never has to know which modules
those are.
"""

from nntransfer.errors import ConfigError
from nntransfer.resolve import did_you_mean, import_dotted
from nntransfer.trainer.keywords import check_module_options
from nntransfer.trainer.module import MainLoopModule

REGISTRY = {
    "early_stopping": "nntransfer.trainer.modules.early_stopping.EarlyStopping",
    "lr_schedule": "nntransfer.trainer.modules.lr_schedule.LRSchedule",
    "warmup": "nntransfer.trainer.modules.warmup.Warmup",
    "checkpointing": "nntransfer.trainer.modules.checkpointing.Checkpointing",
    "grad_clip": "nntransfer.trainer.modules.grad_clip.GradClip",
    "progress": "nntransfer.trainer.modules.progress.Progress",
    "performance": "nntransfer.trainer.modules.performance.Performance",
    "tensorboard": "nntransfer.trainer.modules.tensorboard.TensorBoard",
    "distillation": "nntransfer.trainer.modules.distillation.KnowledgeDistillation",
    "finetuning": "nntransfer.trainer.modules.finetuning.FineTuning",
    "noise_augmentation": "nntransfer.trainer.modules.noise_augmentation.NoiseAugmentation",
    "representation_matching": "nntransfer.trainer.modules.representation_matching.RepresentationMatching",
    "representation_monitor": "nntransfer.trainer.modules.representation_monitor.RepresentationMonitor",
}


def resolve_module(name: str) -> type:
    """The module class registered as ``name``, or the class at dotted path ``name``."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a main-loop module must be named by a string, got {name!r}.")
    if name in REGISTRY:
        cls = import_dotted(REGISTRY[name], "main-loop module")
    elif "." in name:
        cls = import_dotted(name, "main-loop module")
    else:
        raise ConfigError(
            f"unknown main-loop module {name!r};{did_you_mean(name, REGISTRY)} known: {', '.join(sorted(REGISTRY))}, "
            "or give a dotted path to a MainLoopModule subclass."
        )
    if not (isinstance(cls, type) and issubclass(cls, MainLoopModule)):
        raise ConfigError(f"{name!r} resolves to {cls!r}, which is not a MainLoopModule subclass.")
    return cls


def default_modules(configured, state) -> list:
    """The instances that registered modules not among ``configured`` offer for this run.

    Each registered class whose ``name`` no module in ``configured`` has is
    asked for :meth:`~nntransfer.trainer.module.MainLoopModule.default_instance`;
    a module the config names (with its own options) always wins over its
    default.
    """
    taken = {module.name for module in configured}
    defaults = []
    for name in REGISTRY:
        cls = resolve_module(name)
        if cls.name in taken:
            continue
        instance = cls.default_instance(state)
        if instance is not None:
            defaults.append(instance)
    return defaults


def build_modules(spec) -> list:
    """Instances from a mapping ``name -> options`` (options may be None) or a list.

    A list may hold ready ``MainLoopModule`` instances, names, or
    ``(name, options)`` pairs, so code that builds modules itself can pass them in.
    """
    if spec is None:
        return []
    items = spec.items() if isinstance(spec, dict) else spec
    modules = []
    for item in items:
        if isinstance(item, MainLoopModule):
            modules.append(item)
            continue
        name, options = (item, None) if isinstance(item, str) else item
        cls = resolve_module(name)
        check_module_options(name, cls, options)
        try:
            modules.append(cls(**(options or {})))
        except TypeError as error:
            raise ConfigError(f"main-loop module {name!r} rejects options {options}: {error}") from error
    return modules
