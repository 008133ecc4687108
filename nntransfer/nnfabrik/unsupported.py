"""nnfabrik names that are deliberately not carried over: calling one says what to use instead."""

from __future__ import annotations

from ..errors import NNTransferError


class NotSupported(NNTransferError, NotImplementedError):
    """An nnfabrik name or option that nntransfer does not offer; the message names the replacement."""


def unsupported(name: str, instead: str):
    """A stand-in for nnfabrik's ``name`` that raises :class:`NotSupported` naming ``instead`` when used."""

    def stand_in(*args, **kwargs):
        raise NotSupported(f"nnfabrik's {name} is not supported by nntransfer; {instead}")

    stand_in.__name__ = name.rsplit(".", 1)[-1]
    stand_in.__doc__ = f"Not supported: {instead}"
    return stand_in
