"""What a worker says while it works: which step trains, which failed, how many are done.

A step key is 400 characters of hashes; people think in recipes, chains,
steps and seeds.  :class:`StepLabels` names each step of a loaded recipe so
(``digits_kd: chain 'kd' transfer step 1, seed 3``, transfer steps counted from 0 as ``status`` does), for the progress display of
each training and for :func:`report_failures`, which logs one line per
failed step with the first line of its error (the traceback stays in the job
table: ``nntransfer errors RECIPE``).  :func:`report_done` logs the overall
``k of n steps done`` line after each step a worker stores.
"""

from __future__ import annotations

import contextlib
import logging

from .errors import JobTakenOver
from .hashing import canonical_json
from .steps import step_key

log = logging.getLogger("nntransfer.worker")


class StepLabels:
    """``labels(key)``: what to call a step of ``recipe`` (a :class:`~nntransfer.runner.Recipe`) in messages."""

    def __init__(self, recipe):
        self.recipe = recipe.name
        self._labels = {}
        for chain_name, chain in recipe.chains.items():
            for key in chain.all_steps():
                identity = canonical_json(step_key(key))
                label = f"chain {chain_name!r} transfer step {int(key['transfer_step'])}, seed {int(key['seed'])}"
                self._labels.setdefault(identity, label)  # a step shared by chains is named by the first

    def __call__(self, key: dict) -> str:
        try:
            label = self._labels.get(canonical_json(step_key(key)))
        except Exception:  # not a step key (a plain TrainedModel key)
            label = None
        if label is None:
            label = f"transfer step {key.get('transfer_step', 0)}, seed {key.get('seed')}"
        return f"{self.recipe}: {label}"


def first_line(error) -> str:
    """The first line of an error (an exception or DataJoint's ``"Type: message"`` text)."""
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    else:
        text = str(error)
    lines = text.strip().splitlines()
    return lines[0][:300] if lines else "unknown error"


def report_failures(error_list, labels) -> int:
    """Log one line per failed step of ``error_list`` (``(key, error)`` pairs); return how many failed.

    A job taken over by another worker is no failure (logged by the table
    layer when it happens) and is not counted.
    """
    failed = 0
    for key, error in error_list:
        if isinstance(error, JobTakenOver) or (isinstance(error, str) and error.startswith("JobTakenOver")):
            continue
        failed += 1
        log.error("%s failed: %s", labels(key), first_line(error))
    return failed


def report_done(recipe_name: str, counts) -> None:
    """Log ``<recipe>: k of n steps done`` from a status's counts."""
    total, done = sum(counts["total"].values()), counts["total"]["done"]
    log.info("%s: %d of %d steps done", recipe_name, done, total)


@contextlib.contextmanager
def failures_reported_here():
    """Within the block DataJoint does not log a failed make itself: :func:`report_failures` says it once, by name."""
    logger = logging.getLogger("datajoint")

    def keep(record) -> bool:
        return not isinstance(record.msg, BaseException)

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
