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

HISTORY_KEY_FIELDS = (
    "dataset_fn",
    "dataset_hash",
    "model_fn",
    "model_hash",
    "trainer_fn",
    "trainer_hash",
    "seed",
    "transfer_step",
    "data_transfer",
)
"""The fields of a transfer step's key that enter the next step's history."""


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


def _digest(text):
    return hashlib.blake2b(text.encode("ascii"), digest_size=16).hexdigest()


def config_hash(config):
    """Return the 32-hex-character hash of a config dict (its canonical JSON)."""
    if type(config) is not dict:
        raise ConfigError(
            f"config_hash needs a dict of parameters, got {type(config).__name__}. "
            "Pass config.to_dict() for a Config object."
        )
    return _digest(canonical_json(config))


def collapse_history(previous_history, previous_key):
    """Return the ``collapsed_history`` of the step after ``previous_key``.

    A transfer step's row is found by its own dataset/model/trainer/seed and
    by everything that happened before it.  Rather than a growing list, each
    step carries one hash that folds the previous step's collapsed history
    together with the previous step's key (the fields in
    :data:`HISTORY_KEY_FIELDS`; other fields of a fetched row are ignored).
    Step 0 has no past: its collapsed history is the empty string ``""``.

    Values are normalised first (numpy integers to int, 0/1 flags to bool), so
    a key fetched from any database backend gives the same hash as the key
    that was inserted.
    """
    if type(previous_history) is not str:
        raise ConfigError(
            f"previous_history must be the previous step's collapsed_history (a str, "
            f"'' at step 0), got {type(previous_history).__name__}."
        )
    if not isinstance(previous_key, dict):
        raise ConfigError(
            f"previous_key must be the previous step's key dict, got "
            f"{type(previous_key).__name__}."
        )
    missing = [name for name in HISTORY_KEY_FIELDS if name not in previous_key]
    if missing:
        raise ConfigError(
            f"previous_key lacks {missing}; a transfer step's key needs all of "
            f"{list(HISTORY_KEY_FIELDS)}."
        )
    stored_history = previous_key.get("collapsed_history", previous_history)
    if stored_history != previous_history:
        raise ConfigError(
            f"previous_key has collapsed_history {stored_history!r} but previous_history "
            f"is {previous_history!r}; pass the previous step's own collapsed_history."
        )
    key = {name: previous_key[name] for name in HISTORY_KEY_FIELDS}
    for name in ("dataset_fn", "dataset_hash", "model_fn", "model_hash", "trainer_fn", "trainer_hash"):
        if type(key[name]) is not str:
            raise ConfigError(f"previous_key[{name!r}] must be a str, got {key[name]!r}.")
    for name in ("seed", "transfer_step"):
        key[name] = _as_int(key[name], name)
    key["data_transfer"] = _as_flag(key["data_transfer"])
    return _digest(canonical_json({"history": previous_history, "key": key}, "previous_key"))


def _as_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"previous_key[{name!r}] must be an int, got {value!r}.")
    return int(value)


def _as_flag(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise ConfigError(
        f"previous_key['data_transfer'] must be a bool (or 0/1 as some databases "
        f"return it), got {value!r}."
    )
