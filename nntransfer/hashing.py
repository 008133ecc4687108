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
  same;
* numpy strings as the ``str`` they hold (``np.random.choice(["adam",
  "sgd"])`` gives one);
* a dict with a key that is not a string (``{0.08: 0.1, -1: 0.5}``, as
  sinzlab's noise configs have) as the tagged object ``{"__items__": [[key,
  value], ...]}``, its pairs sorted by the canonical JSON of the key: JSON
  objects only have string keys, and writing ``1`` as ``"1"`` would make
  ``1`` and ``"1"`` collide and give back the wrong key.  Keys may be
  ``None``, bools, numbers, strings or tuples of these; they come back as
  they were given.

Anything else (sets, bytes, objects, tensors, numpy arrays) is refused: a
config holds parameters, not data, and only JSON values can be stored,
compared and rebuilt from the database.

The hash is BLAKE2b with a 16-byte digest (32 hex characters, the width of
nnfabrik's md5 hashes); it is in every Python build, FIPS ones included.

nnfabrik hashed differently (:func:`make_hash`: MD5 over the config as given,
no completion with defaults).  A schema whose config tables choose
``hashing = "nnfabrik"`` (the :mod:`nntransfer.nnfabrik` namespace does) keys
its rows that way, so the hashes printed in nnfabrik's tutorials and the keys
of an existing nnfabrik database stay valid.  :data:`HASHINGS` names the two
choices.
"""

import hashlib
import json
import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping

import numpy as np

from nntransfer.errors import ConfigError

FLOAT_TAG = "__float__"
"""Key of the tagged object that stands for NaN, inf or -inf."""

ITEMS_TAG = "__items__"
"""Key of the tagged object that stands for a dict with keys that are not strings."""

RESERVED_KEYS = (FLOAT_TAG, ITEMS_TAG)

_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_FLOAT_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?(e[+-][0-9]+)?")

MAX_STORED_DEPTH = 64
"""Deepest nesting of lists and dicts a stored config may have (MySQL allows 100, drivers recurse)."""

def to_jsonable(obj, path="config"):
    """Return ``obj`` as plain JSON values (see the module docstring for the rules).

    ``path`` names ``obj`` in error messages, so a bad value deep inside a
    config is reported as e.g. ``trainer_config['modules']['x']``.
    """
    if obj is None or type(obj) in (bool, str, int):
        return obj
    if isinstance(obj, np.str_):
        return str(obj)
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
    if not all(type(key) is str or isinstance(key, np.str_) for key in obj):
        return _items_to_jsonable(obj, path)
    converted = {}
    for key, value in obj.items():
        key = str(key)
        if key in RESERVED_KEYS:
            raise ConfigError(
                f"{path} uses the key {key!r}, which is reserved for writing NaN, infinities "
                "and dicts with keys that are not strings. Rename that key."
            )
        converted[key] = to_jsonable(value, f"{path}[{key!r}]")
    return converted


def _items_to_jsonable(obj, path):
    """``{ITEMS_TAG: [[key, value], ...]}`` in canonical key order (see the module docstring)."""
    pairs = []
    for key, value in obj.items():
        where = f"{path}[{key!r}]"
        pairs.append((_key_to_jsonable(key, where), to_jsonable(value, where)))
    pairs.sort(key=lambda pair: json.dumps(pair[0], sort_keys=True, separators=(",", ":")))
    return {ITEMS_TAG: [list(pair) for pair in pairs]}


def _key_to_jsonable(key, path):
    if isinstance(key, tuple):
        return [_key_to_jsonable(item, path) for item in key]
    if key is None or isinstance(key, (bool, int, float, str, np.generic)):
        return to_jsonable(key, path)
    raise ConfigError(
        f"{path}: the dict key {key!r} is of type {type(key).__name__}; keys may be None, bools, "
        "numbers, strings or tuples of these."
    )


def _key_from_jsonable(key):
    if type(key) is list:
        return tuple(_key_from_jsonable(item) for item in key)
    return from_jsonable(key)


def from_jsonable(obj):
    """Undo :func:`to_jsonable`'s tagging: ``{"__float__": "nan"}`` becomes ``nan``."""
    if type(obj) is dict:
        if set(obj) == {FLOAT_TAG} and obj[FLOAT_TAG] in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[obj[FLOAT_TAG]]
        if set(obj) == {FLOAT_TAG} and type(obj[FLOAT_TAG]) is str and _FLOAT_TEXT.fullmatch(obj[FLOAT_TAG]):
            return float(obj[FLOAT_TAG])  # a float that the database would have changed (see to_stored)
        if set(obj) == {ITEMS_TAG} and type(obj[ITEMS_TAG]) is list:
            return {_key_from_jsonable(key): from_jsonable(value) for key, value in obj[ITEMS_TAG]}
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


HASHINGS = ("canonical", "nnfabrik")
"""How a schema keys its config rows: ``"canonical"`` (:func:`config_hash` of the
config completed with the function's defaults, the default) or ``"nnfabrik"``
(:func:`make_hash` of the config as given, as nnfabrik did)."""


def make_hash(obj) -> str:
    """nnfabrik's hash of a (nested) value: the MD5 of a traversal, as 32 hex characters.

    A string contributes its UTF-8 bytes; a mapping its keys in the order of
    ``str(key)`` (an ``OrderedDict`` in its own order), each key as
    ``str(key)`` followed by the hash of its value; any other iterable the
    hashes of its items; anything else ``str(value)``.  So key order does not
    matter, a tuple and a list with the same items are equal, and ``1`` and
    ``1.0`` differ.  Kept bit for bit, so keys written by nnfabrik are found.
    """
    md5 = hashlib.md5(usedforsecurity=False)
    if isinstance(obj, str):
        md5.update(obj.encode())
    elif isinstance(obj, Mapping):
        keys = obj if isinstance(obj, OrderedDict) else sorted(obj, key=str)
        for key in keys:
            md5.update(str(key).encode())
            md5.update(make_hash(obj[key]).encode())
    elif isinstance(obj, Iterable):
        for item in obj:
            md5.update(make_hash(item).encode())
    else:
        md5.update(str(obj).encode())
    return md5.hexdigest()


def nnfabrik_config(config):
    """``config`` with numpy values as the plain values they print as; :func:`make_hash` is unchanged.

    nnfabrik hashed what it was given, numpy scalars included, and
    :func:`make_hash` sees their ``str``: ``np.float32(0.1)`` hashes as
    ``"0.1"``.  Storing ``float(np.float32(0.1))`` (0.10000000149011612) would
    give a row whose config no longer hashes to its key, so a numpy float
    becomes the float of its printed form and every other numpy scalar its
    Python value.
    """
    if isinstance(config, np.str_):
        return str(config)
    if isinstance(config, np.bool_):
        return bool(config)
    if isinstance(config, np.integer):
        return int(config)
    if isinstance(config, np.floating):
        return float(str(config))
    if isinstance(config, Mapping):
        return {nnfabrik_config(key): nnfabrik_config(value) for key, value in config.items()}
    if isinstance(config, (list, tuple)):
        return type(config)(nnfabrik_config(item) for item in config)
    return config


def to_stored(obj, path="config"):
    """The form of ``obj`` written into a JSON column: :func:`to_jsonable`, made safe for every backend.

    PostgreSQL keeps JSON numbers as decimals, so ``-0.0`` comes back as
    ``0.0`` and a float written with an exponent (``1e+16``,
    ``1.7976931348623157e+308``) comes back as an integer: the row would no
    longer hash to its key.  Such floats are stored as ``{"__float__":
    "1e+16"}`` (:func:`from_jsonable` reads them back bit for bit); the hash
    is not affected, it is taken over :func:`canonical_json`.  Strings with
    NUL characters or unpaired surrogates, which no backend stores, and
    nesting deeper than :data:`MAX_STORED_DEPTH` are refused with the path of
    the value, before any driver sees them.
    """
    return _stored(to_jsonable(obj, path), path, 0)


def _stored(value, path, depth):
    if type(value) is float and (value == 0 and math.copysign(1.0, value) < 0 or "e+" in repr(value)):
        return {FLOAT_TAG: repr(value)}
    if type(value) is str:
        _check_stored_text(value, path)
        return value
    if type(value) not in (dict, list):
        return value
    if depth >= MAX_STORED_DEPTH:
        raise ConfigError(
            f"{path} is nested more than {MAX_STORED_DEPTH} levels deep; the databases refuse or mangle deeper "
            "JSON. Flatten the config."
        )
    if type(value) is list:
        return [_stored(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    stored = {}
    for key, item in value.items():
        _check_stored_text(key, f"{path} key {key!r}")
        stored[key] = _stored(item, f"{path}[{key!r}]", depth + 1)
    return stored


def _check_stored_text(text, path):
    if "\x00" in text:
        raise ConfigError(f"{path} contains a NUL character (\\x00), which no database stores in JSON; remove it.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{path} contains an unpaired surrogate character, which is not valid UTF-8; fix the string."
        ) from None
