"""Plots draw what the rows hold."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from nntransfer.errors import ConfigError  # noqa: E402

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


def test_compare_variants_shows_every_run_and_the_mean_with_a_labelled_band_on_a_scaled_axis():
    rows = [row("scratch", 1, [0.5], final=0.80), row("scratch", 2, [0.7], final=0.83),
            row("finetune", 1, [0.9], final=0.86)]
    ax = compare_variants(rows)
    from matplotlib.collections import PathCollection

    points = [v for c in ax.collections if isinstance(c, PathCollection) for v in c.get_offsets()[:, 1]]
    assert sorted(points) == pytest.approx([0.80, 0.83, 0.86])
    means = [line.get_ydata()[0] for line in ax.get_lines() if line.get_marker() == "o"]
    assert means == pytest.approx([0.815, 0.86])
    assert ax.get_ylim()[0] > 0.7  # not stretched down to zero
    assert "mean ± 1 sd" in [text.get_text() for text in ax.get_legend().get_texts()]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["scratch (n=2)", "finetune (n=1)"]


def test_final_metric_has_no_fallback_and_score_is_asked_for_by_name():
    assert final_metric({"score": 0.3, "output": {}}, "test.accuracy") is None
    assert final_metric({"score": 0.3, "output": {}}, "score") == 0.3


def test_an_unknown_metric_is_an_error_that_lists_the_recorded_ones():
    with pytest.raises(ConfigError, match=r"'nope'.*validation\.accuracy"):
        learning_curves([row("a", 1, [0.1, 0.2])], metric="nope")
    with pytest.raises(ConfigError, match=r"'nope'.*test\.accuracy"):
        compare_variants([row("a", 1, [0.1], final=0.5)], metric="nope")
