"""The read-only commands ``status``, ``errors`` and ``results``, as a table, JSON or CSV.

They read what the database stores about a recipe (its steps are recorded
when it is inserted, see :mod:`nntransfer.tables.membership`), so they never
import the recipe nor torch, and they create nothing: a schema that does not
exist, or a recipe with no steps in it, is a usage error (exit code 2) that
says what there is instead.

* ``status``: steps per transfer step and state, then one line per running
  step with its epoch, objective, host, process, the GPUs its worker sees
  (``nntransfer worker --devices``) and heartbeat age (from the
  live-progress table, :func:`nntransfer.tables.live.latest_progress`);
  ``--watch [SECONDS]`` prints it again every few seconds until Ctrl-C.
* ``errors``: the failed steps with their message and the last lines of
  their traceback.
* ``results``: the results frame (:func:`nntransfer.analysis.results.results`).
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time

from .cli_common import EXIT_OK, EXIT_USAGE

TRACEBACK_LINES = 6
"""Lines of a failed step's traceback that ``errors`` shows."""


def _open(args):
    """Activate the existing schema (creating nothing) and return ``(runner, recipe name, table)``."""
    from . import runner, tables

    tables.activate(args.schema, must_exist=True)
    return runner, runner.recipe_name(args.recipe), tables.TransferredTrainedModel()


def _no_steps(name: str) -> int:
    print(f"recipe {name!r} has no steps in this schema; insert it with `nntransfer run` or `nntransfer worker`, "
          "or pass the --schema it was inserted into.", file=sys.stderr)
    return EXIT_USAGE


def _chains(table, keys: list[dict]) -> dict:
    """``{index: chain name}`` for step keys, read from who planned them (``<recipe>: <chain>``)."""
    names = {}
    plan = table.plan_table()
    for index, key in enumerate(keys):
        rows = (plan & {name: key[name] for name in plan.primary_key}).to_dicts()
        if rows:
            names[index] = str(rows[0].get("planned_by", "")).rsplit(": ", 1)[-1]
    return names


def _label(key: dict, chain: str | None) -> str:
    where = f"chain {chain!r} " if chain else ""
    return f"{where}transfer step {key['transfer_step']}, seed {key['seed']}"


def _age(seconds) -> str:
    return "-" if seconds is None else f"{seconds:.0f} s ago"


def _running_lines(running: list[dict], chains: dict) -> list[str]:
    from .progress_display import objective_of

    lines = []
    for index, entry in enumerate(running):
        metrics = entry.get("metrics") or {}
        name = objective_of(metrics)
        epoch = "epoch -" if entry["epoch"] is None else f"epoch {entry['epoch']}" + (
            f"/{entry['epochs']}" if entry.get("epochs") else "")
        shown = f"{name} {metrics[name]:.4g}" if name else ""
        gpus = f"GPU {entry['devices']}" if entry.get("devices") else ""
        lines.append("  ".join(part for part in (
            f"running: {_label(entry, chains.get(index))}", epoch, shown, f"{entry['host']} pid {entry['pid']}",
            gpus, f"heartbeat {_age(entry['heartbeat_age'])}") if part))
    return lines


def _status_once(args, runner, name, table, without_steps=None) -> int:
    from .tables.live import latest_progress

    counts = runner.status(name, table)
    if not any(counts["total"].values()):
        code = without_steps() if without_steps is not None else None
        return _no_steps(name) if code is None else code
    running = latest_progress(table, runner.restriction(name, table))
    if running:
        from .tables.worker_devices import devices_by_process

        gpus = devices_by_process()
        for entry in running:
            entry["devices"] = gpus.get((entry["host"], int(entry["pid"])))
    chains = _chains(table, running)
    if args.format == "json":
        payload = {"recipe": name, "schema": table.database,
                   "steps": {str(step): states for step, states in counts["steps"].items()},
                   "total": counts["total"],
                   "running": [{**entry, "chain": chains.get(index)} for index, entry in enumerate(running)]}
        print(json.dumps(payload, default=str))
    elif args.format == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        states = list(counts["total"])
        writer.writerow(["step", *states])
        for step, per_step in counts["steps"].items():
            writer.writerow([step, *(per_step[state] for state in states)])
        writer.writerow(["all", *(counts["total"][state] for state in states)])
        print(out.getvalue(), end="")
    else:
        print(runner.format_status(counts))
        for line in _running_lines(running, chains):
            print(line)
    return EXIT_OK


