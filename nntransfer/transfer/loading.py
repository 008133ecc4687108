"""Load a previous model state into a (possibly different) new model.

A transfer step rarely finds a state_dict that fits the new model exactly: the
head has a new number of classes, a backbone was renamed, a layer was added.
Instead of ``load_state_dict(strict=False)``, which silently drops whatever
does not fit and fails on shape mismatches, :func:`load_partial` loads every
parameter whose name *and* shape match and returns a :class:`LoadReport` that
says what happened to every other one.  The report is JSON-able so it can be
stored with the result row and looked at later.
"""

import logging
import re
from typing import Mapping, Optional

import torch
from torch import nn

from nntransfer.errors import ConfigError, TransferError
from nntransfer.load_report import LoadReport
from nntransfer.transfer.patterns import REGEX_PREFIX, Patterns, as_pattern_list, matches_any

logger = logging.getLogger(__name__)


def _compile_rename(rename: Optional[Mapping]) -> list:
    if rename is None:
        return []
    if not isinstance(rename, Mapping):
        raise ConfigError(
            f"rename must be a mapping {{old_prefix_or_'re:regex': new}}, got {type(rename).__name__}"
        )
    rules = []
    for old, new in rename.items():
        if not isinstance(old, str) or not isinstance(new, str):
            raise ConfigError(f"rename entries must map strings to strings, got {old!r}: {new!r}")
        if old.startswith(REGEX_PREFIX):
            try:
                rules.append((re.compile(old[len(REGEX_PREFIX):]), new))
            except re.error as exc:
                raise ConfigError(f"rename: {old!r} is not a valid regular expression ({exc})") from exc
        else:
            rules.append((old.rstrip("."), new.rstrip(".")))
    return rules


def rename_key(name: str, rules: list) -> str:
    """Apply the first matching rename rule to ``name``.

    A string rule is a module prefix and matches only at a ``.`` boundary
    (``layer1`` renames ``layer1.weight`` but not ``layer10.weight``); an
    empty replacement strips the prefix (``{"module": ""}`` undoes
    ``DataParallel``).  A regex rule must match the whole name and its
    replacement may use groups (``\\1``).
    """
    for old, new in rules:
        if isinstance(old, re.Pattern):
            match = old.fullmatch(name)
            if match:
                return match.expand(new)
        elif name == old:
            return new
        elif name.startswith(old + "."):
            rest = name[len(old) + 1:]
            return f"{new}.{rest}" if new else rest
    return name


def _shape(value) -> Optional[tuple]:
    shape = getattr(value, "shape", None)
    return tuple(shape) if shape is not None else None


def load_partial(
    model: nn.Module,
    state_dict: Mapping,
    *,
    rename: Optional[Mapping] = None,
    include: Patterns = None,
    exclude: Patterns = None,
    strict_nothing_matched: bool = True,
    warn: bool = True,
) -> LoadReport:
    """Copy every entry of ``state_dict`` whose name and shape fit into ``model``.

    ``rename`` is applied first; ``include``/``exclude`` (see
    :mod:`nntransfer.transfer.patterns`) then act on the renamed names, e.g.
    ``exclude="classifier"`` resets the head, ``include="features"`` loads only
    the backbone.  Every entry that is not loaded is logged as a warning
    (``warn=False`` turns that off; excluded entries are logged at INFO since
    leaving them out was asked for).  Raises :class:`TransferError` when
    nothing was loaded and ``strict_nothing_matched`` is true, since that
    almost always means the names need a ``rename``.
    """
    if not isinstance(model, nn.Module):
        raise TransferError(f"load_partial needs a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(state_dict, Mapping):
        raise TransferError(
            f"load_partial needs a state_dict (a mapping of names to tensors), got "
            f"{type(state_dict).__name__}"
        )
    rules = _compile_rename(rename)
    include_list = as_pattern_list(include, "include")
    exclude_list = as_pattern_list(exclude, "exclude")

    report = LoadReport()
    renamed_state = {}
    for old_name, value in state_dict.items():
        new_name = rename_key(old_name, rules)
        if new_name in renamed_state:
            raise TransferError(
                f"rename maps two state entries onto {new_name!r}; make the rename rules specific "
                "enough that every new name is used once"
            )
        if new_name != old_name:
            report.renamed[old_name] = new_name
        renamed_state[new_name] = value

    model_state = model.state_dict()
    to_load = {}
    for name, value in renamed_state.items():
        if (include_list and not matches_any(name, include_list)) or matches_any(name, exclude_list):
            report.excluded.append(name)
        elif name not in model_state:
            report.unexpected.append(name)
        elif _shape(value) != _shape(model_state[name]):
            report.shape_mismatched[name] = (_shape(value), _shape(model_state[name]))
        else:
            report.loaded.append(name)
            to_load[name] = value
    report.missing = [name for name in model_state if name not in renamed_state]

    if not to_load and strict_nothing_matched:
        raise TransferError(
            "load_partial: no entry of the state_dict fits the model. "
            f"State names start with {list(renamed_state)[:5]}, model names with "
            f"{list(model_state)[:5]}; map the names with rename={{old_prefix: new_prefix}}, "
            "check include/exclude, or pass strict_nothing_matched=False to allow this"
        )

    if warn:
        _log_report(report)
    with torch.no_grad():
        for name, value in to_load.items():
            model_state[name].copy_(torch.as_tensor(value))
    return report


def _log_report(report: LoadReport) -> None:
    for name in report.unexpected:
        logger.warning("Skipping parameter %s: not found in model", name)
    for name, (old, new) in report.shape_mismatched.items():
        logger.warning(
            "Skipping parameter %s: shape %s in state does not match %s in model", name, old, new
        )
    for name in report.missing:
        logger.warning("Parameter %s: not in state, keeps its initial value", name)
    for name in report.excluded:
        logger.info("Skipping parameter %s: excluded", name)
