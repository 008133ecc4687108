"""A training stopped by Ctrl-C or SIGTERM gives its job back; it is not recorded as failed.

DataJoint's populate records whatever ends a ``make`` as the job's error,
``KeyboardInterrupt`` and ``SystemExit`` included: an interrupted step then
shows as failed, needs a manual retry, and with ``suppress_errors`` the
worker even goes on to the next job.  While a key trains, the trained-model
tables hand DataJoint :class:`GivingBack` as the job table instead: when the
make ended because the process is being stopped (the training's own
:class:`~nntransfer.trainer.interrupt.Interrupted`, a plain
``KeyboardInterrupt``, DataJoint's ``SystemExit`` on SIGTERM), the job is
made pending again, so the next worker takes it and resumes from the
checkpoint the training wrote when it stopped.  Any other failure is
recorded as before.

:func:`not_logged` keeps DataJoint from logging the stop as an error; the
command line reports it once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import sys

from ..errors import DatabaseUnreachable
from ..trainer.interrupt import Interrupted
from .conflicts import is_conflict
from .reconnect import is_connection_error

log = logging.getLogger(__name__)


def _stopping(error) -> bool:
    return isinstance(error, (KeyboardInterrupt, SystemExit))


class GivingBack:
    """A table's job table as DataJoint's populate sees it: a stop gives the job back instead of failing it.

    So does a lost database connection (:mod:`.reconnect`): it is no failure
    of the training; nor, with ``conflicts_given_back``, a result the server
    rolled back to break a deadlock (:mod:`.conflicts`).  ``given_back`` is
    then the exception that ended the make.
    """

    def __init__(self, jobs, label: str = "", conflicts_given_back: bool = False):
        self._jobs = jobs
        self.label = label
        self.conflicts_given_back = conflicts_given_back
        self.given_back = None

    def __getattr__(self, name):
        return getattr(self._jobs, name)

    def error(self, key: dict, error_message: str, error_stack: str | None = None) -> None:
        # DataJoint calls this in the ``except`` block of the make, so the exception is the one being handled
        error = sys.exc_info()[1]
        if (_stopping(error) or is_connection_error(error) or isinstance(error, DatabaseUnreachable)
                or (self.conflicts_given_back and is_conflict(error))):
            self.given_back = error
            give_back(self._jobs, key, self.label)
            return
        self._jobs.error(key, error_message=error_message, error_stack=error_stack)


def give_back(jobs, key: dict, label: str = "") -> None:
    """Make this process's reservation of ``key`` pending again (logged; a database error is logged, not raised)."""
    job = label or f"step {key.get('transfer_step', 0)}, seed {key.get('seed')}"
    try:
        jobs.give_back(platform.node(), os.getpid())
    except Exception as error:  # the database may be why we stop; the orphan timeout hands the job on then
        log.warning("%s could not be given back (%s); another worker takes it over after the orphan timeout",
                    job, str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
        return
    log.info("%s given back: it is pending again and resumes from its last checkpoint", job)


@contextlib.contextmanager
def not_logged():
    """Within the block, DataJoint does not log a stopped training as an error."""
    logger = logging.getLogger("datajoint")

    def keep(record) -> bool:
        return not isinstance(record.msg, Interrupted) and "Interrupted" not in str(record.msg)[:200]

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
