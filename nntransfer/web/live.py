"""What is known about steps while they train: the one place the dashboard reads live progress from.

Today that is the job table: a running step's worker (host, process id),
when it was reserved, and its heartbeat, which the training's callback
renews after every epoch (``TrainingCallback``), so a stalled worker shows
as an old heartbeat.  When a progress table with the latest epoch and
metrics of each running job exists, this function is where it is read.
"""

from __future__ import annotations

import datetime


def live_progress(table, keys: list) -> list[dict]:
    """One dict per running step among ``keys``: its key, host, pid, reservation and seconds since its heartbeat."""
    if not table.jobs.is_declared or not keys:
        return []
    now = table.connection.query("SELECT CURRENT_TIMESTAMP(3)").fetchone()[0]
    now = now.replace(tzinfo=None)  # PostgreSQL answers in the session's zone, as the naive column is stored
    rows = []
    for job in (table.jobs & keys & "status = 'reserved'").to_dicts():
        heartbeat = job.get("reserved_time")
        age = (now - heartbeat).total_seconds() if isinstance(heartbeat, datetime.datetime) else None
        rows.append({
            "key": {name: job[name] for name in table.jobs.primary_key},
            "host": job.get("host", ""),
            "pid": int(job.get("pid") or 0),
            "heartbeat": heartbeat.isoformat(sep=" ", timespec="seconds") if heartbeat else "",
            "seconds_since_heartbeat": age,
        })
    return rows
