"""``nntransfer worker --jobs N``: N worker processes on one recipe, and what happens when one dies.

A pool of processes (``multiprocessing.Pool``) waits forever for the result
of a child that was killed (SIGKILL, the out-of-memory killer), so the
command never ends.  Here each worker is a process of its own, forked from
the parent once it has imported torch and the recipe (so the children do not
pay those imports again; ``spawn`` where there is no fork), and the parent
waits for any of them to end.  A child that ends
without reporting its counts died: its reserved job is given back at once
(made pending again, found by the host and process id DataJoint recorded
when the child reserved it), so the others need not wait for the orphan
timeout, and when no other child is left to take it over while the recipe
still has work, a new child is started (at most N replacements in all, so
a recipe that kills every worker cannot loop forever).

:func:`work_in_processes` returns the summed counts and the number of
children that died; the command's exit code counts a dead child as a
failure (see :mod:`nntransfer.cli`).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import platform
import signal
import sys

log = logging.getLogger(__name__)

FORWARDED = (signal.SIGINT, signal.SIGTERM)
"""Signals the parent passes on to every child (each stops at its next batch boundary, see nntransfer.trainer.interrupt)."""
UNREACHABLE = 3
"""Exit code of a child that gave up on an unreachable database (not a death: it is not replaced)."""


def _child(results, recipe, schema, orphan_timeout, poll, verbose, threads, devices=None):
    """One worker process: its own connection, then train the recipe's ready steps and report the counts.

    ``devices``: the GPUs this process may see (``--devices``), set before anything starts CUDA.
    Stopped by a signal (forwarded by the parent), it reports its counts
    and ends normally; the database gone for longer than the reconnect
    bound ends it with exit code 3.
    """
    for signum in FORWARDED:  # the parent's forwarding handler came along with the fork
        signal.signal(signum, signal.SIG_DFL if signum == signal.SIGTERM else signal.default_int_handler)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)  # spawned only: forked ones have the parent's
    if devices is not None:
        from .device_groups import pin

        pin(devices)
    from . import runner, tables
    from .db import import_datajoint

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    from .errors import DatabaseUnreachable
    from .trainer.interrupt import Interrupted

    try:
        import_datajoint().conn().connect()  # a forked child must not share the parent's socket
        tables.activate(schema)
        counts = runner.work(recipe, orphan_timeout=orphan_timeout, poll=poll, devices=devices)
    except Interrupted as stop:
        counts = {**(getattr(stop, "counts", None) or {"trained": 0, "errors": 0}), "stopped": stop.signum}
    except DatabaseUnreachable as error:
        log.error("%s", error)
        sys.exit(UNREACHABLE)
    results.put(counts)


def _death(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


def work_in_processes(recipe, recipe_spec: str, schema, jobs: int, *, orphan_timeout: float, poll: float,
                      verbose: bool = False, threads: int | None = None, devices: list[str] | None = None) -> dict:
    """Run ``jobs`` worker processes on ``recipe`` (loaded from ``recipe_spec`` and inserted); wait for all.

    ``devices``: one CUDA_VISIBLE_DEVICES value per job (see
    :mod:`nntransfer.device_groups`); a replacement for a dead child gets its GPUs.
    Returns ``{"trained": n, "errors": n, "died": n}``.
    """
    from . import tables

    # fork where there is one: the children share the parent's imports (torch, the recipe)
    # instead of paying them again, which dominates short jobs
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    results = context.SimpleQueue()
    arguments = (results, recipe, schema, orphan_timeout, poll, verbose, threads)
    connection = tables.TransferredTrainedModel().connection

    groups = {}

    def start(group=None):
        connection.close()  # no socket is inherited: each child connects anew
        try:
            process = context.Process(target=_child, args=(*arguments, group), name="nntransfer-worker")
            process.start()
        finally:
            connection.connect()
        groups[process.pid] = group
        return process

    stopping, running = [], []

    def forward(signum, frame):
        """Pass Ctrl-C or SIGTERM on to every child; start no new one (a second signal is passed on too)."""
        if not stopping:
            log.warning("%s received: passed on to the %d worker processes, which stop at their next batch "
                        "boundary and give their jobs back", signal.Signals(signum).name, len(running))
        stopping.append(signum)
        for process in running:
            try:
                os.kill(process.pid, signum)
            except ProcessLookupError:
                pass

    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED}
    try:
        running.extend(start(devices[index] if devices else None) for index in range(jobs))
        died, unreachable = _wait(running, start, groups, recipe, jobs, stopping)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    totals = {"trained": 0, "errors": 0, "died": died}
    while not results.empty():
        counts = results.get()
        totals["trained"] += counts["trained"]
        totals["errors"] += counts["errors"]
    if stopping:
        from .trainer.interrupt import Interrupted

        stop = Interrupted(f"{signal.Signals(stopping[0]).name} received: the worker processes stopped", stopping[0])
        stop.counts = totals
        raise stop
    if unreachable:
        from .errors import DatabaseUnreachable

        raise DatabaseUnreachable(f"{unreachable} worker process(es) gave up on the database, which did not answer "
                                  "within the reconnect bound; start it and run the worker again (trainings resume "
                                  "from their last checkpoints).")
    return totals


def _wait(running: list, start, groups: dict, recipe, jobs: int, stopping: list) -> tuple[int, int]:
    """Wait for every child; give back a dead one's jobs and replace it while work is left; ``(died, unreachable)``."""
    from . import runner, tables

    replacements = died = unreachable = 0
    while running:
        ended = multiprocessing.connection.wait([process.sentinel for process in running])
        for process in [p for p in running if p.sentinel in ended]:
            process.join()
            running.remove(process)
            if process.exitcode == 0:
                continue
            if process.exitcode == UNREACHABLE:
                unreachable += 1
                continue
            died += 1
            given_back = tables.TransferredTrainedModel().jobs.give_back(platform.node(), process.pid)
            log.warning("worker process %d died (%s); %d job(s) it held were given back",
                        process.pid, _death(process.exitcode), given_back)
            remaining = runner.status(recipe)["total"]
            if (not running and not stopping and (remaining["pending"] or remaining["running"])
                    and replacements < jobs):
                replacements += 1
                running.append(start(groups[process.pid]))
    return died, unreachable
