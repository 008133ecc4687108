"""The ``nntransfer`` command.

    nntransfer db start|stop|status|url    manage the embedded PostgreSQL server
    nntransfer demo                        train the digits demo and print the results
    nntransfer run RECIPE                  insert a recipe's experiments and train every step in order
    nntransfer worker RECIPE [--jobs N]    train the recipe's ready steps with reserved jobs until none is left
                      [--devices 0,1|auto] one worker process per GPU (or the GPUs shared among --jobs)
    nntransfer status RECIPE [--watch]     done / running / pending / blocked / error per transfer step,
                                           and each running step's epoch, objective, host and heartbeat
    nntransfer errors RECIPE               the failed steps with their error and the end of their traceback
    nntransfer results RECIPE              the results: one row per done step
    nntransfer retry RECIPE                queue the recipe's failed steps again
    nntransfer plot RECIPE [--out FILE]    print a recipe's results per chain and step, draw them
    nntransfer report RECIPE [--out FILE]  write the recipe's report: one HTML file that works offline
    nntransfer ui RECIPE [--port N]        serve the report live from the database on 127.0.0.1

    nntransfer search RECIPE [--trials N]  run trials of a search recipe here
    nntransfer gc [--dry-run]              remove artifact files and checkpoints that no row refers to
    nntransfer import-nnfabrik --from mysql://user@host/old_schema --to new_schema --store-location DIR
                                           copy an nnfabrik schema (DataJoint 0.12-0.14) into nntransfer

status, errors and results print a table, or JSON or CSV with --format.  Every
command takes -v/-q/--debug/--log-file/--home/--schema before or after its
name; exit codes: 0 ok, 1 failed, 2 usage, 3 database server not running,
130/143 stopped by Ctrl-C/SIGTERM (see :mod:`nntransfer.cli_common`).

RECIPE is a module name or a .py file that defines ``experiments``
(see :mod:`nntransfer.runner`) or a ``search`` (see :mod:`nntransfer.search`):
on a search recipe ``run`` and ``worker`` run trials until the study's budget
is used, ``status`` shows the study and ``plot`` draws Optuna's figures.
"""

from __future__ import annotations

import argparse
import sys

from .cli_common import add_common_options, apply_common_options, report_error, report_stop
from .errors import NNTransferError
from .settings import load_settings


def _db(args) -> int:
    from .db import embedded

    settings = load_settings()
    if settings.mode != "embedded":
        print(
            "DataJoint is configured for a server (DJ_HOST or datajoint.json); "
            "`nntransfer db` manages only the embedded server. Set NNTRANSFER_DB=embedded to use it."
        )
        return 1
    if args.action == "start":
        info = embedded.start(settings.pgdata)
        print(f"embedded PostgreSQL running (pid {info.pid}), data in {info.pgdata}")
    elif args.action == "stop":
        stopped = embedded.stop(settings.pgdata)
        print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    elif args.action == "status":
        info = embedded.status(settings.pgdata)
        if info.running:
            print(f"running (pid {info.pid}), socket in {info.socket_dir}, data in {info.pgdata}")
        else:
            print(f"not running; data folder {info.pgdata}")
            return 3
    elif args.action == "url":
        info = embedded.status(settings.pgdata)
        if not info.running:
            print("not running; start it with `nntransfer db start`", file=sys.stderr)
            return 3
        print(info.url)
    return 0


def _set_threads(threads: int | None) -> None:
    """Torch's intra-op threads for this process (None keeps torch's default).

    Small models train faster on one thread, and several workers on one
    machine must not each claim every core.
    """
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _demo(args) -> int:
    from .demo import main as demo_main

    _set_threads(args.threads)
    return demo_main(schema=args.schema, plot=args.plot)


def _activate_recipe(args, must_exist: bool = False):
    from . import runner, tables

    tables.activate(args.schema, must_exist=must_exist)
    return runner, runner.load_recipe(args.recipe)


