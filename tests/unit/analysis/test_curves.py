"""Recipe curves compare honestly: aligned on the compared step, shared steps once, bands labelled, gaps counted."""

import math
import statistics

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from nntransfer.analysis.curves import aligned_curves, final_groups, spread  # noqa: E402
from nntransfer.analysis.report import StepResult, plot_recipe, summary_table  # noqa: E402
from nntransfer.errors import ConfigError  # noqa: E402

PRETRAIN = (("pretrain",),)


def step(chain, index, seed, values, *, last, path, state="done", final=None, lr=0.1, hands_on="model state"):
    row = None
    if state == "done":
        output = {"history": {"epoch": list(range(1, len(values) + 1)), "validation.accuracy": values}}
        if final is not None:
            output["final"] = {"test.accuracy": final}
        row = {"output": output, "score": values[-1] if values else 0.0, "received": ""}
    return StepResult(chain, index, seed, f"{chain} step {index}", "" if last else hands_on, last, row, state, path,
                      {"trainer.lr": lr})


def recipe_results():
    """Two chains share a 4-epoch pretraining; a third trains alone; one seed of one chain failed."""
    results = []
    for seed, shift in ((1, 0.0), (2, 0.1)):
        results.append(step("finetune", 0, seed, [0.2, 0.4, 0.6, 0.7], last=False, path=PRETRAIN))
        results.append(step("finetune", 1, seed, [0.5 + shift, 0.6 + shift], last=True,
                            path=PRETRAIN + (("finetune",),), final=0.8 + shift, lr=0.01))
        results.append(step("frozen", 0, seed, [0.2, 0.4, 0.6, 0.7], last=False, path=PRETRAIN))
        results.append(step("scratch", 0, seed, [0.1 + shift, 0.3, 0.5], last=True, path=(("scratch",),),
                            final=0.7 + shift))
    results.append(step("frozen", 1, 1, [0.45, 0.55], last=True, path=PRETRAIN + (("frozen",),), final=0.75))
    results.append(step("frozen", 1, 2, [], last=True, path=PRETRAIN + (("frozen",),), state="error"))
    return results


def test_chains_start_at_epoch_one_of_the_compared_step_with_mean_and_sd_over_seeds():
    curves = {c.group: c for c in aligned_curves(recipe_results(), "validation.accuracy")}
    assert curves["finetune"].x == [1, 2] and curves["scratch"].x == [1, 2, 3]
    assert curves["finetune"].mean == pytest.approx([0.55, 0.65])
    sd = statistics.stdev([0.5, 0.6])
    assert curves["finetune"].low == pytest.approx([0.55 - sd, 0.65 - sd])
    assert curves["frozen"].label == "frozen (n=1; 1 error)"  # the failed seed is counted, not hidden


def test_earlier_steps_end_at_epoch_zero_and_a_shared_step_is_drawn_once():
    curves = aligned_curves(recipe_results(), "validation.accuracy", earlier=True)
    earlier = [c for c in curves if c.earlier]
    assert len(earlier) == 1
    assert earlier[0].label.startswith("step 0 of finetune, frozen (shared)")
    assert earlier[0].x == [-3, -2, -1, 0] and earlier[0].runs == 2


def test_grouping_by_a_config_column_and_a_confidence_interval():
    curves = {c.group: c for c in aligned_curves(recipe_results(), "validation.accuracy", by="trainer.lr", band="ci")}
    assert set(curves) == {"0.01", "0.1"}
    groups = {g.label.split(" ")[0]: g for g in final_groups(recipe_results(), by="chain", band="ci")}
    half = groups["scratch"].high - groups["scratch"].mean
    assert half == pytest.approx(12.706204736 * statistics.stdev([0.7, 0.8]) / math.sqrt(2))
    with pytest.raises(ConfigError, match="cannot group by 'trainer.nope'.*trainer.lr"):
        aligned_curves(recipe_results(), by="trainer.nope")


def test_unknown_metrics_and_bands_are_errors_that_list_the_choices():
    with pytest.raises(ConfigError, match=r"'nope'; the recorded ones are: validation\.accuracy"):
        aligned_curves(recipe_results(), "nope")
    with pytest.raises(ConfigError, match=r"'nope'.*test\.accuracy"):
        final_groups(recipe_results(), "nope")
    with pytest.raises(ConfigError, match="band must be one of"):
        spread([1.0, 2.0], "minmax")


def test_plot_recipe_draws_bands_and_points_not_bars_from_zero():
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2)
    plot_recipe(recipe_results(), axes, earlier=True)
    labels = [text.get_text() for text in axes[0].get_legend().get_texts()]
    assert "frozen (n=1; 1 error)" in labels and any("(shared)" in label for label in labels)
    assert len(axes[0].collections) >= 2  # shaded bands
    assert not axes[1].patches and axes[1].get_ylim()[0] > 0.5
    plt.close(fig)


def test_summary_shows_no_test_accuracy_for_a_step_that_measured_none_and_full_descriptions():
    results = recipe_results()
    long = "a description much longer than sixty-two characters, which the table used to cut off"
    for result in results:
        if result.chain == "finetune" and result.step == 0:
            result.description = long
    text = summary_table(results)
    pretrain = [line for line in text.splitlines() if line.startswith("finetune") and line.split()[1] == "0"][0]
    assert pretrain.split()[-1] == "-"  # its score is a validation score, not a test accuracy
    assert long in text
    frozen_last = [line for line in text.splitlines() if line.startswith("frozen") and line.split()[1] == "1"][0]
    assert "1/2" in frozen_last and "1 failed" in frozen_last
