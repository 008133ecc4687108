"""What a recipe produced: a summary table and a figure, read from the database.

The demo and ``nntransfer plot`` / ``nntransfer report`` use these.  Rows are
matched back to the recipe's chains by their full step key; a step shared by
several chains (a common pretraining) is reported once per chain, because it
belongs to each chain's story.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from ..steps import STEP_KEY_FIELDS
from ..tables.membership import restriction
from ..serialization import output_from_json
from ..tables.pruning import PRUNED
from .results import RECEIVED_LABELS

STEP_FIELDS = STEP_KEY_FIELDS


def step_id(key: dict) -> tuple:
    """A step's full key as a tuple, the same whichever backend's types the key came with."""
    return tuple(str(key[name]) if name.endswith(("_fn", "_hash", "history")) else int(key[name]) for name in STEP_FIELDS)


@dataclass
class StepResult:
    """One step of one chain for one seed, with its row (None while not trained) and its state.

    ``state`` is ``done``, ``running``, ``pending``, ``blocked``, ``error`` or ``pruned``
    (see ``TransferredTrainedModelBase.step_states``); ``path`` identifies the
    step without its seed (the configs of this step and all before it), so a
    step shared by several chains is recognised as one; ``config`` holds the
    step's config values flattened (``trainer.lr``), for grouping.
    """

    chain: str
    step: int
    seed: int
    description: str
    hands_on: str
    is_last: bool
    row: dict | None
    state: str = "done"
    path: tuple = ()
    config: dict = field(default_factory=dict)
    error: str = ""
    key: dict = field(default_factory=dict)

    def final_metrics(self) -> dict:
        """The metrics the step measured at its end (``test.accuracy``, ...); empty when it measured none."""
        if self.row is None:
            return {}
        final = (self.row.get("output") or {}).get("final") or {}
        return {name: value for name, value in final.items() if isinstance(value, (int, float))}

    @property
    def test_accuracy(self):
        """The step's own test accuracy, None when it did not measure one (a data step, a failed step)."""
        return self.final_metrics().get("test.accuracy")

    def columns(self) -> dict:
        """Every column this step can be grouped by: chain, step, seed, state and its config values."""
        return {"chain": self.chain, "step": self.step, "seed": self.seed, "state": self.state, **self.config}


def _flat_config(config) -> dict:
    from ..views.html import flat

    return flat(config.to_dict(include_descriptive=False), f"{config.kind}.")


def _states(recipe, table, rows: dict) -> dict:
    """``{step id: (state, error message)}`` of the recipe's steps that are not done."""
    keys = recipe.steps()
    members = restriction(table, recipe.name)  # the stored recipe: a join, not a list of its keys
    jobs = {}
    if table.jobs.is_declared:
        for job in table.jobs.restrict(members, semantic_check=False).to_dicts():
            jobs[step_id(job)] = (job["status"], job.get("error_message") or "")
    ready = {step_id(plan): bool(plan["ready"]) for plan in (table.plan_table() & members).proj("ready").to_dicts()}
    states = {}
    for key in keys:
        step = step_id(key)
        if step in rows:
            continue
        status, message = jobs.get(step, ("", ""))
        if status == "reserved":
            states[step] = ("running", "")
        elif status == "error":
            states[step] = ("error", message)
        elif status == "ignore" and message.startswith(PRUNED):
            states[step] = ("pruned", message)
        else:
            states[step] = ("pending" if ready.get(step) else "blocked", "")
    return states


