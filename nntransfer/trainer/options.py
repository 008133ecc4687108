"""The checks of the trainer's options: when a config is made, and when the loop is built.

A trainer config names things inside its options: main-loop modules and
their options, an optimizer, a loss, metrics (``score_metric``, early
stopping's ``objective``).  Left unchecked, a typo there is hashed and
stored with the config and fails only when a worker trains it.
:func:`check_trainer_config` is ``standard_trainer.check_config`` (see
``CHECK_HOOK`` in :mod:`nntransfer.configs.functions`), so it runs whenever
such a config is made or inserted, before anything is hashed.  It trains and
constructs nothing: names are resolved (imported) and must be of the right
kind, options are checked against the signature of what receives them
(:mod:`nntransfer.trainer.keywords`), modules run their own
:meth:`~nntransfer.trainer.module.MainLoopModule.check_options`, and metric
names are checked against the metrics the run can produce
(:mod:`nntransfer.trainer.metrics`).

The loop runs :func:`check_loop_options`, and the same module checks while
it builds its modules, so code that builds it directly gets the same checks
in the same words.
"""

from nntransfer.errors import ConfigError
from nntransfer.resolve import did_you_mean
from nntransfer.trainer.components import check_loss_options, check_optimizer_options
from nntransfer.trainer.devices import resolve_device
from nntransfer.trainer.keywords import check_module_options
from nntransfer.trainer.metrics import EPOCH_SPLITS, check_metric, known_metrics
from nntransfer.trainer.modules import resolve_module

NAN_POLICIES = ("raise", "skip", "off")
AMP_MODES = (False, True, "fp16", "bf16")

LOOP_OPTIONS = (
    "epochs", "accumulation_steps", "validate_every", "nan_policy", "amp",
    "optimizer", "optimizer_options", "loss", "loss_options",
)
"""The options :func:`check_loop_options` takes, by the loop's (and standard_trainer's) names."""


def check_choice(option, value, choices):
    """Refuse a ``value`` of ``option`` that is not one of ``choices``."""
    if value not in choices:
        names = [choice for choice in choices if isinstance(choice, str)]
        hint = did_you_mean(value, names) if isinstance(value, str) else ""
        raise ConfigError(f"{option} must be one of {choices}, got {value!r}.{hint}")


def check_loop_options(*, epochs, accumulation_steps, validate_every, nan_policy, amp,
                       optimizer, optimizer_options, loss, loss_options):
    """Check the loop's own options; the optimizer and loss are resolved and their options checked, nothing is built."""
    if not isinstance(epochs, int) or epochs < 0:
        raise ConfigError(f"epochs must be an integer >= 0, got {epochs!r}.")
    if not isinstance(accumulation_steps, int) or accumulation_steps < 1:
        raise ConfigError(f"accumulation_steps must be an integer >= 1, got {accumulation_steps!r}.")
    if not isinstance(validate_every, int) or validate_every < 0:
        raise ConfigError(f"validate_every must be an integer >= 0 (0: never), got {validate_every!r}.")
    check_choice("nan_policy", nan_policy, NAN_POLICIES)
    check_choice("amp", amp, AMP_MODES)
    check_optimizer_options(optimizer, optimizer_options)
    check_loss_options(loss, loss_options)


def check_trainer_config(config: dict) -> None:
    """``standard_trainer.check_config``: check a complete standard_trainer config (every option, as a config's ``to_dict`` gives it)."""
    check_loop_options(**{name: config[name] for name in LOOP_OPTIONS})
    resolve_device(config["device"])
    modules = config["modules"] or {}
    classes = {name: resolve_module(name) for name in modules}
    epoch_metrics = known_metrics(EPOCH_SPLITS, classes.values(), per_epoch=True)
    for name, cls in classes.items():
        check_module_options(name, cls, modules[name], epoch_metrics)
    splits = list(config["final_splits"])
    check_metric(
        "score_metric", config["score_metric"], known_metrics(splits, classes.values()),
        f" The score is read from the final evaluation of final_splits {splits}.",
    )
