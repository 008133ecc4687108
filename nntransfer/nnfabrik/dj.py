"""DataJoint for nnfabrik's notebooks: ``from nntransfer.nnfabrik import dj`` in place of ``import datajoint as dj``.

Everything is DataJoint 2's, except ``config``, which also takes what
nnfabrik's notebooks and labs wrote into DataJoint 0.12's config and
DataJoint 2's refuses:

* ``dj.config["enable_python_native_blobs"] = True``: Python values are
  always stored natively now; accepted and ignored;
* ``"stores" in dj.config`` (and ``in`` for any other setting);
* ``dj.config["nnfabrik.schema_name"] = ...`` (the schema of
  :mod:`nntransfer.nnfabrik.main`), ``dj.config["custom"] = {...}`` (sinzlab
  nntransfer kept its schema name there) and other keys DataJoint 2 does not
  know: kept here, next to DataJoint's settings.

Settings DataJoint knows (``database.host``, ``stores``, ...) go to
DataJoint's own ``config``, so nntransfer sees a host set here and connects
there (:mod:`nntransfer.settings`).
"""

from __future__ import annotations

from ..db import import_datajoint

_datajoint = import_datajoint()

IGNORED = {"enable_python_native_blobs": "Python values are always stored natively on DataJoint 2"}


class LegacyConfig:
    """DataJoint's config, also holding the keys of older DataJoint versions (see the module docstring)."""

    def __init__(self, config):
        object.__setattr__(self, "_config", config)
        object.__setattr__(self, "_extra", {})

    def _known(self, key) -> bool:
        try:
            self._config[key]
        except (KeyError, AttributeError, TypeError):
            return False
        return True

    def __setitem__(self, key, value):
        if key in IGNORED:
            self._extra[key] = value
        elif self._known(key):
            self._config[key] = value
        else:
            self._extra[key] = value

    def __getitem__(self, key):
        if key in self._extra:
            return self._extra[key]
        return self._config[key]

    def __contains__(self, key) -> bool:
        return key in self._extra or self._known(key)

    def __delitem__(self, key):
        del self._extra[key]

    def get(self, key, default=None):
        return self[key] if key in self else default

    def __getattr__(self, name):
        return getattr(self._config, name)

    def __setattr__(self, name, value):
        setattr(self._config, name, value)

    def __repr__(self):
        return f"{self._config!r}\nkept for nnfabrik: {self._extra!r}"


config = LegacyConfig(_datajoint.config)


def __getattr__(name):
    return getattr(_datajoint, name)


def __dir__():
    return sorted(set(dir(_datajoint)) | {"config"})
