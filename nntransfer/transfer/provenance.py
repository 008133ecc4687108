"""What transfer data was computed on: recorded when it is made, checked when it arrives.

A receiving dataset pairs transfer-data rows with its samples by position, so
rows computed on other samples are paired silently whenever the counts agree:
the logits of the validation split handed to a test split of the same size, or
a receiving config whose split seed orders the samples differently.  So every
split's arrays carry two entries besides the rows:

* :data:`SPLIT_KEY`: the name of the split the rows were computed on;
* :data:`ORDER_KEY`: :func:`order_fingerprint` of that split's targets in
  dataset order.

Targets, not inputs, are fingerprinted: a receiving step may read the same
samples differently (another resolution, flattened), and only the samples and
their order must agree.  The generating side (``generate_transfer_data``) and
every receiving side compute the fingerprint with the same function, and the
entries are strings, so they are stored as plain arrays without pickling.
Data that carries no record (stored before it existed, or made by hand) is
checked by its number of rows only.  Every entry named ``provenance.*`` is
part of the record, not rows, so a layer above may add its own (the table
layer, say, the generating step's dataset config) without the receivers
attaching it to the samples.
"""

from __future__ import annotations

import hashlib
from typing import Mapping

import numpy as np

from nntransfer.errors import TransferError

RECORD_PREFIX = "provenance."
SPLIT_KEY = RECORD_PREFIX + "split"
ORDER_KEY = RECORD_PREFIX + "order"


def order_fingerprint(targets) -> str | None:
    """A hash of ``targets`` in the given order, or None when they are not numbers.

    Integer labels hash alike whatever their integer type (a tensor of
    ``int64`` labels and a numpy array of ``int32`` ones agree), so the two
    sides need not agree on how the labels are stored.
    """
    values = np.asarray(targets.cpu() if hasattr(targets, "cpu") else targets)
    if values.dtype.kind in "biu":
        values = values.astype("<i8")
    elif values.dtype.kind == "f":
        values = values.astype("<f8")
    else:
        return None
    digest = hashlib.sha256(repr(values.shape).encode())
    digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()[:32]


def record(split: str, targets) -> dict:
    """The entries to store with a split's transfer data (none when the targets cannot be fingerprinted)."""
    fingerprint = order_fingerprint(targets)
    if fingerprint is None:
        return {}
    return {SPLIT_KEY: np.asarray(split), ORDER_KEY: np.asarray(fingerprint)}


def receive(split: str, arrays: Mapping, targets) -> dict:
    """``arrays`` without their record, after checking it against the receiving ``split`` and its targets.

    Raises TransferError naming both sides when the rows were computed on
    another split or on other samples or another order.
    """
    rows = {name: value for name, value in arrays.items() if not name.startswith(RECORD_PREFIX)}
    if SPLIT_KEY not in arrays or ORDER_KEY not in arrays:
        return rows
    source_split, source_order = str(arrays[SPLIT_KEY]), str(arrays[ORDER_KEY])
    order = order_fingerprint(targets)
    if source_split != split or (order is not None and source_order != order):
        raise TransferError(
            f"Transfer data computed on split {source_split!r} (sample-order fingerprint {source_order}) "
            f"was handed to split {split!r} (sample-order fingerprint {order}). Rows are paired with "
            "samples by position, so they must come from the same split of a step with the same dataset config "
            "(split seed and fractions, class filter, subsets) and seed as the receiving dataset."
        )
    return rows