def status(args, without_steps=None) -> int:
    """``without_steps``: called when the recipe has no stored steps; its exit code, unless None, is the command's."""
    runner, name, table = _open(args)
    if args.watch is None:
        return _status_once(args, runner, name, table, without_steps)
    try:
        while True:
            if sys.stdout.isatty():
                print("\033[H\033[J", end="")
            print(time.strftime("%H:%M:%S"), f"{name} (every {args.watch:g} s, Ctrl-C stops)")
            code = _status_once(args, runner, name, table, without_steps)
            if code != EXIT_OK:
                return code
            sys.stdout.flush()
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return EXIT_OK


def errors(args) -> int:
    runner, name, table = _open(args)
    if not any(runner.status(name, table)["total"].values()):
        return _no_steps(name)
    primary = table.plan_table().primary_key
    rows = table.jobs.errors.restrict(runner.restriction(name, table), semantic_check=False).to_dicts()
    failed = [{**{field: row[field] for field in primary}, "error_message": row.get("error_message") or "",
               "traceback": [line for line in (row.get("error_stack") or "").rstrip().splitlines()
                             if line.strip()][-TRACEBACK_LINES:]} for row in rows]
    failed.sort(key=lambda entry: (entry["transfer_step"], entry["seed"]))
    chains = _chains(table, failed)
    if args.format == "json":
        print(json.dumps([{**entry, "chain": chains.get(index)} for index, entry in enumerate(failed)], default=str))
    elif args.format == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["chain", *primary, "error_message", "last_traceback_line"])
        for index, entry in enumerate(failed):
            writer.writerow([chains.get(index, ""), *(entry[field] for field in primary), entry["error_message"],
                             entry["traceback"][-1] if entry["traceback"] else ""])
        print(out.getvalue(), end="")
    else:
        if not failed:
            print(f"no failed steps in recipe {name!r}")
        for index, entry in enumerate(failed):
            print(f"{_label(entry, chains.get(index))}: {entry['error_message'].strip().splitlines()[0] if entry['error_message'].strip() else 'no message'}")
            for line in entry["traceback"]:
                print(f"    {line}")
        if failed:
            print(f"{len(failed)} failed; fix the cause, then `nntransfer retry {args.recipe}` queues them again")
    return EXIT_OK


def results(args) -> int:
    from .analysis.results import results as results_frame

    runner, name, table = _open(args)
    if not any(runner.status(name, table)["total"].values()):
        return _no_steps(name)
    frame = results_frame(table, runner.restriction(name, table), all_fields=args.all_fields)
    if args.format == "json":
        print(frame.to_json(orient="records"))
    elif args.format == "csv":
        print(frame.to_csv(index=False), end="")
    else:
        import pandas as pd

        with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_rows", None):
            print(frame.to_string(index=False) if not frame.empty else f"no step of recipe {name!r} is done yet")
    return EXIT_OK


def add_report_commands(commands, recipe_command, run_status=status) -> None:
    """The ``status``, ``errors`` and ``results`` subcommands (``recipe_command`` adds a recipe command;
    ``run_status`` runs ``status``, :func:`status` unless the command line puts a search recipe's in front)."""
    from .cli_common import FORMATS

    status_command = recipe_command(commands, "status",
                                    "count a recipe's steps (done, running, pending, blocked, error) and show the "
                                    "running ones", run_status)
    status_command.add_argument("--watch", type=float, nargs="?", const=2.0, default=None, metavar="SECONDS",
                                help="print it again every SECONDS (default 2) until Ctrl-C")
    errors_command = recipe_command(commands, "errors", "list a recipe's failed steps with their error and traceback",
                                    errors)
    results_command = recipe_command(commands, "results", "print a recipe's results: one row per done step", results)
    results_command.add_argument("--all-fields", action="store_true",
                                 help="also the config values that are the same in every row")
    for command in (status_command, errors_command, results_command):
        command.add_argument("--format", choices=FORMATS, default="table",
                             help="table (default), json or csv, on stdout")