def _search_action(args, action: str, required: bool = False):
    """Run ``action`` of :mod:`nntransfer.search.commands` if the recipe declares a ``search``; None otherwise.

    A recipe file that does not exist is left to the command (``status``
    reads the database without it) unless ``required``.
    """
    from pathlib import Path

    from . import runner

    if not required and args.recipe.endswith(".py") and not Path(args.recipe).is_file():
        return None
    search = getattr(runner.import_recipe(args.recipe), "search", None)
    if search is None:
        return None
    from .search import commands

    return getattr(commands, action)(args, search, runner.import_recipe)


def _importable(spec: str) -> bool:
    """Whether ``spec`` names a recipe file or module that exists (without importing it)."""
    import importlib.util
    from pathlib import Path

    if spec.endswith(".py"):
        return Path(spec).is_file()
    try:
        return importlib.util.find_spec(spec) is not None
    except (ImportError, ValueError):
        return False


def _search(args) -> int:
    code = _search_action(args, "run_trials", required=True)
    if code is None:
        from .errors import ConfigError

        raise ConfigError(f"recipe {args.recipe!r} declares no `search`; define search = nntransfer.search.Search(...) "
                          "in it, or use `nntransfer run` for a recipe of fixed experiments.")
    return code


def _run(args) -> int:
    code = _search_action(args, "run_trials")
    if code is not None:
        return code
    _set_threads(args.threads)
    runner, recipe = _activate_recipe(args)
    result = runner.run(recipe)  # each failed step is logged once
    print(f"trained {result['success_count']} steps")
    print(runner.format_status(runner.status(recipe)))
    return 1 if result["error_list"] else 0


