"""What the plots and the HTML report draw, computed once: aligned learning curves and final scores.

Both work on the :class:`~nntransfer.analysis.report.StepResult` list of a
recipe and aggregate over seeds (and over chains that share a value of the
grouping column).  Choices that keep comparisons honest:

* every chain is aligned on epoch 0 of the step being compared (its last
  step by default), so a distilled student and a student trained alone both
  start at epoch 1, however long the teacher trained;
* earlier steps are optional and drawn to the left of epoch 0; a step that
  several chains share (a common pretraining) is drawn once;
* a group's curve is the mean over its runs with a band that says what it
  is (``sd``: one standard deviation, ``ci``: 95 % confidence interval of the
  mean, Student's t) and how many runs it has;
* steps that are not done (running, pending, blocked, failed) are counted in
  the label, never silently left out;
* a metric no run measured is an error that lists the ones that exist.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from ..errors import ConfigError

BANDS = {"sd": "mean ± 1 sd", "ci": "mean, 95% CI", None: "mean"}


@dataclass
class Curve:
    """One drawn line: x (epochs, 0 = start of the compared step), mean and band per x."""

    label: str
    group: str
    x: list
    mean: list
    low: list
    high: list
    runs: int
    earlier: bool = False
    not_done: dict = field(default_factory=dict)


@dataclass
class FinalGroup:
    """The final values of one group's runs, with mean and band."""

    label: str
    values: list
    seeds: list
    mean: float
    low: float
    high: float
    not_done: dict = field(default_factory=dict)


def history(result, metric: str) -> dict:
    """``{epoch: value}`` of ``metric`` in one step's stored history (epochs without a value left out)."""
    if result.row is None:
        return {}
    hist = (result.row.get("output") or {}).get("history") or {}
    values = hist.get(metric) or []
    epochs = hist.get("epoch") or list(range(1, len(values) + 1))
    return {int(e): float(v) for e, v in zip(epochs, values) if v is not None and not isinstance(v, bool)}


def available_metrics(results) -> list:
    """Every metric that some done step recorded per epoch."""
    names = set()
    for result in results:
        if result.row is not None:
            names.update(name for name in ((result.row.get("output") or {}).get("history") or {}) if name != "epoch")
    return sorted(names)


def available_finals(results) -> list:
    names = set()
    for result in results:
        if result.row is not None:
            names.update(result.final_metrics())
    return sorted(names)


def check_metric(metric: str, available: list, what: str) -> None:
    if metric not in available:
        known = ", ".join(available) if available else "none (no step is done yet)"
        raise ConfigError(f"no run recorded the {what} {metric!r}; the recorded ones are: {known}.")


def spread(values: list, band: str | None) -> tuple:
    """Mean and the band's lower and upper edge (the mean itself when one value or no band)."""
    if band not in BANDS:
        raise ConfigError(f"band must be one of {list(BANDS)}, got {band!r}.")
    mean = statistics.fmean(values)
    if band is None or len(values) < 2:
        return mean, mean, mean
    sd = statistics.stdev(values)
    if band == "sd":
        half = sd
    else:
        from scipy.stats import t

        half = t.ppf(0.975, len(values) - 1) * sd / math.sqrt(len(values))
    return mean, mean - half, mean + half


def group_value(result, by: str) -> str:
    """The value of column ``by`` (``chain``, ``seed``, a config column such as ``trainer.lr``) for one step."""
    columns = result.columns()
    if by not in columns:
        raise ConfigError(f"cannot group by {by!r}; the columns are: {', '.join(sorted(columns))}.")
    value = columns[by]
    return value if isinstance(value, str) else repr(value)


def _compared(results, step) -> list:
    """The results of each chain's compared step (``"last"`` or a step number)."""
    if step == "last":
        return [r for r in results if r.is_last]
    return [r for r in results if r.step == step]


def _not_done(members) -> dict:
    counts = {}
    for member in members:
        if member.state != "done":
            counts[member.state] = counts.get(member.state, 0) + 1
    return counts


def _suffix(runs: int, total: int, not_done: dict) -> str:
    text = f"n={runs}"
    if not_done:
        text += "; " + ", ".join(f"{count} {state}" for state, count in sorted(not_done.items()))
    return text


