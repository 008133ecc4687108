"""The one way a dotted path becomes a Python object: ``importlib``, never ``eval``.

Functions named in config rows, optimizers, losses, main-loop modules and
recipe modules are all resolved here, so every such name fails with the same
kind of message (which part of the path failed, and why) and there is one
place to audit what a stored name can reach.  This module sits on the ground
floor: it imports nothing of the package but :mod:`nntransfer.errors`.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from .errors import ConfigError, FunctionResolutionError


def import_dotted(path: str, kind: str = "name") -> Any:
    """Import ``"package.module.attribute"`` and return the attribute.

    ``kind`` names what the path is for (``"dataset_fn"``, ``"optimizer"``,
    ...) in the error message.
    """
    if not isinstance(path, str) or "." not in path.strip("."):
        raise FunctionResolutionError(
            f"{kind} {path!r} is not a dotted path; write it as 'package.module.name'."
        )
    module_name, _, attribute = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise FunctionResolutionError(
            f"{kind} {path!r}: module {module_name!r} cannot be imported ({error}). "
            "Check the spelling and that the package is installed in this environment."
        ) from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise FunctionResolutionError(
            f"{kind} {path!r}: module {module_name!r} has no attribute {attribute!r}."
        ) from None


def resolve_fn(path: str | Callable, kind: str = "function") -> Callable:
    """The callable at dotted ``path``; a callable passed in is returned as is."""
    if callable(path):
        return path
    fn = import_dotted(path, kind)
    if not callable(fn):
        raise FunctionResolutionError(f"{kind} {path!r} names a {type(fn).__name__}, not a function.")
    return fn


def resolve_name(kind: str, name: str, known: dict[str, str]) -> Any:
    """Look ``name`` up among ``known`` short names (name -> dotted path), else import it as a dotted path.

    A short name that is not known fails with the known names and the closest
    one, so ``optimizer="Adam"`` says ``did you mean 'adam'``.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"the {kind} must be a name or a dotted path, got {name!r}.")
    if name in known:
        return import_dotted(known[name], kind)
    if "." not in name:
        raise ConfigError(
            f"unknown {kind} {name!r};{did_you_mean(name, known)} known: {', '.join(sorted(known))}, "
            "or give a dotted path such as 'package.module.Name'."
        )
    return import_dotted(name, kind)


def import_module(name: str, kind: str = "module"):
    """Import the module ``name`` (a dotted module name, not an attribute)."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise FunctionResolutionError(
            f"{kind} {name!r} cannot be imported ({error}); check the spelling and that it is on the path."
        ) from None


def did_you_mean(name: str, known) -> str:
    """`` Did you mean 'x'?`` for the closest of ``known`` (case-insensitive), or ``""``."""
    import difflib

    candidates = {str(k).lower(): str(k) for k in known}
    close = difflib.get_close_matches(str(name).lower(), list(candidates), n=1)
    return f" Did you mean {candidates[close[0]]!r}?" if close else ""
