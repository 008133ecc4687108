"""The command line's shared conventions, without a database: options anywhere, exit codes, progress lines."""

import logging

import pytest

from nntransfer.cli import build_parser
from nntransfer.cli_common import exit_code, verbosity
from nntransfer.errors import ConfigError, DatabaseError, DatabaseUnreachable, TrainingError
from nntransfer.trainer.interrupt import Interrupted


@pytest.mark.parametrize("argv", [
    ["-q", "--schema", "s1", "status", "r.py"],
    ["status", "r.py", "-q", "--schema", "s1"],
    ["--schema", "s1", "status", "-q", "r.py"],
])
def test_common_options_go_before_or_after_the_command(argv):
    args = build_parser().parse_args(argv)
    assert args.schema == "s1" and verbosity(args) == -1 and args.recipe == "r.py"


def test_every_command_takes_the_common_options():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, command in commands.items():
        options = {option for action in command._actions for option in action.option_strings}
        assert {"-v", "-q", "--debug", "--log-file", "--home", "--schema"} <= options, name
    assert {"status", "errors", "results"} <= set(commands)
    for name in ("status", "errors", "results"):
        assert build_parser().parse_args([name, "r", "--format", "csv"]).format == "csv"


def test_exit_codes():
    assert exit_code(ConfigError("x")) == 2
    assert exit_code(DatabaseUnreachable("x")) == 3
    assert exit_code(DatabaseError("x")) == 1 and exit_code(TrainingError("x")) == 1
    assert exit_code(Interrupted("x", 15)) == 143 and exit_code(Interrupted("x", 2)) == 130
    assert exit_code(KeyboardInterrupt()) == 130


def test_progress_lines_say_what_trains_epoch_of_total_objective_and_eta(caplog, monkeypatch):
    from nntransfer.progress_display import EpochDisplay

    monkeypatch.delenv("NNTRANSFER_PROGRESS", raising=False)
    with caplog.at_level(logging.INFO, logger="nntransfer.progress"):
        display = EpochDisplay("kd: chain 'kd' transfer step 1, seed 3", epochs=4, objective="validation.accuracy")
        assert display.mode == "log"  # pytest's stderr is no terminal
        display.update(1, {"validation.accuracy": 0.5, "train.loss": 1.0})
        display.update(4, {"validation.accuracy": 0.75})
    first, last = [record.getMessage() for record in caplog.records]
    assert first.startswith("kd: chain 'kd' transfer step 1, seed 3: epoch 1/4, validation.accuracy 0.5, ETA ")
    assert last == "kd: chain 'kd' transfer step 1, seed 3: epoch 4/4, validation.accuracy 0.75"


def test_no_progress_when_quiet_or_switched_off(monkeypatch):
    from nntransfer.progress_display import EpochDisplay

    monkeypatch.setenv("NNTRANSFER_PROGRESS", "off")
    assert EpochDisplay("x").mode is None
    monkeypatch.delenv("NNTRANSFER_PROGRESS")
    logger = logging.getLogger("nntransfer.progress")
    before = logger.level
    logger.setLevel(logging.WARNING)  # what -q sets for nntransfer's loggers
    try:
        assert EpochDisplay("x").mode is None
    finally:
        logger.setLevel(before)


def test_running_steps_are_one_line_each():
    from nntransfer.cli_reports import _running_lines

    running = [{"transfer_step": 1, "seed": 3, "epoch": 2, "epochs": 10, "metrics": {"validation.accuracy": 0.91234},
                "host": "node7", "pid": 4242, "heartbeat_age": 3.2},
               {"transfer_step": 0, "seed": 1, "epoch": None, "epochs": None, "metrics": None, "host": "node8",
                "pid": 7, "heartbeat_age": None}]
    first, second = _running_lines(running, {0: "kd"})
    assert first == ("running: chain 'kd' transfer step 1, seed 3  epoch 2/10  validation.accuracy 0.9123  "
                     "node7 pid 4242  heartbeat 3 s ago")
    assert second == "running: transfer step 0, seed 1  epoch -  node8 pid 7  heartbeat -"