def _mean_curve(series: list, band) -> tuple:
    epochs = sorted({e for s in series for e in s})
    x, mean, low, high = [], [], [], []
    for epoch in epochs:
        values = [s[epoch] for s in series if epoch in s]
        m, lo, hi = spread(values, band)
        x.append(epoch)
        mean.append(m)
        low.append(lo)
        high.append(hi)
    return x, mean, low, high


def aligned_curves(results, metric: str = "validation.accuracy", *, step="last", earlier: bool = False,
                   by: str = "chain", band: str | None = "sd") -> list:
    """The curves to draw: one per group of the compared steps, then (``earlier``) one per earlier step.

    Compared steps start at epoch 1 (x is the epoch of that step); an earlier
    step ends at the epoch 0 of the step that follows it.
    """
    check_metric(metric, available_metrics(results), "per-epoch metric")
    compared = _compared(results, step)
    if not compared:
        raise ConfigError(f"no chain has a step {step!r}; give step='last' or a step number.")
    groups: dict = {}
    for result in compared:
        groups.setdefault(group_value(result, by), []).append(result)
    curves = []
    for name, members in groups.items():
        series = [s for s in (history(m, metric) for m in members) if s]
        not_done = _not_done(members)
        if not series:
            curves.append(Curve(f"{name} ({_suffix(0, len(members), not_done)})", name, [], [], [], [], 0,
                                not_done=not_done))
            continue
        x, mean, low, high = _mean_curve(series, band)
        curves.append(Curve(f"{name} ({_suffix(len(series), len(members), not_done)})", name, x, mean, low, high,
                            len(series), not_done=not_done))
    if earlier:
        curves.extend(_earlier_curves(results, compared, metric, band))
    return curves


def _earlier_curves(results, compared, metric, band) -> list:
    """Earlier steps, each drawn once however many chains share it, ending where its successor starts."""
    by_chain_seed = {}
    for result in results:
        by_chain_seed.setdefault((result.chain, result.seed), {})[result.step] = result
    shared: dict = {}
    for result in compared:
        steps = by_chain_seed[(result.chain, result.seed)]
        end = 0
        for index in range(result.step - 1, -1, -1):
            earlier = steps[index]
            series = history(earlier, metric)
            length = max(series) if series else 0
            entry = shared.setdefault(earlier.path, {"chains": [], "runs": {}, "step": index})
            if earlier.chain not in entry["chains"]:
                entry["chains"].append(earlier.chain)
            if series:  # the same path and seed is the same run, whichever chain reached it
                entry["runs"].setdefault(earlier.seed, {e - length + end: v for e, v in series.items()})
            end -= length
    curves = []
    for entry in shared.values():
        chains = entry["chains"]
        series = list(entry["runs"].values())
        name = f"step {entry['step']} of {', '.join(chains)}" + (" (shared)" if len(chains) > 1 else "")
        if not series:
            continue
        x, mean, low, high = _mean_curve(series, band)
        curves.append(Curve(f"{name} (n={len(series)})", chains[0] if len(chains) == 1 else "shared", x, mean, low,
                            high, len(series), earlier=True))
    return curves


def final_groups(results, metric: str = "test.accuracy", *, step="last", by: str = "chain",
                 band: str | None = "sd") -> list:
    """Per group of compared steps: every run's final ``metric`` with mean and band."""
    check_metric(metric, available_finals(results), "final metric")
    groups: dict = {}
    for result in _compared(results, step):
        groups.setdefault(group_value(result, by), []).append(result)
    out = []
    for name, members in groups.items():
        done = [(m.final_metrics().get(metric), m.seed) for m in members if m.row is not None]
        done = [(v, s) for v, s in done if v is not None]
        not_done = _not_done(members)
        if not done:
            out.append(FinalGroup(f"{name} ({_suffix(0, len(members), not_done)})", [], [], math.nan, math.nan,
                                  math.nan, not_done))
            continue
        values = [v for v, _ in done]
        mean, low, high = spread(values, band)
        out.append(FinalGroup(f"{name} ({_suffix(len(values), len(members), not_done)})", values,
                              [s for _, s in done], mean, low, high, not_done))
    return out
