"""Trainers for the fault tests: they log which process trained which key, and how far it got.

Each writes one JSON line per event (``start``, ``epoch``, ``end``) with its
process id to ``log_file``, so a test sees which worker trained what, and
whether a worker that lost its job stopped.
"""

from __future__ import annotations

import json
import os
import time


def log_event(log_file: str, event: str, uid, **extra) -> None:
    if not log_file:
        return
    line = json.dumps({"event": event, "pid": os.getpid(), "time": time.time(),
                       "seed": int(uid["seed"]) if uid else None, **extra})
    with open(log_file, "a") as log:
        log.write(line + "\n")


def read_events(log_file) -> list:
    with open(log_file) as log:
        return [json.loads(line) for line in log if line.strip()]


def silent_trainer(model, dataloaders, seed, uid=None, cb=None, *, seconds: float = 3.0, go_file: str = "",
                   log_file: str = ""):
    """Waits ``seconds`` (or until ``go_file`` exists) and never calls ``cb``, as many nnfabrik trainers never do."""
    log_event(log_file, "start", uid)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (go_file and os.path.exists(go_file)):
        time.sleep(0.05)
    log_event(log_file, "end", uid)
    return 1.0, {"pid": os.getpid()}, model.state_dict()


def epoch_trainer(model, dataloaders, seed, uid=None, cb=None, *, epochs: int = 6, epoch_seconds: float = 0.5,
                  stop_file: str = "", log_file: str = ""):
    """``epochs`` epochs of ``epoch_seconds`` (fewer once ``stop_file`` exists), calling ``cb(epoch=...)`` after each."""
    log_event(log_file, "start", uid)
    for epoch in range(epochs):
        time.sleep(epoch_seconds)
        log_event(log_file, "epoch", uid, epoch=epoch)
        if cb is not None:
            cb(epoch=epoch)
        if stop_file and os.path.exists(stop_file):
            break
    log_event(log_file, "end", uid)
    return 1.0, {"pid": os.getpid()}, model.state_dict()
