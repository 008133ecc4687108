"""Restrictions with typed values only, because DataJoint writes some values into the SQL as they are.

DataJoint 2.3.5 turns a dict restriction into SQL text.  Strings are quoted
and escaped, but a list, a dict or any other object is written with
``str(value)`` between quotes, unescaped:
``Dataset & {"dataset_fn": ["' OR 1=1 OR 'a'='a"]}`` matches every row, and
a crafted value can close the quote and run its own statement.  Keys
containing a dot become JSON paths, written into the SQL as well.

Every table of nntransfer restricts through :class:`SafeRestriction`, which
checks a restriction before DataJoint sees it: dict keys must be attribute
names (or dotted JSON paths of plain names), values must be None, bools,
ints, finite floats, strings without NUL characters, numpy scalars, dates,
decimals or UUIDs.  Anything else is a :class:`~nntransfer.errors.ConfigError`
that says what to write instead.  Lists of dicts (an OR of keys), query
expressions, ``Not`` and ``AndList`` are checked element by element; SQL
strings are code, written by the caller, and pass (never build one from
data: use a dict).
"""

from __future__ import annotations

import collections.abc
import datetime
import decimal
import math
import re
import uuid

import numpy as np

from ..errors import ConfigError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_SCALARS = (bool, int, str, datetime.date, datetime.datetime, datetime.time, decimal.Decimal, uuid.UUID, np.generic)


def check_value(name: str, value) -> None:
    """Raise ConfigError unless ``value`` may stand in a restriction by ``name``."""
    if value is None:
        return
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ConfigError(f"restriction by {name!r}: {value!r} matches nothing in SQL; leave it out.")
        return
    if isinstance(value, (str, np.str_)):
        if "\x00" in value:
            raise ConfigError(f"restriction by {name!r}: the value contains a NUL character, which no row holds.")
        return
    if isinstance(value, _SCALARS) and not isinstance(value, np.ndarray):
        return
    raise ConfigError(
        f"restriction by {name!r}: a {type(value).__name__} is not a value ({value!r:.80}); DataJoint would write "
        f"it into the SQL unescaped. To match several values, restrict by a list of dicts: "
        f"[{{{name!r}: v1}}, {{{name!r}: v2}}]."
    )


def check_restriction(restriction, attributes=None) -> None:
    """Raise ConfigError if ``restriction`` holds anything DataJoint would not escape (see the module doc).

    ``attributes``: the names of the restricted table's attributes.  As in
    DataJoint, a dict's keys that name none of them (a whole fetched row
    restricting a table with fewer columns) play no part and are not
    checked; None checks every key.
    """
    from datajoint.condition import AndList, Not

    while isinstance(restriction, Not):
        restriction = restriction.restriction
    if restriction is None or isinstance(restriction, (str, bool)):
        return
    if isinstance(restriction, collections.abc.Mapping):
        for name, value in restriction.items():
            if not isinstance(name, str):
                raise ConfigError(f"restriction key {name!r} is not an attribute name; restrict by attribute names.")
            if attributes is not None and name.split(".", 1)[0] not in attributes:
                continue
            if not _NAME.fullmatch(name):
                raise ConfigError(f"restriction key {name!r} is not an attribute name; restrict by attribute names.")
            check_value(name, value)
        return
    if isinstance(restriction, np.void):
        check_restriction({name: restriction[name] for name in restriction.dtype.names or ()}, attributes)
        return
    if isinstance(restriction, (AndList, list, tuple, set, np.ndarray)):
        for item in restriction:
            check_restriction(item, attributes)
        return
    if hasattr(restriction, "to_records") and hasattr(restriction, "columns"):  # a pandas DataFrame
        check_restriction(restriction.to_records(index=False), attributes)
    # query expressions, tables and dj.Top are DataJoint's own objects


class SafeRestriction:
    """Mixin for the tables: every restriction is checked by :func:`check_restriction` first."""

    def restrict(self, restriction, semantic_check=True):
        check_restriction(restriction, self.heading.names)
        return super().restrict(restriction, semantic_check=semantic_check)
