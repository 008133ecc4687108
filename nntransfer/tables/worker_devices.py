"""Which GPUs each worker process sees, so that ``nntransfer status`` shows which device runs which step.

A worker started with ``--devices`` sees only its share of the GPUs
(``CUDA_VISIBLE_DEVICES``).  It records that share here under its host and
process id, the same pair DataJoint writes into a job when the worker
reserves it; :func:`running_steps` joins the two.  A worker removes its row
when it ends; the row of one that was killed stays until a process with the
same host and id records its own, and is only ever shown next to a job that
this same process holds, so it never labels another worker's job.
"""

from __future__ import annotations

import os
import platform

from ..db import import_datajoint
from .fabrik import schema
from .membership import restriction as recipe_steps

dj = import_datajoint()


@schema
class WorkerDevice(dj.Manual):
    definition = """
    # the GPUs a worker process sees (its CUDA_VISIBLE_DEVICES), for `nntransfer status`
    host: varchar(255)
    pid: int32
    ---
    devices: varchar(255)
    device_ts = CURRENT_TIMESTAMP: datetime
    """


def _me() -> dict:
    return {"host": platform.node(), "pid": os.getpid()}


def record_devices(devices: str) -> None:
    """Record that this process sees the GPUs ``devices`` (a CUDA_VISIBLE_DEVICES value)."""
    forget_devices()  # a row left by a killed process that had this host and id (insert's replace fails on PostgreSQL)
    WorkerDevice().insert1({**_me(), "devices": devices})


def forget_devices() -> None:
    (WorkerDevice() & _me()).delete_quick()


def devices_by_process() -> dict[tuple[str, int], str]:
    """``{(host, pid): GPUs}`` of the worker processes that recorded theirs."""
    return {(row["host"], int(row["pid"])): row["devices"] for row in WorkerDevice().to_dicts()}


def running_steps(table, recipe: str) -> list[dict]:
    """The steps of ``recipe`` that workers hold now: the step's key, host, pid and GPUs (None if not recorded)."""
    held = (table.jobs & "status='reserved'").restrict(recipe_steps(table, recipe), semantic_check=False)
    rows = held.to_dicts()
    if not rows:
        return []
    devices = devices_by_process()
    primary = table.plan_table().primary_key
    return [
        {**{name: row[name] for name in primary}, "host": row["host"], "pid": int(row["pid"]),
         "devices": devices.get((row["host"], int(row["pid"])))}
        for row in rows
    ]


def format_running(steps: list[dict]) -> str:
    """One line per held step: where it runs and on which GPUs."""
    lines = []
    for step in sorted(steps, key=lambda s: (s["host"], s["pid"], s["transfer_step"])):
        where = f"{step['host']} pid {step['pid']}"
        gpus = f"GPU {step['devices']}" if step["devices"] else "no GPU recorded"
        what = f"step {step['transfer_step']} seed {step.get('seed')} model {str(step.get('model_hash', ''))[:8]} " \
               f"trainer {str(step.get('trainer_hash', ''))[:8]}"
        lines.append(f"running: {what} on {where}, {gpus}")
    return "\n".join(lines)
