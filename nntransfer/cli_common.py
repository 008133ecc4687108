"""What every ``nntransfer`` command shares: options before or after the subcommand, logging, exit codes.

``-v``, ``-q``, ``--debug``, ``--log-file FILE``, ``--home DIR`` and
``--schema NAME`` are accepted by every command, before or after its name
(``nntransfer -v status R`` and ``nntransfer status R -v`` are the same).
Diagnostics go to stderr through one log handler (see :mod:`nntransfer.logs`);
results and tables go to stdout.

Exit codes (:func:`exit_code`):

====  ============================================================================
0     done
1     failed: a step failed, a worker process died, or the command could not do
      its work (the message says why)
2     usage: a bad command line, recipe, config or schema name, or nothing of
      that name in the schema
3     the database server is not running or does not answer
130   stopped by Ctrl-C (SIGINT); 143: by SIGTERM.  The job in progress was
      given back and resumes from the checkpoint written when it stopped
====  ============================================================================
"""

from __future__ import annotations

import argparse
import os
import sys

from .errors import (
    ConfigError,
    DatabaseUnreachable,
    DuplicateEntryError,
    FabrikantError,
    FunctionResolutionError,
    NNTransferError,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3

FORMATS = ("table", "json", "csv")


def add_common_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """The options every command takes; on a subcommand (``suppress``) one not given leaves the main parser's value."""

    def default(value):
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("common options (before or after the command)")
    group.add_argument("-v", "--verbose", action="store_true", default=default(False),
                       help="also show DataJoint's INFO messages")
    group.add_argument("-q", "--quiet", action="store_true", default=default(False),
                       help="only warnings and errors (no progress lines)")
    group.add_argument("--debug", action="store_true", default=default(False), help="log everything")
    group.add_argument("--log-file", default=default(None), metavar="FILE", help="write the log to FILE as well")
    group.add_argument("--home", default=default(None), metavar="DIR",
                       help="home of the embedded database and the local store (default: NNTRANSFER_HOME, else "
                            "the project's .nntransfer folder, else the per-user one)")
    group.add_argument("--schema", default=default(None), metavar="NAME",
                       help="schema name (default: NNTRANSFER_SCHEMA or 'nntransfer')")


def verbosity(args) -> int:
    if getattr(args, "debug", False):
        return 2
    if getattr(args, "quiet", False):
        return -1
    return 1 if getattr(args, "verbose", False) else 0


def apply_common_options(args) -> None:
    """Set up what the common options say, before the command runs: the home, the schema check, logging."""
    from .logs import configure

    configure(verbosity(args), getattr(args, "log_file", None))
    if getattr(args, "home", None):
        os.environ["NNTRANSFER_HOME"] = os.path.abspath(os.path.expanduser(args.home))
    if getattr(args, "schema", None) is not None:
        from .tables.locks import check_schema_name

        check_schema_name(args.schema)


def exit_code(error: BaseException) -> int:
    """The exit code for an error that ended a command (see the module doc)."""
    if isinstance(error, KeyboardInterrupt):
        return int(getattr(error, "exit_code", 130))
    if isinstance(error, DatabaseUnreachable):
        return EXIT_UNREACHABLE
    if isinstance(error, (ConfigError, FunctionResolutionError, DuplicateEntryError, FabrikantError)):
        return EXIT_USAGE
    return EXIT_FAILED


def report_stop(stop: KeyboardInterrupt) -> int:
    """One line on stderr for a command stopped by a signal; its exit code."""
    counts = getattr(stop, "counts", None)
    trained = f"; {counts['trained']} steps trained before" if counts else ""
    what = str(stop) if str(stop) else "interrupted"
    print(f"stopped: {what}{trained}. The step in progress (if any) was given back and resumes from its "
          "checkpoint when a worker takes it.", file=sys.stderr)
    return exit_code(stop)


def report_error(error: NNTransferError) -> int:
    print(f"error: {error}", file=sys.stderr)
    return exit_code(error)
