"""Fine-tuning: train the head of a pretrained model first, the backbone later.

Before training, the selected part of the model (``freeze=...``, or everything
but ``head=...``) is frozen.  With ``unfreeze_at_epoch=N`` it trains again from
epoch N on (epochs count from 1), at ``unfreeze_lr_factor`` times the base
learning rate.  ``lr_factors`` gives discriminative learning rates: parameters
matching a pattern train at that multiple of the base rate.

The optimizer's parameter groups never change during a run, so a checkpoint
resumes without any group bookkeeping: all groups are built in ``setup``
(split by learning-rate factor and by frozen or not), and unfreezing only sets
``requires_grad``.  A frozen parameter gets no gradient, and torch optimizers
skip parameters whose ``.grad`` is None, so it does not move (no weight decay,
no momentum).  Frozen groups keep their *target* learning rate rather than 0:
LR schedules and warmup capture each group's initial rate, and a group that
starts at 0 would stay at 0 after unfreezing.

Patterns follow :mod:`nntransfer.transfer.patterns` (a module name such as
``"features"`` selects all of its parameters).
"""

from typing import Mapping, Optional

from nntransfer.errors import ConfigError
from nntransfer.trainer.learning_rates import GROUP_NAME
from nntransfer.trainer.module import MainLoopModule
from nntransfer.transfer.freezing import freeze, freeze_all_but, is_kept_in_eval, unfreeze
from nntransfer.transfer.patterns import Patterns, as_pattern_list, matches

GROUP_KEY = "finetuning_group"


class FineTuning(MainLoopModule):
    """Freeze before training, optionally unfreeze at an epoch, per-group learning rates.

    ``freeze``: patterns of what to freeze; ``head``: patterns of what stays
    trainable, everything else is frozen (give exactly one of the two).
    ``unfreeze_at_epoch``: first epoch in which the frozen part trains (None:
    never).  ``unfreeze_lr_factor``: learning rate of the unfrozen part as a
    multiple of the base rate (the head's).  ``lr_factors``: ``{pattern:
    factor}``, first matching pattern wins, also for frozen parameters.
    ``train_batchnorm``: keep BatchNorm layers in the frozen part trainable
    instead of frozen and in eval mode.
    """

    name = "finetuning"
    order = 50

    def __init__(
        self,
        freeze: Patterns = None,
        head: Patterns = None,
        unfreeze_at_epoch: Optional[int] = None,
        unfreeze_lr_factor: float = 0.1,
        lr_factors: Optional[Mapping] = None,
        train_batchnorm: bool = False,
    ):
        if (freeze is None) == (head is None):
            raise ConfigError(
                "finetuning: give either freeze=<patterns to freeze> or head=<patterns that stay "
                "trainable>, not both and not neither"
            )
        self.freeze_patterns = as_pattern_list(freeze, "finetuning freeze")
        self.head_patterns = as_pattern_list(head, "finetuning head")
        if unfreeze_at_epoch is not None and (
            not isinstance(unfreeze_at_epoch, int) or unfreeze_at_epoch < 1
        ):
            raise ConfigError(
                f"finetuning: unfreeze_at_epoch must be an epoch number >= 1 or None, got "
                f"{unfreeze_at_epoch!r}"
            )
        _check_factor("unfreeze_lr_factor", unfreeze_lr_factor)
        lr_factors = dict(lr_factors or {})
        for pattern, factor in lr_factors.items():
            _check_factor(f"lr_factors[{pattern!r}]", factor)
        self.unfreeze_at_epoch = unfreeze_at_epoch
        self.unfreeze_lr_factor = float(unfreeze_lr_factor)
        self.lr_factor_patterns = [
            (as_pattern_list(pattern, "finetuning lr_factors")[0], float(factor))
            for pattern, factor in lr_factors.items()
        ]
        self.train_batchnorm = bool(train_batchnorm)
        self.frozen_names = []
        self.held_batchnorm = []

    def setup(self, state):
        self.require(
            state.param_groups is None,
            "another module already set state.param_groups; finetuning builds the groups itself "
            "and must be the only module that does",
        )
        model = state.model
        held_before = {name for name, module in model.named_modules() if is_kept_in_eval(module)}
        if self.head_patterns:
            self.frozen_names = freeze_all_but(model, self.head_patterns, train_batchnorm=self.train_batchnorm)
        else:
            self.frozen_names = freeze(model, self.freeze_patterns, train_batchnorm=self.train_batchnorm)
        # A BatchNorm layer without affine parameters is held in eval mode by its buffers, which the
        # parameter names of frozen_names do not select; unfreezing must name the layer itself.
        self.held_batchnorm = [
            name
            for name, module in model.named_modules()
            if is_kept_in_eval(module) and name not in held_before and not list(module.parameters(recurse=False))
        ]
        frozen = set(self.frozen_names)
        groups = {}
        for name, param in model.named_parameters():
            if not param.requires_grad and name not in frozen:
                continue  # frozen before this run: not ours to train
            factor = self._factor(name, name in frozen)
            key = (factor, name in frozen)
            if key not in groups:
                groups[key] = {
                    "params": [],
                    GROUP_KEY: "frozen" if key[1] else "trainable",
                    "lr_factor": factor,
                    GROUP_NAME: self._group_name(*key),
                }
            groups[key]["params"].append(param)
        state.param_groups = list(groups.values())

    def _group_name(self, factor: float, frozen: bool) -> str:
        """``backbone`` (frozen at first) or ``head``, with ``@<factor>`` when ``lr_factors`` set another rate."""
        role = "backbone" if frozen else "head"
        return role if factor == self._factor_default(frozen) else f"{role}@{factor:g}"

    def _factor_default(self, frozen: bool) -> float:
        return self.unfreeze_lr_factor if frozen else 1.0

    def _factor(self, name: str, frozen: bool) -> float:
        for pattern, factor in self.lr_factor_patterns:
            if matches(name, pattern):
                return factor
        return self._factor_default(frozen)

    def start(self, state):
        """Give every group its rate, now that the optimizer's base rate is known."""
        if state.optimizer is None:  # zero epochs: nothing trains
            return
        base = state.optimizer.defaults["lr"]
        for group in state.optimizer.param_groups:
            if GROUP_KEY in group:
                group["lr"] = base * group["lr_factor"]

    def pre_epoch(self, state):
        """Unfreeze once ``state.epoch`` reaches the epoch; derived from the epoch, so a resumed run agrees."""
        if self.unfreeze_at_epoch is None or state.epoch < self.unfreeze_at_epoch:
            return
        params = dict(state.model.named_parameters())
        modules = dict(state.model.named_modules())
        if any(not params[name].requires_grad for name in self.frozen_names) or any(
            is_kept_in_eval(modules[name]) for name in self.held_batchnorm
        ):
            unfreeze(state.model, include=self.frozen_names + self.held_batchnorm)


def _check_factor(what: str, factor) -> None:
    if not isinstance(factor, (int, float)) or factor < 0:
        raise ConfigError(f"finetuning: {what} must be a number >= 0, got {factor!r}")