def _worker(args) -> int:
    import os

    code = _search_action(args, "run_trials")
    if code is not None:
        return code
    if args.reconnect_timeout is not None:
        from .tables.reconnect import set_reconnect_timeout

        set_reconnect_timeout(args.reconnect_timeout)
    jobs, groups = args.jobs or 1, None
    if args.devices is not None:  # GPUs shared out among the jobs, one per job by default
        from .device_groups import parse_devices, pin, share_devices

        devices = parse_devices(args.devices)
        jobs = args.jobs or len(devices)
        groups = share_devices(devices, jobs)
        if jobs == 1:
            pin(groups[0])  # before anything starts CUDA in this process
    threads = args.threads
    if threads is None and jobs > 1:
        threads = max(1, (os.cpu_count() or 1) // jobs)
    runner, recipe = _activate_recipe(args)
    runner.insert(recipe)
    if jobs == 1:
        _set_threads(threads)
        result = {**runner.work(recipe, orphan_timeout=args.orphan_timeout, poll=args.poll,
                                devices=groups[0] if groups else None), "died": 0}
    else:
        from .worker_processes import work_in_processes

        result = work_in_processes(recipe, args.recipe, args.schema, jobs, orphan_timeout=args.orphan_timeout,
                                   poll=args.poll, verbose=args.verbose, threads=threads, devices=groups)
    print(f"trained {result['trained']} steps, {result['errors']} errors")
    if result["died"]:
        print(f"{result['died']} worker process(es) died; the jobs they held were given back", file=sys.stderr)
    # like `run`: a job array sees failed steps (and dead workers) in the exit code
    return 1 if result["errors"] or result["died"] else 0


def _stored_recipe(args):
    """Activate the schema and name the recipe without importing it: its steps are stored."""
    from . import runner, tables

    tables.activate(args.schema, must_exist=True)
    return runner, runner.recipe_name(args.recipe)


def _gc(args) -> int:
    from . import tables
    from .tables.orphans import collect
    from .tables.trained import artifact_store

    tables.activate(args.schema)
    found = collect([tables.TrainedModel(), tables.TransferredTrainedModel()], artifact_store(), grace=args.grace,
                    remove=not args.dry_run)
    print(found.describe())
    return 0


def _status(args) -> int:
    from .cli_reports import status

    def search_status():
        # no stored steps: a search recipe keeps its state in its study, so ask the recipe itself
        return _search_action(args, "show_status") if _importable(args.recipe) else None

    return status(args, without_steps=search_status)


def _retry(args) -> int:
    runner, name = _stored_recipe(args)
    print(f"queued {runner.retry(name)} failed steps again")
    return 0


def _plot(args) -> int:
    code = _search_action(args, "plot")
    if code is not None:
        return code
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .analysis.report import plot_recipe, recipe_results, summary_table

    runner, recipe = _activate_recipe(args, must_exist=True)
    from .tables import TransferredTrainedModel

    if not any(runner.status(recipe)["total"].values()):
        from .cli_reports import _no_steps

        return _no_steps(recipe.name)
    results = recipe_results(recipe, TransferredTrainedModel())
    print(summary_table(results))
    fig, axes = plt.subplots(1, 2, figsize=(15, 5))
    band = None if args.band == "none" else args.band
    plot_recipe(results, axes, metric=args.metric, earlier=args.earlier, by=args.by, band=band, final=args.final)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    plt.close(fig)
    print(f"plot: {args.out}")
    return 0


def _reported_recipe(args):
    """``(recipe, table, name)`` that ``report`` and ``ui`` show, read from the database (importing the recipe would
    import torch, see :mod:`nntransfer.analysis.stored_recipe`); the recipe is None when it has no steps there.

    A recipe inserted by an nntransfer that kept no chains is imported instead; its next insert records them.
    """
    from .analysis.stored_recipe import stored_recipe
    from .cli_reports import _open

    runner, name, table = _open(args)
    if not any(runner.status(name, table)["total"].values()):
        return None, table, name
    recipe = stored_recipe(table, name)
    if recipe is None:
        print(f"recipe {name!r} was inserted by an earlier nntransfer that kept no chains, so it is imported; "
              "its next insert (`nntransfer run` or `nntransfer worker`) records them.", file=sys.stderr)
        recipe = runner.load_recipe(args.recipe)
    return recipe, table, name


def _report(args) -> int:
    from .cli_reports import _no_steps
    from .web.page import render
    from .web.payload import recipe_payload

    recipe, table, name = _reported_recipe(args)
    if recipe is None:
        return _no_steps(name)
    html = render(recipe_payload(recipe, table))
    with open(args.out, "w", encoding="utf-8") as file:
        file.write(html)
    print(f"report: {args.out} (one file, works offline)")
    return 0


def _ui(args) -> int:
    from .cli_reports import _no_steps
    from .web.server import Dashboard

    recipe, table, name = _reported_recipe(args)
    if recipe is None:
        return _no_steps(name)
    server = Dashboard(recipe, table, port=args.port, refresh=args.refresh)
    print(f"dashboard of {recipe.name}: {server.url}  (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _port(text: str) -> int:
    """An argparse type for a TCP port (0: any free one)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number 0-65535")
    return value


def _import_nnfabrik(args) -> int:
    from .nnfabrik.migration import import_nnfabrik

    print(import_nnfabrik(args.source, args.target, store=args.store, store_location=args.store_location,
                          tables=args.table))
    return 0


def _positive_int(text: str) -> int:
    """An argparse type for counts of processes and threads."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _seconds(text: str) -> float:
    """An argparse type for waiting times."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def _recipe_command(commands, name, help_text, run):
    command = commands.add_parser(name, help=help_text)
    command.add_argument("recipe", help="recipe module name or .py file defining `experiments`")
    command.set_defaults(run=run)
    return command


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .cli_reports import add_report_commands

    parser = argparse.ArgumentParser(prog="nntransfer", description="Transfer-learning experiments in a database.",
                                     epilog="exit codes: 0 ok, 1 failed (steps or the command), 2 usage, "
                                            "3 database server not running, 130/143 stopped by Ctrl-C/SIGTERM")
    parser.add_argument("--version", action="version", version=f"nntransfer {__version__}")
    add_common_options(parser)
    commands = parser.add_subparsers(dest="command", required=True)

    gc = commands.add_parser("gc", help="remove artifact files and checkpoints that no row refers to any more")
    gc.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    gc.add_argument("--grace", type=_seconds, default=3600.0,
                    help="leave files younger than this many seconds alone (default 3600: attempts in progress)")
    gc.set_defaults(run=_gc)

    db = commands.add_parser("db", help="manage the embedded PostgreSQL server")
    db.add_argument("action", choices=["start", "stop", "status", "url"])
    db.set_defaults(run=_db)

    demo = commands.add_parser("demo", help="train the digits demo on the configured database")
    demo.add_argument("--plot", default="nntransfer-demo.png", help="where to write the plot")
    demo.add_argument("--threads", type=_positive_int, default=1, help="torch threads (default 1: fastest for its small models)")
    demo.set_defaults(run=_demo)

    run = _recipe_command(commands, "run", "insert a recipe and train all its steps here, in order", _run)
    run.add_argument("--threads", type=_positive_int, default=None, help="torch threads (default: torch's choice)")
    worker = _recipe_command(commands, "worker", "train a recipe's ready steps until none is left (cluster job)", _worker)
    worker.add_argument("--jobs", type=_positive_int, default=None,
                        help="worker processes to run (default 1, or one per GPU with --devices)")
    worker.add_argument("--devices", default=None,
                        help="GPUs for the workers, e.g. 0,1,2,3 or auto; shared out equally among --jobs, "
                             "each worker process seeing only its share")
    worker.add_argument("--orphan-timeout", type=_seconds, default=300.0,
                        help="seconds without heartbeat after which another worker takes a job over (default 300)")
    worker.add_argument("--poll", type=_seconds, default=1.0, help="seconds between looks for new work (default 1)")
    worker.add_argument("--reconnect-timeout", type=_seconds, default=None,
                        help="seconds to wait for a database that went away before giving up (exit code 3; "
                             "default NNTRANSFER_RECONNECT_TIMEOUT or 600)")
    worker.add_argument("--threads", type=_positive_int, default=None,
                        help="torch threads per worker process (default: the cores shared out among --jobs)")
    add_report_commands(commands, _recipe_command, _status)
    _recipe_command(commands, "retry", "queue a recipe's failed steps again", _retry)
    from .search.commands import add_search_command

    add_search_command(commands, _recipe_command, _search, _positive_int, _seconds)
    plot = _recipe_command(commands, "plot", "print a recipe's results and draw its learning curves and comparison", _plot)
    plot.add_argument("--out", default="nntransfer-plot.png", help="where to write the figure")
    plot.add_argument("--metric", default="validation.accuracy", help="per-epoch metric of the learning curves")
    plot.add_argument("--final", default="test.accuracy", help="final metric compared between chains")
    plot.add_argument("--earlier", action="store_true", help="also draw the steps before the compared one")
    plot.add_argument("--by", default="chain", help="group and colour by this column (chain, seed, trainer.lr, ...)")
    plot.add_argument("--band", choices=["sd", "ci", "none"], default="sd",
                      help="band around the mean over seeds: 1 sd, 95%% CI or none (default sd)")
    report = _recipe_command(commands, "report", "write a recipe's report as one HTML file that works offline", _report)
    report.add_argument("--out", default="nntransfer-report.html", help="where to write the report")
    ui = _recipe_command(commands, "ui", "serve a live dashboard of a recipe on 127.0.0.1", _ui)
    ui.add_argument("--port", type=_port, default=8050, help="port on 127.0.0.1 (default 8050; 0: any free port)")
    ui.add_argument("--refresh", type=_seconds, default=5.0, help="seconds between the page's refreshes (default 5)")
    imported = commands.add_parser(
        "import-nnfabrik", help="copy an nnfabrik schema (DataJoint 0.12-0.14, MySQL/MariaDB) into nntransfer, keeping its keys")
    imported.add_argument("--from", dest="source", required=True,
                          help="mysql://user@host:port/old_schema (the password in NNFABRIK_SOURCE_PASS)")
    imported.add_argument("--to", dest="target", required=True, help="schema to import into, on the configured database")
    imported.add_argument("--store", default=None, help="dj.config store that points where the old attach@store did")
    imported.add_argument("--store-location", default=None, help="folder of the old store (its 'location')")
    imported.add_argument("--table", action="append", default=None,
                          help="import only this trained-model table (class name; repeat for several)")
    imported.set_defaults(run=_import_nnfabrik)
    for command in commands.choices.values():  # accepted after the command too
        add_common_options(command, suppress=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code (see :mod:`nntransfer.cli_common`: 0 ok, 1 failed, 2 usage, 3 no server)."""
    args = build_parser().parse_args(argv)
    try:
        apply_common_options(args)
        return args.run(args)
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the job in progress was given back
        return report_stop(stop)
    except NNTransferError as error:
        return report_error(error)


if __name__ == "__main__":
    sys.exit(main())
