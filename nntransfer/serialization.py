"""Bytes in and out of the object store: state_dicts, transfer data, outputs.

Artifacts are stored as bytes so that any DataJoint store (a local or shared
folder, S3) holds them the same way on every database backend.  Formats are
chosen so that loading never runs code: ``torch.load(weights_only=True)`` for
tensors and ``numpy.load(allow_pickle=False)`` for arrays.
"""

from __future__ import annotations

import io
import math
import numbers
from typing import Any

import numpy as np

from .errors import TransferError
from .hashing import from_jsonable, to_jsonable


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


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if value is None or type(value) in (bool, int, float, str):
        return value
    # subclasses (IntEnum, str enums, ...) as the plain value they hold
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    return repr(value)


def output_to_json(output: Any) -> Any:
    """Make a trainer's output storable in a JSON column.

    Arrays and tensors become lists, numpy scalars become numbers, NaN/inf are
    tagged (JSON has no words for them; :func:`output_from_json` restores
    them) and anything else is stored as its ``repr`` so a result never fails
    to insert because of a stray object in ``output``.
    """
    return to_jsonable(_plain(output), path="output")


def output_from_json(stored: Any) -> Any:
    return from_jsonable(stored)


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
