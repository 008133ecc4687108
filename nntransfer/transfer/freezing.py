"""Freeze and unfreeze parts of a model for fine-tuning and feature extraction.

Freezing sets ``requires_grad = False``, so a frozen parameter gets no
gradient (its ``.grad`` stays ``None``) and every torch optimizer leaves it
untouched, even with weight decay or momentum.

BatchNorm needs extra care: a frozen BatchNorm layer in train mode still
normalises with batch statistics and still updates its running statistics, so
the "frozen" backbone drifts.  By default frozen BatchNorm layers are
therefore kept in eval mode (a forward pre-hook puts them back into eval mode
even after ``model.train()``).  ``train_batchnorm=True`` leaves BatchNorm
layers trainable instead (parameters and statistics), a common choice when
the new data differ a lot from the old.

Modules and parameters are selected with the patterns of
:mod:`nntransfer.transfer.patterns`.
"""

from typing import Optional

from torch import nn

from nntransfer.errors import ConfigError
from nntransfer.transfer.patterns import Patterns, as_pattern_list, matches_any

_BATCHNORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.SyncBatchNorm)
_EVAL_HOOK_ATTR = "_nntransfer_frozen_eval_hook"


def _selected(name: str, include: list, exclude: list) -> bool:
    return (not include or matches_any(name, include)) and not matches_any(name, exclude)


def _check_selection(model: nn.Module, include: list, what: str) -> None:
    """Fail on an include pattern that selects nothing: it is almost always a typo."""
    names = [name for name, _ in model.named_parameters()] + [name for name, _ in model.named_buffers()]
    for pattern in include:
        if not any(matches_any(name, [pattern]) for name in names):
            modules = [name for name, _ in model.named_children()]
            raise ConfigError(
                f"{what}: pattern {pattern!r} matches no parameter or buffer of the model; "
                f"top-level modules are {modules}"
            )


def _batchnorm_selected(module_name: str, module: nn.Module, include: list, exclude: list) -> bool:
    """Whether a BatchNorm layer lies wholly in the selection (by its parameters, else buffers)."""
    names = [name for name, _ in module.named_parameters(recurse=False)]
    names = names or [name for name, _ in module.named_buffers(recurse=False)]
    prefix = f"{module_name}." if module_name else ""
    return bool(names) and all(_selected(prefix + name, include, exclude) for name in names)


def _keep_in_eval(module: nn.Module, inputs) -> None:
    module.eval()


def _set_batchnorm_eval_hook(module: nn.Module, on: bool) -> None:
    handle = getattr(module, _EVAL_HOOK_ATTR, None)
    if on and handle is None:
        setattr(module, _EVAL_HOOK_ATTR, module.register_forward_pre_hook(_keep_in_eval))
        module.eval()
    elif not on and handle is not None:
        handle.remove()
        delattr(module, _EVAL_HOOK_ATTR)


def freeze(
    model: nn.Module,
    include: Patterns = None,
    exclude: Patterns = None,
    *,
    train_batchnorm: bool = False,
) -> list:
    """Freeze the parameters selected by ``include`` (all when ``None``) minus ``exclude``.

    Returns the names of the parameters frozen by this call.  A BatchNorm
    layer whose parameters (or, without affine parameters, buffers) are all
    selected is kept in eval mode, unless ``train_batchnorm`` is true, in
    which case it stays trainable and follows the model's mode.
    """
    include_list = as_pattern_list(include, "freeze include")
    exclude_list = as_pattern_list(exclude, "freeze exclude")
    _check_selection(model, include_list, "freeze")
    frozen = []
    for module_name, module in model.named_modules():
        is_bn = isinstance(module, _BATCHNORM_TYPES)
        own = list(module.named_parameters(recurse=False))
        selected = [
            (name, param)
            for name, param in own
            if _selected(f"{module_name}.{name}" if module_name else name, include_list, exclude_list)
        ]
        if is_bn and train_batchnorm:
            continue
        for name, param in selected:
            if param.requires_grad:
                param.requires_grad_(False)
                frozen.append(f"{module_name}.{name}" if module_name else name)
        if is_bn and _batchnorm_selected(module_name, module, include_list, exclude_list):
            _set_batchnorm_eval_hook(module, True)
    return frozen


def unfreeze(model: nn.Module, include: Patterns = None, exclude: Patterns = None) -> list:
    """Make the selected parameters trainable again; returns the names changed.

    BatchNorm layers that become fully trainable leave the forced eval mode and
    follow ``model.train()``/``model.eval()`` again.
    """
    include_list = as_pattern_list(include, "unfreeze include")
    exclude_list = as_pattern_list(exclude, "unfreeze exclude")
    _check_selection(model, include_list, "unfreeze")
    unfrozen = []
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{name}" if module_name else name
            if _selected(full, include_list, exclude_list) and not param.requires_grad:
                param.requires_grad_(True)
                unfrozen.append(full)
        if (
            is_kept_in_eval(module)
            and _batchnorm_selected(module_name, module, include_list, exclude_list)
            and all(p.requires_grad for p in module.parameters(recurse=False))
        ):
            _set_batchnorm_eval_hook(module, False)
            module.train(model.training)
    return unfrozen


def freeze_all_but(model: nn.Module, head: Patterns, *, train_batchnorm: bool = False) -> list:
    """Freeze everything except ``head`` (e.g. ``"classifier"`` or ``["fc", "layer4"]``).

    This is the "fixed feature extractor" setting: only the new head trains.
    """
    head_list = as_pattern_list(head, "head")
    if not head_list:
        raise ConfigError("freeze_all_but needs the name or pattern of the head to keep trainable")
    _check_selection(model, head_list, "freeze_all_but")
    return freeze(model, exclude=head_list, train_batchnorm=train_batchnorm)


def trainable_parameter_names(model: nn.Module) -> list:
    return [name for name, param in model.named_parameters() if param.requires_grad]


def frozen_parameter_names(model: nn.Module) -> list:
    return [name for name, param in model.named_parameters() if not param.requires_grad]


def is_kept_in_eval(module: nn.Module) -> Optional[bool]:
    """Whether a BatchNorm layer is held in eval mode by :func:`freeze` (None if not BatchNorm)."""
    if not isinstance(module, _BATCHNORM_TYPES):
        return None
    return getattr(module, _EVAL_HOOK_ATTR, None) is not None