def recipe_results(recipe, table) -> list[StepResult]:
    """Every step of every chain and seed of ``recipe``, with its row from ``table`` when done, and its state."""
    rows = {}
    for row in (table & restriction(table, recipe.name)).to_dicts():
        row["output"] = output_from_json(row["output"])
        rows[step_id(row)] = row
    states = _states(recipe, table, rows)
    results = []
    for name, chain in recipe.chains.items():
        configs = [{k: v for c in e.configs for k, v in _flat_config(c).items()} for e in chain.experiments]
        for seed in chain.seeds:
            path = ()
            for index, key in enumerate(chain.steps(seed)):
                experiment = chain.experiments[index]
                path += (tuple(str(c.key) for c in experiment.configs) + (key["data_transfer"],),)
                description = " / ".join(c.comment or c.fn.rsplit(".", 1)[-1] for c in experiment.configs)
                is_last = index == len(chain) - 1
                hands_on = "" if is_last else HANDS_ON[bool(key["data_transfer"])]
                this = step_id(key)
                state, error = states.get(this, ("done", ""))
                results.append(StepResult(name, index, seed, description, hands_on, is_last, rows.get(this),
                                          state, path, configs[index], error, key))
    return results


HANDS_ON = {True: "data", False: "model state"}
"""What a step hands on, in the words of RECEIVED_LABELS (``nntransfer.analysis.results``)."""


def summary_table(results: list[StepResult]) -> str:
    """One block per chain and step: what it received and handed on, its test accuracy over seeds, its description.

    Test accuracy is the step's own measurement; a step that measures none
    (a data step) shows ``-``, never a fallback score.  The description (the
    configs' comments) is printed in full on its own line.
    """
    groups: dict[tuple, list[StepResult]] = {}
    for result in results:
        groups.setdefault((result.chain, result.step), []).append(result)
    header = f"{'chain':<20} {'step':>4}  {'received':<14} {'hands on':<12} {'done':>5}  {'test acc (mean ± sd)':<22}"
    lines = [header, "-" * len(header)]
    for (chain, step), members in groups.items():
        done = [m for m in members if m.row is not None]
        received = {RECEIVED_LABELS.get(m.row.get("received"), m.row.get("received")) for m in done}
        accuracies = [m.test_accuracy for m in done if m.test_accuracy is not None]
        if len(accuracies) > 1:
            spread = f"{statistics.fmean(accuracies):.3f} ± {statistics.stdev(accuracies):.3f}"
        elif accuracies:
            spread = f"{accuracies[0]:.3f}"
        else:
            spread = "-"
        failed = sum(m.state == "error" for m in members)
        count = f"{len(done)}/{len(members)}"
        lines.append(
            f"{chain:<20} {step:>4}  {', '.join(sorted(received)) or '-':<14} {members[0].hands_on or '-':<12}"
            f" {count:>5}  {spread:<22}{f' {failed} failed' if failed else ''}"
        )
        lines.append(f"{'':<27}{members[0].description}")
    return "\n".join(lines)


def plot_recipe(results: list[StepResult], axes, metric: str = "validation.accuracy", *, step="last",
                earlier: bool = False, by: str = "chain", band: str | None = "sd", final: str = "test.accuracy"):
    """Two panels: ``metric`` per epoch of each chain's compared step (mean and band over seeds), and ``final``.

    Chains are aligned on epoch 0 of the compared step (``step``: ``"last"``
    or a number); ``earlier`` adds the steps before it, to the left, shared
    ones once.  ``by`` groups and colours by any column of
    :meth:`StepResult.columns` (``chain``, ``trainer.lr``, ...).
    """
    from .curves import aligned_curves, available_finals, available_metrics, final_groups
    from .plots import draw_curves, draw_finals

    curve_ax, final_ax = axes
    if available_metrics(results):  # else nothing to draw yet; a metric nobody recorded is an error
        draw_curves(aligned_curves(results, metric, step=step, earlier=earlier, by=by, band=band), metric, band,
                    ax=curve_ax)
    else:
        curve_ax.annotate("no step has recorded per-epoch metrics yet", (0.5, 0.5), xycoords="axes fraction",
                          ha="center")
    if available_finals(results):
        draw_finals(final_groups(results, final, step=step, by=by, band=band), final, band, ax=final_ax)
    else:
        final_ax.annotate("no step has measured final metrics yet", (0.5, 0.5), xycoords="axes fraction", ha="center")
    return axes
