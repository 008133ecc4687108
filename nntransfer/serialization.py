"""Bytes in and out of the object store: state_dicts, transfer data, outputs.

Artifacts are stored as bytes so that any DataJoint store (a local or shared
folder, S3) holds them the same way on every database backend.  Formats are
chosen so that loading never runs code: ``torch.load(weights_only=True)`` for
tensors and ``numpy.load(allow_pickle=False)`` for arrays.
"""

from __future__ import annotations

import base64
import io
import math
import numbers
from typing import Any

import numpy as np

from .errors import TransferError
from .hashing import FLOAT_TAG, ITEMS_TAG, from_jsonable, to_jsonable


def state_dict_to_bytes(state_dict: dict) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({name: tensor.detach().cpu() for name, tensor in state_dict.items()}, buffer)
    return buffer.getvalue()


def state_dict_from_bytes(data: bytes) -> dict:
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def transfer_data_to_bytes(transfer_data: dict) -> bytes:
    """Write ``{split: {name: array}}`` (or a flat ``{name: array}``) as one .npz file."""
    arrays = {}
    for split, content in transfer_data.items():
        if isinstance(content, dict):
            for name, array in content.items():
                arrays[f"{split}/{name}"] = np.asarray(array)
        else:
            arrays[split] = np.asarray(content)
    for key, array in arrays.items():
        # numpy would pickle it, and loading never unpickles: refuse it before it is stored
        if array.dtype.hasobject:
            raise TransferError(
                f"transfer_data {key!r} is an array of Python objects (ragged rows or mixed values), "
                "which cannot be stored safely; hand on numeric arrays with one row per sample."
            )
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def transfer_data_from_bytes(data: bytes) -> dict:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        result: dict[str, Any] = {}
        for key in archive.files:
            split, _, name = key.partition("/")
            if name:
                result.setdefault(split, {})[name] = archive[key]
            else:
                result[split] = archive[key]
    return result


TUPLE_TAG = "__tuple__"
"""Key of the tagged object that stands for a tuple in a stored output."""

ARRAY_TAG = "__ndarray__"
"""Key of the tagged object that stands for a numpy array: base64 of its ``.npy`` bytes."""

_OUTPUT_TAGS = (FLOAT_TAG, ITEMS_TAG, TUPLE_TAG, ARRAY_TAG)


def _encode(value: Any) -> Any:
    if hasattr(value, "detach"):  # torch tensor: a list, as before arrays were kept
        value = value.detach().cpu().numpy().tolist()
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:  # np.save would pickle it; its items are stored instead
            return [_encode(item) for item in value.tolist()]
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return {ARRAY_TAG: base64.b64encode(buffer.getvalue()).decode("ascii")}
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return to_jsonable(value)
    # subclasses (IntEnum, str enums, ...) as the plain value they hold
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return to_jsonable(float(value))
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, tuple):
        return {TUPLE_TAG: [_encode(item) for item in value]}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        if all(type(key) is str and key not in _OUTPUT_TAGS for key in value):
            return {key: _encode(item) for key, item in value.items()}
        return {ITEMS_TAG: [[_encode(key), _encode(item)] for key, item in value.items()]}
    return repr(value)


def _decode(stored: Any) -> Any:
    if type(stored) is list:
        return [_decode(item) for item in stored]
    if type(stored) is not dict:
        return stored
    if len(stored) == 1:
        tag, content = next(iter(stored.items()))
        if tag == TUPLE_TAG and type(content) is list:
            return tuple(_decode(item) for item in content)
        if tag == ARRAY_TAG and type(content) is str:
            return np.load(io.BytesIO(base64.b64decode(content)), allow_pickle=False)
        if tag == ITEMS_TAG and type(content) is list:
            return {_hashable(_decode(key)): _decode(item) for key, item in content}
        if tag == FLOAT_TAG:
            return from_jsonable(stored)
    return {key: _decode(item) for key, item in stored.items()}


def _hashable(key: Any) -> Any:
    try:
        hash(key)
    except TypeError:
        return repr(key)
    return key


def output_to_json(output: Any) -> Any:
    """Make a trainer's output storable in a JSON column, so that it comes back as it was given.

    nnfabrik's trainers return tuples (``(accuracies, epochs)``), lists,
    numpy arrays, nested dicts and scalars, and nnfabrik kept them as
    DataJoint blobs.  Here what is JSON stays plain JSON (readable with SQL);
    the rest is written as tagged objects that :func:`output_from_json` turns
    back: a tuple as ``{"__tuple__": [...]}``, a numpy array as
    ``{"__ndarray__": base64 of its .npy bytes}`` (written and read without
    pickle; arrays of Python objects are stored as lists), a dict with a
    non-string key as ``{"__items__": [[key, value], ...]}``, NaN and
    infinities as ``{"__float__": "nan"}``.  Numpy scalars become Python
    numbers, tensors lists, and anything else its ``repr``, so a result never
    fails to insert because of a stray object in ``output``.
    """
    return _encode(output)


def output_from_json(stored: Any) -> Any:
    """The output as the trainer returned it (see :func:`output_to_json`)."""
    return _decode(stored)


def score_to_float(score: Any) -> float | None:
    """The trainer's score as a float for the ``score`` column, or None.

    Trainers often return a numpy scalar (``np.float32`` from a mean) or a
    0-d tensor rather than a Python float; these are numbers too and must not
    be stored as NULL.  None is returned for what is not one finite number
    (NaN, inf, None, a list), since the column holds finite scores only.
    """
    if isinstance(score, bool) or score is None:
        return None
    if hasattr(score, "detach"):  # torch tensor
        score = score.detach().cpu().numpy()
    if isinstance(score, np.ndarray):
        if score.ndim != 0:
            return None
        score = score.item()
    if not isinstance(score, numbers.Real) or isinstance(score, (bool, np.bool_)):
        return None
    value = float(score)
    return value if math.isfinite(value) else None
