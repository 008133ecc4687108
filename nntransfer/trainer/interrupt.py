"""Stopping a training cleanly on Ctrl-C or SIGTERM.

Python's default Ctrl-C raises ``KeyboardInterrupt`` wherever the main
thread happens to be, and SIGTERM (what SLURM sends at a time limit) kills
the process outright.  Either way the training since its last checkpoint is
lost, and a reserved job is left behind.  While :func:`handling_signals` is
active instead:

* the **first** SIGINT or SIGTERM only sets a flag (:func:`requested`); the
  loop sees it at the next batch boundary, lets the modules write a
  checkpoint (the ``interrupt`` hook) and raises :class:`Interrupted`, and
  the table layer gives the job back as pending, so the next worker resumes
  it from that checkpoint;
* a **second** signal raises :class:`Interrupted` at once, wherever the
  main thread is; the job is still given back, and the next attempt resumes
  from the last checkpoint written before.

A repeat that comes within :data:`REPEAT_WINDOW_S` of the first signal counts
as the same request: a terminal delivers Ctrl-C to every process of the
foreground group, and ``nntransfer worker --jobs N`` forwards it to its
children as well, so a child may receive one keypress twice.

:class:`Interrupted` derives from ``KeyboardInterrupt``: code that catches
``Exception`` (a user's trainer, a retry loop) does not swallow it, and in a
notebook it ends the cell as an interrupt does.  Its ``exit_code`` is what
the command line exits with (128 + the signal number, 130 for Ctrl-C and 143
for SIGTERM).

This module is a leaf: the loop, the training callback of the table layer
and the command line all use it, and it imports nothing of theirs.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time

log = logging.getLogger("nntransfer")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
REPEAT_WINDOW_S = 1.0
"""A second signal within this many seconds of the first is the same request (see the module doc)."""


class Interrupted(KeyboardInterrupt):
    """A training or a worker stopped because of SIGINT or SIGTERM; the job it held was given back."""

    def __init__(self, message: str = "", signum: int | None = None):
        super().__init__(message)
        self.signum = signum if signum is not None else _state["signum"]

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum or signal.SIGINT)

    def __str__(self) -> str:
        return self.args[0] if self.args and self.args[0] else "interrupted"


_state = {"signum": None, "at": 0.0, "depth": 0}


def requested() -> bool:
    """Whether a stop was asked for (a first signal arrived) since the outermost handling began."""
    return _state["signum"] is not None


def signal_name() -> str:
    """The name of the signal that asked for the stop ("SIGINT", "SIGTERM"), or "" when none did."""
    signum = _state["signum"]
    return signal.Signals(signum).name if signum is not None else ""


def request(signum: int = signal.SIGINT) -> None:
    """Ask for a stop as a first signal does (the notebook's and the tests' way in without a signal)."""
    if _state["signum"] is None:
        _state["signum"] = int(signum)
        _state["at"] = time.monotonic()


def raise_if_requested(what: str = "") -> None:
    """Raise :class:`Interrupted` when a stop was asked for (before starting anything new)."""
    if requested():
        raise Interrupted(f"{signal_name()} received{': ' + what if what else ''}")


def _handle(signum, frame) -> None:
    if _state["signum"] is None:
        request(signum)
        log.warning(
            "%s received: stopping at the next batch boundary after a checkpoint, and giving the job back "
            "(send it again to stop at once).", signal.Signals(signum).name,
        )
        return
    if time.monotonic() - _state["at"] < REPEAT_WINDOW_S:
        return  # the same request delivered twice (terminal and parent), see the module doc
    raise Interrupted(f"{signal.Signals(signum).name} received a second time: stopped at once", signum)


@contextlib.contextmanager
def handling_signals():
    """Within the block, SIGINT and SIGTERM ask for a clean stop (see the module doc).

    Re-entrant: every entry installs the handlers again (DataJoint's populate
    puts its own SIGTERM handler in between) and every exit restores what was
    there; the request is forgotten when the outermost block ends, so the next
    ``populate`` in a notebook starts afresh.  Outside the main thread it does
    nothing (signals are delivered to the main thread only).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    for signum in SIGNALS:
        signal.signal(signum, _handle)
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if _state["depth"] == 0:
            reset()


def reset() -> None:
    """Forget a stop request (the outermost :func:`handling_signals` does it when it ends)."""
    _state["signum"] = None
    _state["at"] = 0.0
