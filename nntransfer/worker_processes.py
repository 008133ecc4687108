"""``nntransfer worker --jobs N``: N worker processes on one recipe, and what happens when one dies.

A pool of processes (``multiprocessing.Pool``) waits forever for the result
of a child that was killed (SIGKILL, the out-of-memory killer), so the
command never ends.  Here each worker is a process of its own, started with
``spawn``, and the parent waits for any of them to end.  A child that ends
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
import platform
import signal

log = logging.getLogger(__name__)


def _child(results, recipe_spec, schema, orphan_timeout, poll, verbose, threads):
    """One worker process: activate, train the recipe's ready steps, report the counts."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    from . import runner, tables

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    tables.activate(schema)
    counts = runner.work(runner.load_recipe(recipe_spec), orphan_timeout=orphan_timeout, poll=poll)
    results.put(counts)


def _death(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


def work_in_processes(recipe, recipe_spec: str, schema, jobs: int, *, orphan_timeout: float, poll: float,
                      verbose: bool = False, threads: int | None = None) -> dict:
    """Run ``jobs`` worker processes on ``recipe`` (loaded from ``recipe_spec`` and inserted); wait for all.

    Returns ``{"trained": n, "errors": n, "died": n}``.
    """
    from . import runner, tables

    context = multiprocessing.get_context("spawn")
    results = context.SimpleQueue()
    arguments = (results, recipe_spec, schema, orphan_timeout, poll, verbose, threads)

    def start():
        process = context.Process(target=_child, args=arguments, name="nntransfer-worker")
        process.start()
        return process

    running = [start() for _ in range(jobs)]
    replacements = died = 0
    while running:
        ended = multiprocessing.connection.wait([process.sentinel for process in running])
        for process in [p for p in running if p.sentinel in ended]:
            process.join()
            running.remove(process)
            if process.exitcode == 0:
                continue
            died += 1
            given_back = tables.TransferredTrainedModel().jobs.give_back(platform.node(), process.pid)
            log.warning("worker process %d died (%s); %d job(s) it held were given back",
                        process.pid, _death(process.exitcode), given_back)
            remaining = runner.status(recipe)["total"]
            if not running and (remaining["pending"] or remaining["running"]) and replacements < jobs:
                replacements += 1
                running.append(start())
    totals = {"trained": 0, "errors": 0, "died": died}
    while not results.empty():
        counts = results.get()
        totals["trained"] += counts["trained"]
        totals["errors"] += counts["errors"]
    return totals
