"""Plots of results: learning curves, transfer chains and variant comparisons, drawn honestly.

Averages come with a band that says what it is (sd or 95 % CI over runs) and
how many runs it has; final values are drawn as points on an axis scaled to
them, not as bars from zero; a metric nobody recorded is an error that lists
the recorded ones.  :func:`draw_curves` and :func:`draw_finals` draw what
:mod:`nntransfer.analysis.curves` computed for a recipe (chains aligned on
the compared step, shared steps once, steps not done counted).

Every function takes result rows as dicts with an ``output`` (decoded, as
``TrainingMixin.fetch_output`` or :func:`nntransfer.serialization.output_from_json`
returns it) whose ``history`` maps metric names to per-epoch lists, plus the
row's key fields.  They draw on a matplotlib Axes (a new figure when none is
given) and return it, so they work in a notebook and from ``nntransfer plot``.
Nothing here touches the database.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterable

from .curves import BANDS, FinalGroup, check_metric, spread


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, 4))[1]


def default_label(row: dict) -> str:
    """The row's comment (or model function), its seed and, in a chain, its step."""
    name = row.get("comment") or row.get("model_fn", "?").rsplit(".", 1)[-1]
    label = f"{name}, seed {row.get('seed')}"
    if "transfer_step" in row:
        label += f", step {row['transfer_step']}"
    return label


def _history(row: dict, metric: str) -> tuple[list, list]:
    history = (row.get("output") or {}).get("history") or {}
    values = history.get(metric)
    if values is None:
        return [], []
    epochs = history.get("epoch") or list(range(1, len(values) + 1))
    points = [(epoch, value) for epoch, value in zip(epochs, values) if value is not None]
    return [p[0] for p in points], [p[1] for p in points]


def learning_curves(rows: Iterable[dict], metric: str = "validation.accuracy", *, label: Callable = default_label, ax=None):
    """One line per row: ``metric`` over epochs."""
    rows = list(rows)
    _check_rows_metric(rows, metric)
    ax = _axes(ax)
    drawn = 0
    for row in rows:
        epochs, values = _history(row, metric)
        if values:
            ax.plot(epochs, values, label=label(row))
            drawn += 1
    ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch")
    if drawn:
        ax.legend(fontsize="small")
    return ax


def transfer_chain(rows: Iterable[dict], metric: str = "validation.accuracy", *, label: Callable = default_label, ax=None):
    """The steps of one chain end to end: each step's curve starts where the previous ended.

    ``rows`` are the chain's steps (any order; sorted by ``transfer_step``).
    Dashed vertical lines mark where one step handed over to the next.
    """
    rows = list(rows)
    _check_rows_metric(rows, metric)
    ax = _axes(ax)
    offset = 0
    for row in sorted(rows, key=lambda r: r.get("transfer_step", 0)):
        epochs, values = _history(row, metric)
        if offset:
            ax.axvline(offset + 0.5, color="grey", linestyle="--", linewidth=0.8)
        if values:
            ax.plot([offset + e for e in epochs], values, marker=".", label=label(row))
            offset += max(epochs)
    ax.set(xlabel="epoch (over the whole chain)", ylabel=metric, title=f"{metric} across transfer steps")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    return ax


def _check_rows_metric(rows: list, metric: str) -> None:
    available = sorted({name for row in rows for name in ((row.get("output") or {}).get("history") or {})} - {"epoch"})
    check_metric(metric, available, "per-epoch metric")


def final_metric(row: dict, metric: str):
    """A row's final value of ``metric`` (e.g. ``test.accuracy``); ``"score"`` is the row's score.

    None when the row did not measure ``metric``: a data step's score is not
    a test accuracy, so there is no fallback.
    """
    if metric == "score":
        return row.get("score")
    final = (row.get("output") or {}).get("final") or {}
    return final.get(metric)


