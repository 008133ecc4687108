"""Which learning rates the history records, one value per epoch each.

``lr`` is a single number, so it must be the rate of one param group.  It is
the rate of the part that trains from the start: the first group that had a
trainable parameter when the optimizer was built.  The first group alone
would not do: under fine-tuning the frozen backbone's group may come first,
and its lower rate would be reported as the run's.

With more than one group, each group's rate is recorded as well, under
``lr.<name>``: a group's ``"name"`` key (the ``finetuning`` module names its
groups ``head`` and ``backbone``), else its position.
"""

from torch.optim import Optimizer

GROUP_NAME = "name"
"""The param-group key whose value names the group in ``lr.<name>``."""


def reported_group(optimizer: Optimizer) -> int:
    """Position of the group whose rate is ``lr``; call it right after the optimizer is built."""
    for index, group in enumerate(optimizer.param_groups):
        if any(param.requires_grad for param in group["params"]):
            return index
    return 0


def learning_rates(optimizer: Optimizer, reported: int) -> dict:
    """``{"lr": ..., "lr.<group>": ...}`` for the current epoch."""
    groups = optimizer.param_groups
    rates = {"lr": groups[reported]["lr"]}
    if len(groups) > 1:
        for index, group in enumerate(groups):
            rates[f"lr.{group.get(GROUP_NAME, index)}"] = group["lr"]
    return rates
