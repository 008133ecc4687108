"""The transfer-step key: its fields, how history is collapsed, and how a plan row is made.

A step of a transfer chain is one training, identified by its dataset, model
and trainer (fn and hash), its seed, its ``transfer_step`` (0 for the first
training), its ``data_transfer`` flag (what it hands on: its generated data, 1,
or its model state, 0) and ``collapsed_history``, one hash of every step before
it.  The configs build these keys (:meth:`TransferExperiment.steps`), the
tables store and plan them, the analysis reads them: this module is the one
place that defines them, below all of those and without a database.
"""

import numpy as np

from nntransfer.errors import ConfigError, TransferError
from nntransfer.hashing import HASHINGS, canonical_json, digest, make_hash

CONFIG_KINDS = ("dataset", "model", "trainer")
CONFIG_FIELDS = tuple(f"{kind}_{part}" for kind in CONFIG_KINDS for part in ("fn", "hash"))
"""The key fields of the three config tables."""

HISTORY_KEY_FIELDS = CONFIG_FIELDS + ("seed", "transfer_step", "data_transfer")
"""The fields of a transfer step's key that enter the next step's history."""

STEP_KEY_FIELDS = HISTORY_KEY_FIELDS + ("collapsed_history",)
"""The full key of a step: what selects exactly one planned or trained step."""


def step_key(key: dict) -> dict:
    """The step fields of ``key`` with database types normalised (ints, the flag as 0/1)."""
    missing = [name for name in STEP_KEY_FIELDS if name not in key]
    if missing:
        raise ConfigError(f"the key {key} lacks {missing}; a transfer step is selected by {list(STEP_KEY_FIELDS)}.")
    step = {name: key[name] for name in STEP_KEY_FIELDS}
    step["seed"] = int(step["seed"])
    step["transfer_step"] = int(step["transfer_step"])
    step["data_transfer"] = int(bool(step["data_transfer"]))
    return step


def chain_keys(step_configs: list, seed: int, data_transfer: list, hashing: str = "canonical") -> list:
    """The full keys of one chain for one seed, step 0 first.

    ``step_configs`` holds per step the six config key fields
    (:data:`CONFIG_FIELDS`); ``data_transfer`` per step what it hands on;
    ``hashing`` how histories are folded (see :func:`collapse_history`).
    """
    keys = []
    history = ""
    for step, (configs, flag) in enumerate(zip(step_configs, data_transfer)):
        if keys:
            history = collapse_history(history, keys[-1], hashing)
        key = {name: configs[name] for name in CONFIG_FIELDS}
        key.update(seed=seed, transfer_step=step, data_transfer=int(bool(flag)), collapsed_history=history)
        keys.append(key)
    return keys


def successor_history(key: dict, hashing: str = "canonical") -> str:
    """The ``collapsed_history`` of every step that follows ``key``."""
    key = step_key(key)
    return collapse_history(key["collapsed_history"], key, hashing)


def collapse_history(previous_history, previous_key, hashing: str = "canonical"):
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

    ``hashing="nnfabrik"`` folds as nnfabrik's ``CollapsedHistory`` did (and
    sinzlab nntransfer's ``get_restrictions``): :func:`~nntransfer.hashing.make_hash`
    of the previous step's full key with ``data_transfer`` as 0 or 1, so the
    keys of an nnfabrik database and of its recipes stay valid.
    """
    if hashing not in HASHINGS:
        raise ConfigError(f"hashing must be one of {list(HASHINGS)}, got {hashing!r}.")
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
    if hashing == "nnfabrik":
        return make_hash({**key, "data_transfer": int(key["data_transfer"]), "collapsed_history": previous_history})
    return digest(canonical_json({"history": previous_history, "key": key}, "previous_key"))


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


def plan_row(key: dict, previous: dict | None, planned_by: str = "", hashing: str = "canonical") -> dict:
    """The plan row of step ``key`` whose previous step is ``previous`` (None at step 0).

    Checks that the chain is consistent: step numbers follow each other and
    ``collapsed_history`` folds ``previous`` in, so a hand-made key cannot
    claim a history it does not have.  The row repeats the previous step's key
    (``prev_*`` columns) so that finding a step's predecessor is one lookup.
    """
    key = step_key(key)
    row = {**key, "planned_by": planned_by[:255], "ready": 0, "prev_data_transfer": None, "prev_collapsed_history": ""}
    row.update({f"prev_{name}": "" for name in CONFIG_FIELDS})
    if previous is None:
        row["ready"] = 1
        if key["transfer_step"] != 0 or key["collapsed_history"] != "":
            raise TransferError(
                f"step {key} has no previous step, so it must be transfer_step 0 with collapsed_history ''."
            )
        return row
    previous = step_key(previous)
    if key["transfer_step"] != previous["transfer_step"] + 1:
        raise TransferError(
            f"step {key['transfer_step']} cannot follow step {previous['transfer_step']}; a chain may not skip "
            "or repeat a step."
        )
    expected = collapse_history(previous["collapsed_history"], previous, hashing)
    if key["collapsed_history"] != expected:
        raise TransferError(
            f"step {key} has collapsed_history {key['collapsed_history']!r}, but following {previous} it must be "
            f"{expected!r}; build step keys with TransferExperiment.steps() or let the recipes plan them."
        )
    row.update({f"prev_{name}": previous[name] for name in CONFIG_FIELDS})
    row.update(prev_data_transfer=previous["data_transfer"], prev_collapsed_history=previous["collapsed_history"])
    return row


def previous_from_plan_row(row: dict) -> dict | None:
    """The full key of the step before the plan row ``row`` (None at step 0)."""
    if int(row["transfer_step"]) == 0:
        return None
    previous = {name: row[f"prev_{name}"] for name in CONFIG_FIELDS}
    previous.update(
        seed=int(row["seed"]),
        transfer_step=int(row["transfer_step"]) - 1,
        data_transfer=int(row["prev_data_transfer"]),
        collapsed_history=row["prev_collapsed_history"],
    )
    return previous
