"""nnfabrik's ``templates.utility``: find the table a template refers to in its ``nnfabrik`` context."""

from __future__ import annotations

from types import ModuleType
from typing import Union


def find_object(context: Union[ModuleType, dict, str, None], attribute: str, prop_name: str | None = None):
    """The object named ``attribute`` in ``context`` (a module, a dict, or ``"core"`` for :mod:`nntransfer.nnfabrik.main`)."""
    if isinstance(context, str) and context == "core":
        from .. import main

        context = main
    prop_name = prop_name or attribute.lower() + "_table"
    if context is None:
        raise ValueError(f"Please specify either `nnfabrik` or `{prop_name}` property for the class")
    if isinstance(context, ModuleType):
        context = context.__dict__
    try:
        return context[attribute]
    except KeyError:
        raise ValueError(
            f"the nnfabrik context has no {attribute!r}; declare it there (my_nnfabrik(..., context=...)) "
            f"or set the class property `{prop_name}`."
        ) from None


class FromNnfabrik:
    """A class property: the table ``attribute`` of the class's ``nnfabrik`` context (nnfabrik's table properties).

    On a template itself (``nnfabrik`` not set and the class marked
    ``_nnfabrik_template``) it is None; on a table class without a context it
    is nnfabrik's error that asks for ``nnfabrik`` or the table property.
    """

    def __init__(self, attribute: str):
        self.attribute = attribute
        self.prop_name = None

    def __set_name__(self, owner, name):
        self.prop_name = name

    def __get__(self, instance, owner):
        context = owner.nnfabrik
        if context is None and owner.__dict__.get("_nnfabrik_template"):
            return None
        return find_object(context, self.attribute, self.prop_name)
