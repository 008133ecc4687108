"""The command line of a search recipe (a module that defines ``search = Search(...)``).

``nntransfer search RECIPE --trials N`` runs N trials in this process (or
``--jobs`` processes); ``nntransfer worker RECIPE`` runs trials until the
study's budget is used, as a cluster job; ``status`` prints the study (best
value and values, trials per state); ``plot`` writes Optuna's optimisation
history and parameter importances.  :mod:`nntransfer.cli` dispatches here
when a recipe defines a search; it passes the function that imports a
recipe, so that worker processes load the same module.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def _trial_process(import_recipe, recipe, schema, trials, timeout, orphan_timeout, poll, threads, verbose):
    """One search worker process (started by spawn for --jobs)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    from .. import tables
    from .engine import optimize

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    tables.activate(schema)
    search = import_recipe(recipe).search
    return optimize(search, trials=trials, timeout=timeout, orphan_timeout=orphan_timeout, poll=poll)


def _child(results, *call):
    """A process of ``search --jobs N``: its trials' counts, or what stopped it, go to ``results``."""
    from ..errors import NNTransferError
    from ..trainer.interrupt import Interrupted

    try:
        results.put(("counts", _trial_process(*call)))
    except Interrupted as stop:
        results.put(("stopped", stop.signum))
    except NNTransferError as error:  # a bad search stops every process the same way: the parent reports it once
        results.put(("error", error))


def _in_processes(calls) -> list:
    """Run each call of :func:`_trial_process` in a process of its own; return their counts.

    Ctrl-C and SIGTERM are passed on to every process: each stops its trial
    at the next batch boundary, gives its job back and queues the trial
    again; then :class:`~nntransfer.trainer.interrupt.Interrupted` ends this
    call, as it ends a single process.  A process that died (killed, out of
    memory) is reported; its trial is queued again when its heartbeat
    expires.
    """
    import multiprocessing
    import signal

    from ..errors import NNTransferError
    from ..trainer.interrupt import Interrupted

    context = multiprocessing.get_context("spawn")
    results = context.SimpleQueue()
    processes = [context.Process(target=_child, args=(results, *call), name="nntransfer-search") for call in calls]
    stopping = []

    def forward(signum, frame):
        if not stopping:
            log.warning("%s received: passed on to the %d search processes, which stop their trials at the next "
                        "batch boundary and queue them again", signal.Signals(signum).name, len(processes))
        stopping.append(signum)
        for process in processes:
            if process.pid is not None and process.exitcode is None:
                try:
                    os.kill(process.pid, signum)
                except ProcessLookupError:
                    pass

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    reports = []
    while not results.empty():
        reports.append(results.get())
    if stopping or any(kind == "stopped" for kind, _ in reports):
        signum = stopping[0] if stopping else next(value for kind, value in reports if kind == "stopped")
        raise Interrupted(f"{signal.Signals(signum).name} received: the search processes stopped", signum)
    errors = [value for kind, value in reports if kind == "error"]
    if errors:
        raise errors[0]
    died = [process for process in processes if process.exitcode != 0]
    if died:
        raise NNTransferError(f"{len(died)} of {len(processes)} search processes died (exit codes "
                              f"{', '.join(str(p.exitcode) for p in died)}); their trials are queued again when "
                              "their heartbeats expire. Run the search again to finish the budget.")
    return [value for kind, value in reports if kind == "counts"]


def _shares(trials: int | None, jobs: int) -> list:
    """Trials per process: ``trials`` shared out (None: each runs until the budget is used)."""
    if trials is None:
        return [None] * jobs
    shares = [trials // jobs + (index < trials % jobs) for index in range(jobs)]
    return [share for share in shares if share]


def run_trials(args, search, import_recipe) -> int:
    """``search`` and ``worker`` on a search recipe: run trials here; exit 1 when a trial failed."""
    from .. import tables
    from .engine import check_run_budget
    from .report import format_status, status

    check_run_budget(getattr(args, "trials", None), getattr(args, "timeout", None))
    tables.activate(args.schema)
    jobs = getattr(args, "jobs", None) or 1  # worker --jobs defaults to None: one process
    threads = getattr(args, "threads", None)
    if threads is None and jobs > 1:
        threads = max(1, (os.cpu_count() or 1) // jobs)
    options = (getattr(args, "timeout", None), getattr(args, "orphan_timeout", 300.0), getattr(args, "poll", 1.0),
               threads, args.verbose)
    shares = _shares(getattr(args, "trials", None), jobs)
    calls = [(import_recipe, args.recipe, args.schema, share, *options) for share in shares]
    results = [_trial_process(*calls[0])] if len(calls) == 1 else _in_processes(calls)
    total = {name: sum(result[name] for result in results) for name in results[0]}
    print(f"ran {total['trials']} trials: {total['complete']} complete ({total['duplicates']} answered from stored "
          f"results), {total['pruned']} pruned, {total['failed']} failed")
    print(format_status(status(search)))
    return 1 if total["failed"] else 0


def show_status(args, search, import_recipe=None) -> int:
    from .. import tables
    from .report import format_status, status

    tables.activate(args.schema)
    result = status(search)
    if not any(result["counts"].values()):
        print(f"search {search.name!r} has no trials in this schema; start it with `nntransfer search` or "
              "`nntransfer worker`, or pass the --schema it runs in.", file=sys.stderr)
        return 1
    print(format_status(result))
    return 0


def plot(args, search, import_recipe=None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from .. import tables
    from .report import plot as plot_search
    from .report import results

    tables.activate(args.schema)
    frame = results(search)
    shown = frame.drop(columns=[c for c in frame.columns if c.endswith(("_fn", "_hash", "_history"))])
    print(shown.to_string(index=False))
    out = Path(args.out)
    for line in plot_search(search, out.with_name(f"{out.stem}-history{out.suffix}"),
                            out.with_name(f"{out.stem}-importance{out.suffix}")):
        print(f"plot: {line}")
    return 0


def add_search_command(commands, recipe_command, run, positive_int, seconds) -> None:
    """The ``search`` subcommand (``recipe_command`` makes a recipe subparser as the other commands have)."""
    search = recipe_command(commands, "search", "run trials of a search recipe here", run)
    search.add_argument("--trials", type=positive_int, default=None,
                        help="trials to run here (default: until the study's budget is used)")
    search.add_argument("--timeout", type=seconds, default=None, help="seconds after which no new trial starts")
    search.add_argument("--jobs", type=positive_int, default=1, help="processes running trials (default 1)")
    search.add_argument("--threads", type=positive_int, default=None, help="torch threads per process")
    search.add_argument("--orphan-timeout", type=seconds, default=300.0,
                        help="seconds of silence after which another process takes a trial over (default 300)")
    search.add_argument("--poll", type=seconds, default=1.0, help="seconds between looks while waiting (default 1)")
