"""Hyperparameter search over hashed configs, with Optuna as the engine, in the experiment database.

Declare a :class:`Search` in a recipe module (``search = Search(...)``), then
run trials with ``nntransfer search RECIPE --trials N`` or workers with
``nntransfer worker RECIPE``, or from a notebook::

    from nntransfer import search as nts

    nts.optimize(search, trials=10)
    nts.status(search); nts.results(search)

A trial's configs are inserted and trained like any experiment's, so a
config is never trained twice; the Optuna study lives in the same schema
(see :mod:`.storage`).  Importing this package imports neither Optuna nor
the tables; they are loaded when trials run.
"""

from importlib import import_module

from .declaration import Search
from .space import Categorical, Integer, LogUniform, Uniform

_LAZY = {
    "optimize": ".engine",
    "open_study": ".engine",
    "status": ".report",
    "format_status": ".report",
    "results": ".report",
    "plot": ".report",
    "delete_study": ".report",
    "load_study": ".report",
}

__all__ = ["Search", "Uniform", "LogUniform", "Integer", "Categorical", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nntransfer.search' has no attribute {name!r}")
