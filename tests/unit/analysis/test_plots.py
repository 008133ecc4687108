"""Plots draw what the rows hold."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from nntransfer.analysis.plots import compare_variants, final_metric, learning_curves, transfer_chain  # noqa: E402


def row(comment, seed, values, step=None, final=None):
    result = {
        "comment": comment,
        "seed": seed,
        "score": values[-1],
        "output": {"history": {"epoch": list(range(1, len(values) + 1)), "validation.accuracy": values}},
    }
    if final is not None:
        result["output"]["final"] = {"test.accuracy": final}
    if step is not None:
        result["transfer_step"] = step
    return result


def test_learning_curves_draw_one_line_per_row_and_skip_missing_epochs():
    rows = [row("a", 1, [0.1, None, 0.3]), row("b", 1, [0.2, 0.4, 0.5])]
    ax = learning_curves(rows)
    lines = ax.get_lines()
    assert [list(line.get_xdata()) for line in lines] == [[1, 3], [1, 2, 3]]
    assert [line.get_label() for line in lines] == ["a, seed 1", "b, seed 1"]


def test_transfer_chain_places_steps_end_to_end():
    rows = [row("student", 1, [0.5, 0.6], step=1), row("teacher", 1, [0.1, 0.2, 0.3], step=0)]
    ax = transfer_chain(rows)
    curves = [line for line in ax.get_lines() if line.get_label().startswith(("teacher", "student"))]
    assert list(curves[0].get_xdata()) == [1, 2, 3]
    assert list(curves[1].get_xdata()) == [4, 5]


def test_compare_variants_averages_over_seeds():
    rows = [row("scratch", 1, [0.5], final=0.5), row("scratch", 2, [0.7], final=0.7), row("finetune", 1, [0.9], final=0.9)]
    ax = compare_variants(rows)
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == pytest.approx([0.6, 0.9])
    assert final_metric({"score": 0.3, "output": {}}, "test.accuracy") == 0.3
