"""Plots of results: learning curves, transfer chains and variant comparisons.

Every function takes result rows as dicts with an ``output`` (decoded, as
``TrainingMixin.fetch_output`` or :func:`nntransfer.serialization.output_from_json`
returns it) whose ``history`` maps metric names to per-epoch lists, plus the
row's key fields.  They draw on a matplotlib Axes (a new figure when none is
given) and return it, so they work in a notebook and from ``nntransfer plot``.
Nothing here touches the database.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Callable, Iterable


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


def final_metric(row: dict, metric: str):
    """A row's final value of ``metric`` (e.g. ``test.accuracy``), else its score."""
    final = (row.get("output") or {}).get("final") or {}
    return final.get(metric, row.get("score"))


def compare_variants(
    rows: Iterable[dict], metric: str = "test.accuracy", *, group: Callable = lambda row: row.get("comment", ""), ax=None
):
    """Bar per variant: mean of ``metric`` over the variant's rows (seeds), with min-max whiskers."""
    ax = _axes(ax)
    groups: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        value = final_metric(row, metric)
        if value is not None:
            groups[group(row)].append(value)
    names = list(groups)
    means = [statistics.fmean(groups[name]) for name in names]
    lower = [mean - min(groups[name]) for mean, name in zip(means, names)]
    upper = [max(groups[name]) - mean for mean, name in zip(means, names)]
    ax.bar(range(len(names)), means, yerr=[lower, upper], capsize=4, color="tab:blue", alpha=0.8)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize="small")
    for x, (mean, name) in enumerate(zip(means, names)):
        ax.annotate(f"{mean:.3f}\n(n={len(groups[name])})", (x, mean / 2), ha="center", va="center",
                    fontsize="small", color="white")
    ax.set(ylabel=metric, title=f"{metric} by variant")
    return ax
