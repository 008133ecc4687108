"""What is known about steps while they train: the one place the dashboard reads live progress from.

The table layer's :func:`nntransfer.tables.live.latest_progress` joins the
job table (which worker holds a step, and its heartbeat, which a background
thread of the worker renews every quarter of its orphan timeout) with the
small progress table that a training writes while it runs (its epoch, the
epochs it will train and the latest epoch's metrics).  A heartbeat much older
than that interval means a stalled or dead worker.
"""

from __future__ import annotations

from ..tables.live import latest_progress


def live_progress(table, restriction) -> list[dict]:
    """One dict per running step within ``restriction`` (a recipe's planned steps, as
    :func:`nntransfer.tables.membership.restriction` gives them): its key, host, pid, heartbeat age, epoch and
    latest metrics."""
    if not table.jobs.is_declared:
        return []
    primary = list(table.primary_key)
    rows = []
    for item in latest_progress(table, restriction):
        metrics = item.get("metrics") or {}
        rows.append({
            "key": {name: item[name] for name in primary},
            "host": item.get("host") or "",
            "pid": item.get("pid") or 0,
            "seconds_since_heartbeat": item.get("heartbeat_age"),
            "epoch": item.get("epoch"),
            "epochs": item.get("epochs"),
            "metrics": {name: value for name, value in sorted(metrics.items())
                        if isinstance(value, (int, float)) and not isinstance(value, bool)},
        })
    return rows
