"""What a recipe produced: a summary table and a figure, read from the database.

The demo and ``nntransfer plot`` / ``nntransfer report`` use these.  Rows are
matched back to the recipe's chains by their full step key; a step shared by
several chains (a common pretraining) is reported once per chain, because it
belongs to each chain's story.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from ..steps import STEP_KEY_FIELDS
from ..serialization import output_from_json

STEP_FIELDS = STEP_KEY_FIELDS


def _step_id(key: dict) -> tuple:
    return tuple(str(key[name]) if name.endswith(("_fn", "_hash", "history")) else int(key[name]) for name in STEP_FIELDS)


@dataclass
class StepResult:
    """One step of one chain for one seed, with its row (None while not trained)."""

    chain: str
    step: int
    seed: int
    description: str
    hands_on: str
    is_last: bool
    row: dict | None

    @property
    def test_accuracy(self):
        if self.row is None:
            return None
        final = (self.row["output"] or {}).get("final") or {}
        return final.get("test.accuracy", self.row.get("score"))


def recipe_results(recipe, table) -> list[StepResult]:
    """Every step of every chain and seed of ``recipe``, with its row from ``table`` when done."""
    rows = {}
    for row in (table & recipe.steps()).to_dicts():
        row["output"] = output_from_json(row["output"])
        rows[_step_id(row)] = row
    results = []
    for name, chain in recipe.chains.items():
        for seed in chain.seeds:
            for index, key in enumerate(chain.steps(seed)):
                experiment = chain.experiments[index]
                description = " / ".join(c.comment or c.fn.rsplit(".", 1)[-1] for c in experiment.configs)
                is_last = index == len(chain) - 1
                hands_on = "" if is_last else ("data" if key["data_transfer"] else "model state")
                results.append(StepResult(name, index, seed, description, hands_on, is_last, rows.get(_step_id(key))))
    return results


def summary_table(results: list[StepResult]) -> str:
    """One line per chain and step: what it is, what it received and handed on, test accuracy over seeds."""
    groups: dict[tuple, list[StepResult]] = {}
    for result in results:
        groups.setdefault((result.chain, result.step), []).append(result)
    header = (
        f"{'chain':<18} {'step':>4}  {'dataset / model / trainer':<62} {'received':<14} {'hands on':<12}"
        f" {'test acc (seeds)':>17}"
    )
    lines = [header, "-" * len(header)]
    for (chain, step), members in groups.items():
        done = [m.test_accuracy for m in members if m.row is not None and m.test_accuracy is not None]
        received = {m.row.get("received") or "-" for m in members if m.row is not None} or {"(not trained)"}
        if done:
            spread = f"{statistics.fmean(done):.3f} ({len(done)}/{len(members)})"
        else:
            spread = f"- (0/{len(members)})"
        description = members[0].description
        if len(description) > 62:
            description = description[:59] + "..."
        hands_on = members[0].hands_on or "-"
        lines.append(
            f"{chain:<18} {step:>4}  {description:<62} {', '.join(sorted(received)):<14} {hands_on:<12} {spread:>17}"
        )
    return "\n".join(lines)


def plot_recipe(results: list[StepResult], axes, metric: str = "validation.accuracy"):
    """Two panels: every chain's steps end to end (first seed), and the last steps' test accuracy by chain."""
    from .plots import compare_variants, transfer_chain

    curve_ax, bar_ax = axes
    chains = dict.fromkeys(result.chain for result in results)
    for chain in chains:
        members = [r for r in results if r.chain == chain and r.row is not None]
        if not members:
            continue
        first_seed = min(r.seed for r in members)
        steps = [dict(r.row, transfer_step=r.step) for r in members if r.seed == first_seed]
        transfer_chain(steps, metric, label=lambda row, chain=chain: f"{chain}, step {row['transfer_step']}", ax=curve_ax)
    curve_ax.set_title(f"{metric} along each chain (first seed)")
    finals = [dict(r.row, chain=r.chain) for r in results if r.row is not None and r.is_last]
    compare_variants(finals, "test.accuracy", group=lambda row: row["chain"], ax=bar_ax)
    bar_ax.set_title("test accuracy of each chain's last step (mean over seeds)")
    return axes
