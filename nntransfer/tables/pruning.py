"""Pruned trainings: stopped early on purpose, recorded as "pruned", never as an error.

A hyperparameter search stops a training whose trial is not promising by
raising :class:`~nntransfer.errors.TrainingPruned` from the training's ``cb``
(see :mod:`nntransfer.search`).  DataJoint would record that as a failed job,
which ``retry`` queues again and ``status`` counts as an error.  Instead the
job is set to DataJoint's ``ignore`` status with a message that starts with
:data:`PRUNED`: no populate picks it up again, ``status`` shows it as pruned,
and its checkpoints are dropped because nothing will resume it.
"""

from __future__ import annotations

import contextlib
import logging

log = logging.getLogger(__name__)

PRUNED = "pruned"
"""First word of the message of a pruned job (its status is ``ignore``)."""

PRUNED_CONDITION = f"status = 'ignore' AND LEFT(error_message, {len(PRUNED)}) = '{PRUNED}'"
"""Restricts a jobs table to the pruned jobs."""


def record_pruned(table, key: dict, reason: str) -> None:
    """Mark the job of ``key`` in ``table`` as pruned (status ``ignore``) and drop its checkpoints.

    Works whether or not the job was reserved: a populate without
    ``reserve_jobs`` has no job row yet, so one is made.
    """
    jobs = table.jobs
    job = {name: key[name] for name in jobs.primary_key}
    message = f"{PRUNED}: {reason}"[:2047]
    if jobs & job:
        jobs.update1({**job, "status": "ignore", "error_message": message})
    else:
        jobs.insert1({**job, "status": "ignore", "priority": jobs.connection._config.jobs.default_priority,
                      "error_message": message})
    table.checkpoint_store(key).clear()
    log.info("training %s pruned: %s", job, reason)


def pruned_jobs(table, restriction=None):
    """The pruned jobs of ``table`` (within ``restriction``, e.g. a list of keys)."""
    jobs = table.jobs & PRUNED_CONDITION
    return jobs if restriction is None else jobs.restrict(restriction, semantic_check=False)


@contextlib.contextmanager
def not_logged_as_error(table):
    """Within the block, DataJoint's error log lines about ``table``'s pruned training are dropped.

    DataJoint logs every make that raised as an error; a pruned training is
    recorded as pruned instead (see :func:`record_pruned`) and logged once,
    at INFO, by this module.
    """
    logger = logging.getLogger("datajoint")

    def keep(record) -> bool:
        pruned = getattr(table, "_pruned", None)
        return pruned is None or str(pruned) not in record.getMessage()

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
