"""Check a config value against its field's annotation, converting where intended.

Only the annotations that describe JSON values are checked: ``None``, ``bool``,
``int``, ``float``, ``str``, ``list[...]``, ``tuple[...]``, ``dict[str, ...]``,
``Literal[...]``, unions (``X | Y``, ``Optional``) and ``Annotated``.  Any
other annotation (``Any``, a class, a callable) only requires a JSON-able
value, because that is all a config row can hold.

Conversions are the ones that keep the hash meaningful: an int given to a
``float`` field is stored as a float, so ``lr=1`` and ``lr=1.0`` are the same
config; numpy scalars become Python numbers; a list given to a ``tuple`` field
becomes a tuple (JSON has only lists, so this is what makes JSON round trips
exact).  A bool is never accepted as an int or a float.
"""

import types
import typing

import numpy as np

from nntransfer.errors import ConfigError
from nntransfer.hashing import from_jsonable, to_jsonable


class _Mismatch(Exception):
    """A value does not fit an annotation; ``path`` says where inside the value."""

    def __init__(self, path, value):
        super().__init__(path)
        self.path = path
        self.value = value


def coerce(value, annotation, path):
    """Return ``value`` checked against ``annotation``; raise ConfigError naming ``path``."""
    try:
        return _coerce(value, annotation, path, strict=False)
    except _Mismatch as mismatch:
        if mismatch.path == path:
            problem = f"got {_short_repr(mismatch.value)}"
        else:
            problem = f"but {mismatch.path} is {_short_repr(mismatch.value)}"
        raise ConfigError(
            f"{path} is declared as {describe(annotation)}, {problem}. Pass a value of that type."
        ) from None


def _short_repr(value):
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def describe(annotation):
    """Return an annotation as a user would write it (``list[int] | None``)."""
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


def _coerce(value, annotation, path, strict):
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _coerce(value, args[0], path, strict)
    if annotation is None or annotation is type(None):
        if value is None:
            return None
        raise _Mismatch(path, value)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, args, path, strict)
    if origin is typing.Literal:
        if any(type(value) is type(choice) and value == choice for choice in args):
            return value
        raise _Mismatch(path, value)
    scalar = _SCALARS.get(annotation)
    if scalar is not None:
        return scalar(value, path, strict)
    container = origin if origin is not None else annotation
    if container is list:
        return _coerce_list(value, args, path, strict)
    if container is tuple:
        return _coerce_tuple(value, args, path, strict)
    if container is dict:
        return _coerce_dict(value, args, path, strict)
    return from_jsonable(to_jsonable(value, path))


def _coerce_union(value, arms, path, strict):
    """Prefer an arm that fits without conversion: ``int | float`` keeps 1 an int."""
    for arm_strict in (True, False) if not strict else (True,):
        for arm in arms:
            try:
                return _coerce(value, arm, path, arm_strict)
            except _Mismatch:
                continue
    raise _Mismatch(path, value)


def _coerce_bool(value, path, strict):
    if type(value) is bool:
        return value
    if not strict and isinstance(value, np.bool_):
        return bool(value)
    raise _Mismatch(path, value)


def _coerce_int(value, path, strict):
    if type(value) is int:
        return value
    if not strict and isinstance(value, np.integer):
        return int(value)
    raise _Mismatch(path, value)


def _coerce_float(value, path, strict):
    if type(value) is float:
        return value
    if not strict and (type(value) is int or isinstance(value, (np.integer, np.floating))):
        return float(value)
    raise _Mismatch(path, value)


def _coerce_str(value, path, strict):
    if type(value) is str:
        return value
    if not strict and isinstance(value, np.str_):
        return str(value)
    raise _Mismatch(path, value)


_SCALARS = {bool: _coerce_bool, int: _coerce_int, float: _coerce_float, str: _coerce_str}


def _coerce_list(value, args, path, strict):
    if type(value) is not list and (strict or type(value) is not tuple):
        raise _Mismatch(path, value)
    item_type = args[0] if args else typing.Any
    return [_coerce(item, item_type, f"{path}[{i}]", strict) for i, item in enumerate(value)]


def _coerce_tuple(value, args, path, strict):
    if type(value) is not tuple and (strict or type(value) is not list):
        raise _Mismatch(path, value)
    if not args:
        item_types = [typing.Any] * len(value)
    elif len(args) == 2 and args[1] is Ellipsis:
        item_types = [args[0]] * len(value)
    elif len(args) == len(value):
        item_types = list(args)
    else:
        raise _Mismatch(path, value)
    return tuple(
        _coerce(item, item_type, f"{path}[{i}]", strict)
        for i, (item, item_type) in enumerate(zip(value, item_types))
    )


def _coerce_dict(value, args, path, strict):
    if type(value) is not dict:
        raise _Mismatch(path, value)
    key_type = args[0] if len(args) == 2 else typing.Any
    value_type = args[1] if len(args) == 2 else typing.Any
    converted = {}
    for key, item in value.items():
        if key_type is str and type(key) is not str:
            raise _Mismatch(path, value)
        # any other key type must survive the JSON round trip (see nntransfer.hashing)
        key = key if type(key) is str else from_jsonable(to_jsonable({key: None}, path)).popitem()[0]
        converted[key] = _coerce(item, value_type, f"{path}[{key!r}]", strict)
    return converted
