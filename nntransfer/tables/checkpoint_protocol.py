"""nnfabrik's checkpoint callback protocol, answered from the database checkpoints.

nnfabrik's checkpointing trainers talk to their table through ``cb``::

    cb(uid=uid, epoch=epoch, model=model, state={"action": "save", "score": ..., "optimizer": ..., ...})
    cb(uid=uid, epoch=-1, model=model, state={"action": "last", ...})   # or "best"

and nnfabrik's ``TrainedModelChkptBase`` kept the checkpoints in a table.
The ``cb`` of every table-driven training here (:class:`~nntransfer.tables.trained.TrainingCallback`)
answers the same calls from its :class:`~nntransfer.tables.checkpoints.DatabaseCheckpointStore`,
so such a trainer resumes where it stopped on any worker, whichever table
trains it.  The rules are nnfabrik's:

* ``"save"`` (the default action): every ``save_every_n``-th epoch, store the
  model's state_dict (as ``"net"``) and the rest of ``state``; an object with
  a ``state_dict`` (the optimizer) is stored as its state_dict.  Then keep the
  ``keep_last_n`` newest, the ``keep_best_n`` best by ``score``
  (``maximize_score``) and the epochs in ``keep_selection``; remove the rest.
* ``"last"`` / ``"best"``: find that checkpoint; set ``state["epoch"]`` and
  ``state["score"]``; for every stored entry, call ``load_state_dict`` on the
  object ``state`` holds under that name, or put the entry into ``state``.
  With no checkpoint, ``state`` is left alone (``state.get("epoch", -1) + 1``
  is then the first epoch).

One thing more than nnfabrik: a restore also loads the stored weights into
``model`` (nnfabrik left them in ``state["net"]``, so a resumed run trained on
from fresh weights).  Checkpoints are written with ``torch.save`` and read
with ``weights_only=True``: what ``state`` holds must be tensors, numbers,
strings, lists, tuples, dicts or objects with a ``state_dict``.
"""

from __future__ import annotations

import math
import numbers

from ..trainer.checkpoints import CheckpointError, from_bytes, to_bytes

TAG = "nnfabrik"
"""Checkpoint names ``nnfabrik-<epoch>`` in the store."""

_SAVE_OPTIONS = ("score", "save_every_n", "keep_last_n", "keep_best_n", "keep_selection")


def answer(store, epoch, model, state: dict) -> None:
    """Carry out one protocol call (``state["action"]``) on ``store``; ``state`` is changed in place."""
    action = state.pop("action", "save")
    maximize = bool(state.pop("maximize_score", True))
    if action == "save":
        _save(store, epoch, model, state, maximize)
    elif action in ("last", "best"):
        _restore(store, action, model, state, maximize)
    else:
        raise CheckpointError(
            f"cb was called with state['action'] = {action!r}; nnfabrik's checkpoint protocol knows "
            "'save', 'last' and 'best'."
        )


def _entries(store) -> dict:
    return {epoch: name for tag, epoch, name in store._entries() if tag == TAG}


def _save(store, epoch, model, state, maximize) -> None:
    options = {name: state.pop(name) for name in _SAVE_OPTIONS if name in state}
    if not isinstance(epoch, numbers.Integral) or epoch < 0:
        raise CheckpointError(f"cb(action='save') needs the epoch as an int >= 0, got {epoch!r}.")
    every = int(options.get("save_every_n", 1))
    if every > 1 and epoch % every:
        return
    entries = _entries(store)
    scores = {}
    if entries:
        scores = dict(_read(store, entries[max(entries)]).get("scores", {}))
    scores = {e: s for e, s in scores.items() if e in entries}
    scores[int(epoch)] = _number(options.get("score", 0.0))
    payload = {name: _storable(name, value) for name, value in state.items()}
    if model is not None:
        payload["net"] = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    payload.update(epoch=int(epoch), score=scores[int(epoch)], scores=scores)
    name = f"{TAG}-{int(epoch):06d}"
    store._put(name, to_bytes(payload))
    entries[int(epoch)] = name
    last_n = int(options.get("keep_last_n", 1))
    keep = set(sorted(entries)[-last_n:]) if last_n > 0 else set()
    ranked = sorted(entries, key=lambda e: _rank(scores.get(e), maximize))
    keep.update(ranked[: max(int(options.get("keep_best_n", 1)), 0)])
    keep.update(e for e in entries if e in set(options.get("keep_selection", ())))
    for old_epoch, old_name in entries.items():
        if old_epoch not in keep:
            store._delete(old_name)


def _restore(store, action, model, state, maximize) -> None:
    entries = _entries(store)
    if not entries:
        return
    if action == "last":
        chosen = max(entries)
    else:
        scores = _read(store, entries[max(entries)]).get("scores", {})
        chosen = min(entries, key=lambda e: _rank(scores.get(e), maximize))
    loaded = _read(store, entries[chosen])
    state["epoch"] = loaded.pop("epoch")
    state["score"] = loaded.pop("score")
    loaded.pop("scores", None)
    if model is not None and "net" in loaded:
        model.load_state_dict(loaded["net"])
    for name, value in loaded.items():
        if hasattr(state.get(name), "load_state_dict"):
            state[name].load_state_dict(value)
        else:
            state[name] = value


def _read(store, name) -> dict:
    try:
        return from_bytes(store._get(name))
    except Exception as error:
        raise CheckpointError(f"checkpoint {name!r} cannot be read: {error}") from error


def _rank(score, maximize) -> float:
    """Sort key: best first; a missing or NaN score last."""
    if score is None or math.isnan(score):
        return math.inf
    return -score if maximize else score


def _number(value) -> float:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CheckpointError(f"cb(action='save'): state['score'] must be a number, got {value!r}.")
    return float(value)


def _storable(name, value):
    if hasattr(value, "state_dict") and callable(value.state_dict):
        return value.state_dict()
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy scalar
        return value.item()
    if hasattr(value, "detach"):
        return value.detach().cpu()
    if isinstance(value, (list, tuple)):
        return type(value)(_storable(name, item) for item in value)
    if isinstance(value, dict):
        return {key: _storable(name, item) for key, item in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CheckpointError(
        f"cb(action='save'): state[{name!r}] is a {type(value).__name__}, which a checkpoint cannot hold "
        "safely (checkpoints are read without unpickling). Pass tensors, numbers, strings, lists, dicts "
        "or an object with a state_dict."
    )
