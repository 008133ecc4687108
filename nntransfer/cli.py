"""The ``nntransfer`` command.

    nntransfer db start|stop|status|url    manage the embedded PostgreSQL server
    nntransfer demo                        train the digits demo and print the results
"""

from __future__ import annotations

import argparse
import logging
import sys

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


def _demo(args) -> int:
    from .demo import main as demo_main

    return demo_main(schema=args.schema, plot=args.plot)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nntransfer", description="Transfer-learning experiments in a database.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="manage the embedded PostgreSQL server")
    db.add_argument("action", choices=["start", "stop", "status", "url"])
    db.set_defaults(run=_db)

    demo = commands.add_parser("demo", help="train the digits demo on the configured database")
    demo.add_argument("--schema", default=None, help="schema name (default: NNTRANSFER_SCHEMA or 'nntransfer_demo')")
    demo.add_argument("--plot", default="nntransfer-demo.png", help="where to write the plot")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except NNTransferError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
