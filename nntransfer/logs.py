"""Logging of the command line: one handler, on stderr, for nntransfer's messages and DataJoint's alike.

Results and tables go to stdout, so they can be piped; every diagnostic goes
through the single handler that :func:`configure` puts on the root logger,
on stderr (and into ``--log-file`` when one is given).  DataJoint installs a
handler of its own on stdout when it is imported; :func:`adopt_datajoint`
(called by :func:`nntransfer.db.import_datajoint`) removes it once
:func:`configure` ran, so each DataJoint message is printed once, in the
same format, on stderr.

Levels by verbosity: ``-q`` shows warnings and errors only; the default
adds nntransfer's own INFO lines (which database and schema, progress per
epoch, one line per failed step); ``-v`` adds DataJoint's INFO lines;
``--debug`` shows everything.

:func:`quiet_native_type_warnings` drops DataJoint's "Native type
'integer' is used in attribute 'seed'" warnings while the library declares
its job tables: DataJoint copies the key columns of a table into its job
table with their SQL types and then warns about its own declaration.
DataJoint warns that it falls back to a connection without SSL at every
connection it makes (a worker makes one per job for its heartbeat); the
command line shows that warning once.  Notebooks are left alone: without
:func:`configure` nothing here changes DataJoint's logging.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys

FORMAT = "%(asctime)s %(levelname)s %(message)s"
DEBUG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
DATE_FORMAT = "%H:%M:%S"

_configured: dict = {}


class _Stderr(logging.StreamHandler):
    """A handler on whatever ``sys.stderr`` is when a record is written (notebooks and pytest replace it)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def levels(verbosity: int) -> tuple[int, int]:
    """``(nntransfer's level, everyone else's)`` for -q (-1), the default (0), -v (1) and --debug (2)."""
    return {
        -1: (logging.WARNING, logging.WARNING),
        0: (logging.INFO, logging.WARNING),
        1: (logging.INFO, logging.INFO),
    }.get(verbosity, (logging.DEBUG, logging.DEBUG))


def configure(verbosity: int = 0, log_file: str | None = None) -> None:
    """Send every log record through one handler on stderr (and ``log_file``), at the levels of ``verbosity``."""
    own, others = levels(verbosity)
    root = logging.getLogger()
    for handler in _configured.get("handlers", ()):
        root.removeHandler(handler)
        handler.close()
    formatter = logging.Formatter(DEBUG_FORMAT if verbosity >= 2 else FORMAT, DATE_FORMAT)
    handlers = [_Stderr()]
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(min(own, others))
    logging.getLogger("nntransfer").setLevel(own)
    for name in ("nntransfer_recipe", "py.warnings"):
        logging.getLogger(name).setLevel(own)
    _configured.update(handlers=handlers, others=others, verbosity=verbosity, log_file=log_file)
    logging.captureWarnings(True)
    if "datajoint" in sys.modules:
        adopt_datajoint()


def configured() -> dict:
    """``{"verbosity": ..., "log_file": ...}`` as :func:`configure` was last called, or {} (for worker processes)."""
    return {name: _configured[name] for name in ("verbosity", "log_file") if name in _configured}


def adopt_datajoint() -> None:
    """Route DataJoint's logger through the configured handler, once, at the configured level."""
    if not _configured:
        return
    logger = logging.getLogger("datajoint")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.setLevel(_configured["others"])
    logger.propagate = True
    if not any(isinstance(f, _OnceOnly) for f in logger.filters):
        logger.addFilter(_OnceOnly("SSL connection failed"))


class _OnceOnly(logging.Filter):
    """Lets the first record that starts with ``prefix`` through, and drops the repeats."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix
        self.seen = False

    def filter(self, record) -> bool:
        if not str(record.msg).startswith(self.prefix):
            return True
        seen, self.seen = self.seen, True
        return not seen


_NATIVE_TYPE = re.compile(r"^Native type '[a-z ]+' is used in attribute '\w+'\. Consider using a core DataJoint type")


@contextlib.contextmanager
def quiet_native_type_warnings():
    """Within the block, DataJoint's portability warning about native column types is dropped (see the module doc)."""
    logger = logging.getLogger("datajoint")

    def keep(record) -> bool:
        return not _NATIVE_TYPE.match(str(record.msg))

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
