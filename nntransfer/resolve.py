"""The one way a dotted path becomes a Python object: ``importlib``, never ``eval``.

Functions named in config rows, optimizers, losses, main-loop modules and
recipe modules are all resolved here, so every such name fails with the same
kind of message (which part of the path failed, and why) and there is one
place to audit what a stored name can reach.  This module sits on the ground
floor: it imports nothing of the package but :mod:`nntransfer.errors`.

The trust boundary.  A name stored in the database is code that every worker
imports and runs: anyone who can write a config row could otherwise name
``torch.hub.load`` or ``os.system``.  So names that come from rows are
resolved inside :func:`stored_names`, where a dotted path must lie in an
allowed package (:func:`allowed_packages`): ``nntransfer`` itself,
``torch.optim`` and ``torch.nn`` (optimizers and losses by path), the
packages of the functions a recipe names (the runner allows them when it
loads the recipe), those listed in ``NNTRANSFER_ALLOWED_PACKAGES``
(comma- or space-separated, e.g. ``mylab,otherlab.models``) and those
given to :func:`allow_packages`.  The table layer checks every name when a
config is inserted and again in the worker, before anything is imported.
The short names of the built-in tables (``"adam"``, ``"early_stopping"``)
are part of the code, not of the row, and are always allowed.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import re
from typing import Any, Callable

from .errors import ConfigError, FunctionResolutionError, UntrustedFunctionError

ALLOWED_ENV = "NNTRANSFER_ALLOWED_PACKAGES"
DEFAULT_ALLOWED = ("nntransfer", "torch.optim", "torch.nn")
"""Allowed everywhere: the library itself, and torch's optimizers and losses."""

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_allowed_here: set = set()
_checking = contextvars.ContextVar("nntransfer_checking_stored_names", default=False)


def allow_packages(*names: str) -> None:
    """Allow functions from the packages (or dotted module prefixes) ``names`` in this process."""
    for name in names:
        if not isinstance(name, str) or not _DOTTED.fullmatch(name):
            raise ConfigError(f"{name!r} is not a package name; give names such as 'mylab' or 'mylab.models'.")
    _allowed_here.update(names)


def allowed_packages() -> tuple:
    """The packages and module prefixes whose functions stored names may reach (see the module doc)."""
    listed = [name for name in re.split(r"[,\s]+", os.environ.get(ALLOWED_ENV, "")) if name]
    bad = [name for name in listed if not _DOTTED.fullmatch(name)]
    if bad:
        raise ConfigError(f"{ALLOWED_ENV} lists {bad}, which are not package names; list names such as 'mylab'.")
    return tuple(sorted({*DEFAULT_ALLOWED, *listed, *_allowed_here}))


def check_allowed(path: str, kind: str = "name") -> None:
    """Raise :class:`UntrustedFunctionError` unless ``path`` lies in an allowed package."""
    check_all_allowed({kind: path})


def check_all_allowed(names: dict) -> None:
    """:func:`check_allowed` for several names (``{kind: path}``) at once: one error names every package to allow.

    A worker that meets an entry of a notebook's own package learns there
    exactly what to set, for the dataset, model and trainer functions together.
    """
    allowed = allowed_packages()
    refused = {kind: path for kind, path in names.items()
               if not (isinstance(path, str) and any(path == p or path.startswith(p + ".") for p in allowed))}
    if not refused:
        return
    named = ", ".join(f"{kind} {path!r}" for kind, path in refused.items())
    in_main = [path for path in refused.values() if isinstance(path, str) and path.split(".")[0] == "__main__"]
    if in_main:
        raise UntrustedFunctionError(
            f"{named}: {in_main[0]!r} was defined in a notebook or script (module '__main__'), which no other "
            "process can import, workers included. Move the function into a module of a package (e.g. "
            "mylab/functions.py), import it from there and add the entry again."
        )
    tops = list(dict.fromkeys(str(path).split(".")[0] for path in refused.values()))
    listed = [name for name in re.split(r"[,\s]+", os.environ.get(ALLOWED_ENV, "")) if name]
    setting = ",".join(dict.fromkeys(tops + listed))
    plural = "packages" if len(tops) > 1 else "package"
    raise UntrustedFunctionError(
        f"{named} {'are' if len(refused) > 1 else 'is'} not in an allowed package ({', '.join(allowed)}). Names "
        "stored in the database are imported and run by every worker, so only packages the deployment trusts may "
        f"be named. If you trust the {plural} {', '.join(map(repr, tops))}, set {ALLOWED_ENV}={setting} in the "
        "environment of every process that trains or loads these entries (workers included; the package must "
        "be importable there too: installed, or its folder on PYTHONPATH), or call "
        f"nntransfer.allow_packages({', '.join(map(repr, tops))}) in this one."
    )


@contextlib.contextmanager
def stored_names():
    """Within this block, dotted paths are names read from (or going into) the database: they must be allowed."""
    token = _checking.set(True)
    try:
        yield
    finally:
        _checking.reset(token)


def import_dotted(path: str, kind: str = "name") -> Any:
    """Import ``"package.module.attribute"`` and return the attribute.

    ``kind`` names what the path is for (``"dataset_fn"``, ``"optimizer"``,
    ...) in the error message.  Inside :func:`stored_names` the path must
    lie in an allowed package; it is checked before anything is imported.
    """
    if not isinstance(path, str) or "." not in path.strip("."):
        raise FunctionResolutionError(
            f"{kind} {path!r} is not a dotted path; write it as 'package.module.name'."
        )
    if _checking.get():
        check_allowed(path, kind)
    return _import(path, kind)


def _import(path: str, kind: str) -> Any:
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
        return _import(known[name], kind)  # a name of the code's own table, not of the row
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
