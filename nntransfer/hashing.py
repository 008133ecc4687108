"""Canonical JSON of a config and the hashes that identify table rows.

A config's hash is its identity in the database: the same parameters must give
the same hash in every process, on every machine and Python version, whatever
the key order, and different parameters must give different hashes.  Python's
built-in ``hash`` and ``json.dumps`` with default options give none of these
guarantees, so the canonical form is pinned here:

* keys sorted, no whitespace, ASCII only;
* tuples written as lists, numpy scalars as the Python numbers they hold;
* floats written exactly (``repr``, shortest string that reads back to the
  same double); NaN, inf and -inf, which JSON has no words for, written as
  the tagged objects ``{"__float__": "nan"}``, ``{"__float__": "inf"}`` and
  ``{"__float__": "-inf"}``;
* ``1`` and ``1.0`` stay different (an int and a float), and ``True`` is not
  ``1``.  In a raw dict that is the caller's choice; typed config fields
  declared ``float`` store ints as floats, so there ``1`` and ``1.0`` hash the
  same.

Anything else (sets, bytes, objects, tensors, numpy arrays) is refused: a
config holds parameters, not data, and only JSON values can be stored,
compared and rebuilt from the database.

The hash is BLAKE2b with a 16-byte digest (32 hex characters, the width of
nnfabrik's md5 hashes); it is in every Python build, FIPS ones included.
"""

import hashlib
import json
import math

import numpy as np

from nntransfer.errors import ConfigError

FLOAT_TAG = "__float__"
"""Key of the tagged object that stands for NaN, inf or -inf."""

_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

def to_jsonable(obj, path="config"):
    """Return ``obj`` as plain JSON values (see the module docstring for the rules).

    ``path`` names ``obj`` in error messages, so a bad value deep inside a
    config is reported as e.g. ``trainer_config['modules']['x']``.
    """
    if obj is None or type(obj) in (bool, str, int):
        return obj
    if type(obj) is float:
        return _float_to_jsonable(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return _float_to_jsonable(float(obj))
    if type(obj) is dict:
        return _dict_to_jsonable(obj, path)
    if type(obj) in (list, tuple):
        return [to_jsonable(item, f"{path}[{i}]") for i, item in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        raise ConfigError(
            f"{path} is a numpy array of shape {obj.shape}. Configs hold parameters, not "
            "data: pass a list (array.tolist()) if it is a parameter, or load the data "
            "inside the dataset function."
        )
    raise ConfigError(
        f"{path} is of type {type(obj).__module__}.{type(obj).__qualname__}, which has no "
        "canonical JSON form. Pass JSON-able values only: None, bool, int, float, str, "
        "and lists, tuples or dicts with string keys of these."
    )


def _float_to_jsonable(value):
    if math.isnan(value):
        return {FLOAT_TAG: "nan"}
    if math.isinf(value):
        return {FLOAT_TAG: "inf" if value > 0 else "-inf"}
    return value


def _dict_to_jsonable(obj, path):
    converted = {}
    for key, value in obj.items():
        if type(key) is not str:
            raise ConfigError(
                f"{path} has the key {key!r} of type {type(key).__name__}. Use string "
                "keys only: JSON turns other keys into strings, so 1 and '1' would collide."
            )
        if key == FLOAT_TAG:
            raise ConfigError(
                f"{path} uses the key {FLOAT_TAG!r}, which is reserved for writing NaN "
                "and infinities. Rename that key."
            )
        converted[key] = to_jsonable(value, f"{path}[{key!r}]")
    return converted


def from_jsonable(obj):
    """Undo :func:`to_jsonable`'s tagging: ``{"__float__": "nan"}`` becomes ``nan``."""
    if type(obj) is dict:
        if set(obj) == {FLOAT_TAG} and obj[FLOAT_TAG] in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[obj[FLOAT_TAG]]
        return {key: from_jsonable(value) for key, value in obj.items()}
    if type(obj) is list:
        return [from_jsonable(item) for item in obj]
    return obj


def canonical_json(obj, path="config"):
    """Return the canonical JSON text of ``obj``: equal parameters give equal text."""
    return json.dumps(
        to_jsonable(obj, path),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    )


def digest(text):
    """BLAKE2b-128 of ``text`` as 32 hex characters: the width of every hash column."""
    return hashlib.blake2b(text.encode("ascii"), digest_size=16).hexdigest()


def config_hash(config):
    """Return the 32-hex-character hash of a config dict (its canonical JSON)."""
    if type(config) is not dict:
        raise ConfigError(
            f"config_hash needs a dict of parameters, got {type(config).__name__}. "
            "Pass config.to_dict() for a Config object."
        )
    return digest(canonical_json(config))
