"""Everything the report page shows, as one JSON-able dict read from the database.

The page draws from it alone, so the file written by ``nntransfer report``
and the dashboard of ``nntransfer ui`` (which fetches a fresh one every few
seconds) are the same page.  Curves and final scores are computed here by
:mod:`nntransfer.analysis.curves`, the same code that draws the PNG, so both
views agree.
"""

from __future__ import annotations

import datetime
import math

from ..analysis.curves import aligned_curves, available_finals, available_metrics, final_groups
from ..analysis.report import recipe_results, step_id as _step_id
from ..analysis.results import RECEIVED_LABELS
from ..tables.lineage import RECEIVED_TEXT, load_report_text
from ..tables.membership import restriction
from ..tables.transfer import STEP_STATES
from ..views.status import StepCounts
from .live import live_progress

STATES = STEP_STATES
LEAD = ("chain", "step", "seed", "state", "received", "hands on", "score", "test.accuracy", "description")


def _json_number(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cell(value):
    """A config value for the page: numbers and text as they are, anything else as its repr, a tuple as a
    list (the database keeps both as JSON lists, so an imported and a stored recipe show the same)."""
    if isinstance(value, (list, tuple, dict)):
        return repr(_lists(value))
    return _json_number(value)


def _lists(value):
    if isinstance(value, (list, tuple)):
        return [_lists(item) for item in value]
    if isinstance(value, dict):
        return {name: _lists(item) for name, item in value.items()}
    return value


def _results_table(results) -> dict:
    """Columns and rows of every step (done or not), with the config values that differ between steps."""
    config_names = sorted({name for r in results for name in r.config})
    differing = [name for name in config_names
                 if len({repr(r.config.get(name)) for r in results}) > 1]
    rows = []
    for r in results:
        row = r.row or {}
        rows.append([
            r.chain, r.step, r.seed, r.state,
            RECEIVED_LABELS.get(row.get("received"), row.get("received") or ""),
            r.hands_on or "-",
            _json_number(row.get("score")),
            _json_number(r.test_accuracy),
            r.description,
            *(_cell(r.config.get(name)) for name in differing),
        ])
    return {"columns": list(LEAD) + differing, "rows": rows}


def _curve_dict(curve) -> dict:
    return {"label": curve.label, "group": curve.group, "x": curve.x, "mean": curve.mean, "low": curve.low,
            "high": curve.high, "runs": curve.runs, "earlier": curve.earlier}


def _lineage(results) -> list:
    """Per chain, its steps for the first seed: descriptions, configs, state, score, what moved, load reports."""
    chains = []
    for chain in dict.fromkeys(r.chain for r in results):
        members = [r for r in results if r.chain == chain]
        seed = min(r.seed for r in members)
        steps = []
        for r in sorted((m for m in members if m.seed == seed), key=lambda m: m.step):
            row = r.row or {}
            steps.append({
                "step": r.step, "description": r.description, "state": r.state, "error": r.error,
                "score": _json_number(row.get("score")), "test_accuracy": _json_number(r.test_accuracy),
                "received": RECEIVED_TEXT.get(row.get("received"), "-") if r.row else "-",
                "hands_on": r.hands_on or "-",
                "config": {name: _cell(r.config[name]) for name in sorted(r.config)},
                "load_report": load_report_text(row.get("load_report")),
            })
        chains.append({"chain": chain, "seed": seed, "steps": steps})
    return chains


def _counts(results) -> StepCounts:
    steps: dict = {}
    total = dict.fromkeys(STATES, 0)
    seen = set()
    for r in results:
        step_id = (r.path, r.seed)
        if step_id in seen:  # a step shared by several chains counts once
            continue
        seen.add(step_id)
        steps.setdefault(r.step, dict.fromkeys(STATES, 0))[r.state] += 1
        total[r.state] += 1
    return StepCounts(steps=dict(sorted(steps.items())), total=total)


def recipe_payload(recipe, table) -> dict:
    """What the report shows of ``recipe``, read from ``table`` now."""
    results = recipe_results(recipe, table)
    metrics = available_metrics(results)
    curves = {
        metric: {
            "alone": [_curve_dict(c) for c in aligned_curves(results, metric, earlier=False)],
            "earlier": [_curve_dict(c) for c in aligned_curves(results, metric, earlier=True)],
        }
        for metric in metrics
    }
    finals = {}
    for metric in available_finals(results):
        finals[metric] = [{"label": g.label, "values": g.values, "seeds": g.seeds, "mean": _json_number(g.mean),
                           "low": _json_number(g.low), "high": _json_number(g.high)}
                          for g in final_groups(results, metric)]
    counts = _counts(results)
    names = {}
    for r in results:
        names.setdefault(_step_id(r.key), []).append(f"{r.chain} step {r.step} seed {r.seed}")
    running = [{**item, "name": ", ".join(names.get(_step_id(item["key"]), ["?"]))}
               for item in live_progress(table, restriction(table, recipe.name))]
    return {
        "recipe": recipe.name,
        "generated": datetime.datetime.now().isoformat(sep=" ", timespec="seconds"),
        "status": {"steps": {str(k): v for k, v in counts["steps"].items()}, "total": counts["total"]},
        "results": _results_table(results),
        "metrics": metrics,
        "curves": curves,
        "finals": finals,
        "lineage": _lineage(results),
        "live": [{**item, "key": {k: str(v) for k, v in item["key"].items()}} for item in running],
        "band": "mean ± 1 sd over seeds",
    }
