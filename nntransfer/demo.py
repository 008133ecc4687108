"""The README's demo: two transfer recipes on scikit-learn's digits, through the database.

It runs ``recipes/digits_kd.py`` (teacher -> logits -> smaller student, and the
student alone) and ``recipes/digits_finetune.py`` (pretrain on 0-4, then 5
examples per class of 5-9: scratch vs frozen feature extractor vs fine-tuning
vs cached features) on the configured database (the embedded PostgreSQL by
default), prints what every step received, handed on and scored, and writes a
figure: each chain's learning curves across its steps, and the chains' test
accuracy.  Running it again finds every step trained and only reads.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

RECIPES = ("digits_kd.py", "digits_finetune.py")


def recipe_folder() -> Path:
    from .errors import ConfigError

    folder = Path(__file__).resolve().parents[1] / "recipes"
    if not folder.is_dir():
        raise ConfigError(f"the demo runs the recipes in {folder}, which is missing; run it from a clone of the repository.")
    return folder


def main(schema: str | None = None, plot: str = "nntransfer-demo.png") -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import runner, tables
    from .analysis.report import plot_recipe, recipe_results, summary_table

    start = time.perf_counter()
    tables.activate(schema)  # the schema every command uses by default, so `nntransfer status` finds the demo
    table = tables.TransferredTrainedModel()
    fig, axes = plt.subplots(len(RECIPES), 2, figsize=(15, 5 * len(RECIPES)), squeeze=False)
    failed = 0
    for recipe_file, row_axes in zip(RECIPES, axes):
        recipe = runner.load_recipe(str(recipe_folder() / recipe_file))
        runner.insert(recipe, table)
        todo = sum(counts for state, counts in runner.status(recipe, table)["total"].items() if state != "done")
        print(f"\n== {recipe_file}: {todo} step(s) to train" if todo else f"\n== {recipe_file}: everything trained already")
        result = runner.run(recipe, table)
        failed += len(result["error_list"])  # each failed step was logged once
        results = recipe_results(recipe, table)
        print(summary_table(results))
        plot_recipe(results, row_axes, earlier=True)
        row_axes[0].set_title(f"{recipe_file}: each chain's last step, earlier steps to the left")
    fig.tight_layout()
    fig.savefig(plot, dpi=90)
    plt.close(fig)
    print(f"\nplot: {os.path.abspath(plot)}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    option = f" --schema {table.database}" if table.database != tables.DEFAULT_SCHEMA else ""
    for recipe_file in RECIPES:
        print(f"see it again: nntransfer status recipes/{recipe_file}{option}; "
              f"nntransfer plot recipes/{recipe_file}{option}")
    return 1 if failed else 0