def compare_variants(rows: Iterable[dict], metric: str = "test.accuracy", *, group: Callable | str = "comment",
                     band: str | None = "sd", ax=None):
    """Every run's ``metric`` as a point per variant, with the mean and a labelled band over the runs.

    ``group`` is a row's column name or a function of the row.  The axis is
    scaled to the values, not to zero, and the points are shown, so 0.856
    against 0.814 looks like what it is and one seed's outlier is visible.
    """
    rows = list(rows)
    key = group if callable(group) else (lambda row: row.get(group, ""))
    measured = [(key(row), final_metric(row, metric)) for row in rows]
    available = sorted({name for row in rows for name in ((row.get("output") or {}).get("final") or {})} | {"score"})
    if not any(value is not None for _, value in measured):
        check_metric(metric, [name for name in available if name != metric], "final metric")
    groups: dict[str, list[float]] = defaultdict(list)
    for name, value in measured:
        if value is not None:
            groups[str(name)].append(float(value))
    finals = []
    for name, values in groups.items():
        mean, low, high = spread(values, band)
        finals.append(FinalGroup(f"{name} (n={len(values)})", values, [], mean, low, high))
    return draw_finals(finals, metric, band, ax=ax)


def draw_finals(groups: list, metric: str, band: str | None = "sd", ax=None):
    """Points per run, the mean as a bar-free marker and its band as labelled error bars."""
    ax = _axes(ax)
    labelled = False
    for x, group in enumerate(groups):
        if group.values:
            offsets = [x + 0.08 * (i - (len(group.values) - 1) / 2) for i in range(len(group.values))]
            ax.scatter(offsets, group.values, color="tab:grey", s=14, zorder=2,
                       label=None if labelled else "one run (seed)")
            ax.errorbar([x + 0.3], [group.mean], yerr=[[group.mean - group.low], [group.high - group.mean]],
                        fmt="o", color="tab:blue", capsize=4, zorder=3, label=None if labelled else BANDS[band])
            labelled = True
            ax.annotate(f"{group.mean:.3f}", (x + 0.38, group.mean), va="center", fontsize="small")
        else:
            ax.annotate("not done", (x, 0.5), xycoords=("data", "axes fraction"), ha="center", color="tab:red")
    ax.set_xticks(range(len(groups)), [g.label for g in groups], rotation=15, ha="right", fontsize="small")
    ax.set_xlim(-0.5, len(groups) - 0.3)
    ax.set(ylabel=metric, title=f"{metric}: runs and {BANDS[band]}")
    if groups and any(g.values for g in groups):
        ax.legend(fontsize="small")
    return ax


def draw_curves(curves: list, metric: str, band: str | None = "sd", ax=None):
    """Aligned curves (see :func:`nntransfer.analysis.curves.aligned_curves`): mean lines with shaded bands.

    Earlier steps are dashed and grey when shared; a vertical line marks
    epoch 0 of the compared step; groups with steps not done say so in the
    legend.
    """
    import matplotlib.pyplot as plt

    ax = _axes(ax)
    colours = {}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for curve in curves:
        if curve.group not in colours:
            colours[curve.group] = "tab:grey" if curve.group == "shared" else palette[len(colours) % len(palette)]
    for curve in curves:
        colour = colours[curve.group]
        style = dict(linestyle="--", linewidth=1.0, alpha=0.8) if curve.earlier else dict(linewidth=1.8)
        if curve.x:
            ax.plot(curve.x, curve.mean, color=colour, label=curve.label, **style)
            if band is not None and curve.runs > 1:
                ax.fill_between(curve.x, curve.low, curve.high, color=colour, alpha=0.15, linewidth=0)
        else:
            ax.plot([], [], marker="x", linestyle="none", color="tab:red", label=curve.label)
    if any(c.earlier for c in curves):
        ax.axvline(0.5, color="black", linewidth=0.8, linestyle=":")
    title = f"{metric}: {BANDS[band]} over runs" + (" (shaded)" if band else "")
    ax.set(xlabel="epoch of the compared step (earlier steps to the left)" if any(c.earlier for c in curves)
           else "epoch of the compared step", ylabel=metric, title=title)
    if curves:
        ax.legend(fontsize="small")
    return ax
