"""nnfabrik's ``utility.nnf_helper``: dotted names, dynamic import and a cache of loaded models."""

from __future__ import annotations

from ...hashing import make_hash
from ...resolve import import_dotted
from .dj_helpers import cleanup_numpy_scalar

__all__ = ["split_module_name", "dynamic_import", "FabrikCache", "make_hash", "cleanup_numpy_scalar"]


def split_module_name(abs_class_name: str) -> tuple[str, str]:
    """``"a.b.c"`` -> ``("a.b", "c")``; a bare name has an empty module path."""
    module_path, _, name = abs_class_name.rpartition(".")
    return module_path, name


def dynamic_import(abs_module_path: str, class_name: str):
    """The attribute ``class_name`` of the module ``abs_module_path``, imported (never evaluated)."""
    return import_dotted(f"{abs_module_path}.{class_name}")


class FabrikCache:
    """Keeps the last ``cache_size_limit`` objects a table loads, keyed by the table's primary key.

    ``base_table`` needs ``load_model``, ``get_dataloader`` or ``build_model``;
    ``load(key, **kwargs)`` calls it once per key.
    """

    def __init__(self, base_table, cache_size_limit: int = 10):
        self.base_table = base_table
        self.cache_size_limit = cache_size_limit
        self.cache = {}
        for method in ("load_model", "get_dataloader", "build_model"):
            if hasattr(base_table, method):
                self.load_function = getattr(base_table(), method)
                break
        else:
            raise ValueError("Base table needs to have a 'load_model', 'get_dataloader', or 'build_model' method")

    def load(self, key, **kwargs):
        if self.cache_size_limit == 0:
            return self.load_function(key=key, **kwargs)
        cache_key = self._hash_trained_model_key(key)
        if cache_key not in self.cache:
            self.cache[cache_key] = self.load_function(key=key, **kwargs)
            if len(self.cache) > self.cache_size_limit:
                del self.cache[next(iter(self.cache))]
        return self.cache[cache_key]

    def _hash_trained_model_key(self, key):
        return make_hash({name: key[name] for name in self.base_table().primary_key})
