"""The digits recipes through the runner on the test database: every step done, results as claimed.

This is what the README's demo runs; the same claims as the function-level
scenario tests (tests/unit/scenarios), here after the configs went through
the tables, the model states and logits through the artifact store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_thread")]


def run_recipe(name):
    from nntransfer import runner

    recipe = runner.load_recipe(str(RECIPES / f"{name}.py"))
    result = runner.run(recipe)
    assert result["error_list"] == []
    counts = runner.status(recipe)["total"]
    distinct = {tuple(sorted(key.items())) for key in recipe.steps()}  # chains share their first step
    assert counts == {**counts, "done": len(distinct), "pending": 0, "blocked": 0, "error": 0, "pruned": 0}
    return runner, recipe


def last_steps(recipe, chain):
    """Rows of the chain's final step, one per seed."""
    from nntransfer import tables
    from nntransfer.serialization import output_from_json

    table = tables.TransferredTrainedModel()
    rows = []
    for seed in recipe.chains[chain].seeds:
        key = recipe.chains[chain].steps(seed)[-1]
        row = (table & key).fetch1()
        row["output"] = output_from_json(row["output"])
        rows.append(row)
    return rows


def mean_test_accuracy(recipe, chain):
    return float(np.mean([row["output"]["final"]["test.accuracy"] for row in last_steps(recipe, chain)]))


def test_digits_kd_distilled_student_beats_student_alone(db):
    runner, recipe = run_recipe("digits_kd")
    assert [row["received"] for row in last_steps(recipe, "distilled_student")] == ["transfer_data"] * 3
    assert mean_test_accuracy(recipe, "distilled_student") > mean_test_accuracy(recipe, "student_alone") + 0.02
    assert runner.run(recipe)["success_count"] == 0  # a second run finds everything done


def test_digits_finetune_transfer_variants_beat_scratch(db):
    runner, recipe = run_recipe("digits_finetune")
    accuracy = {chain: mean_test_accuracy(recipe, chain) for chain in recipe.chains}
    for variant in ("frozen_extractor", "finetune", "cached_extractor"):
        assert accuracy[variant] > accuracy["scratch"] + 0.03, accuracy
    for row in last_steps(recipe, "frozen_extractor"):
        report = row["load_report"]
        assert row["received"] == "model_state"
        assert report["excluded"] and all(name.startswith("classifier.") for name in report["excluded"])
        assert all(name.startswith("features.") for name in report["loaded"])
    assert [row["received"] for row in last_steps(recipe, "cached_extractor")] == ["transfer_data"] * 3


def test_recipe_report_matches_the_rows(db):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nntransfer import tables
    from nntransfer.analysis.report import plot_recipe, recipe_results, summary_table

    _, recipe = run_recipe("digits_kd")
    results = recipe_results(recipe, tables.TransferredTrainedModel())
    assert len(results) == 3 * 3 + 3 and all(r.row is not None for r in results)
    text = summary_table(results)
    lines = text.splitlines()
    student = [line for line in lines if line.startswith("distilled_student") and line.split()[1] == "2"][0]
    assert " data " in student and f"{mean_test_accuracy(recipe, 'distilled_student'):.3f} ± " in student
    logits = [line for line in lines if line.startswith("distilled_student") and line.split()[1] == "1"][0]
    assert logits.split()[-1] == "-"  # the logits step measures no test accuracy
    assert [line.split()[0] for line in lines[2::2]] == ["distilled_student"] * 3 + ["student_alone"]
    fig, axes = plt.subplots(1, 2)
    plot_recipe(results, axes)
    means = [line.get_ydata()[0] for line in axes[1].get_lines() if line.get_marker() == "o"]
    assert means == pytest.approx([mean_test_accuracy(recipe, "distilled_student"), mean_test_accuracy(recipe, "student_alone")])
    plt.close(fig)
