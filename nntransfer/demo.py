"""The README's demo: train on scikit-learn's digits through the database.

It shows the library's point in a minute on a laptop CPU: configs become table
rows, ``TrainedModel.populate()`` trains every (dataset, model, trainer, seed)
combination once, and results come back from the database as a table and a
plot.  Running it again finds everything done and only prints.
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger(__name__)

DIGITS = "nntransfer.datasets.digits.digits_dataset_fn"
MLP = "nntransfer.models.mlp.mlp_model_fn"
TRAINER = "nntransfer.trainer.standard.standard_trainer"


def experiments():
    """Two model sizes, two seeds, one trainer with early stopping."""
    from .configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig

    dataset = DatasetConfig.for_fn(DIGITS, batch_size=64, comment="digits 8x8")
    trainer = TrainerConfig.for_fn(
        TRAINER,
        epochs=20,
        lr=3e-3,
        modules={"early_stopping": {"objective": "validation.accuracy", "patience": 4}},
        comment="adam, early stopping",
    )
    return [
        Experiment(dataset, ModelConfig.for_fn(MLP, hidden_sizes=[hidden], comment=f"MLP {hidden}"), trainer, seed=[1, 2])
        for hidden in (16, 128)
    ]


def results_table(rows: list[dict]) -> str:
    header = f"{'model':<10} {'seed':>4} {'epochs':>6} {'val acc':>8} {'test acc':>8}"
    lines = [header, "-" * len(header)]
    for row in rows:
        final = row["output"]["final"]
        lines.append(
            f"{row['comment'].split('. ')[1]:<10} {row['seed']:>4} {row['output']['epochs']:>6} "
            f"{final['validation.accuracy']:>8.3f} {final['test.accuracy']:>8.3f}"
        )
    return "\n".join(lines)


def plot_learning_curves(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .analysis.plots import learning_curves

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    learning_curves(rows, "train.loss", ax=axes[0])
    learning_curves(rows, "validation.accuracy", ax=axes[1])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(schema: str | None = None, plot: str = "nntransfer-demo.png") -> int:
    from . import tables
    from .serialization import output_from_json

    start = time.perf_counter()
    tables.activate(schema or os.environ.get("NNTRANSFER_SCHEMA", "nntransfer_demo"))
    restriction = [key for experiment in experiments() for key in experiment.insert()]
    todo = len(tables.TrainedModel.key_source & restriction) - len(tables.TrainedModel & restriction)
    print(f"{todo} model(s) to train" if todo else "everything is trained already")
    tables.TrainedModel.populate(restriction, reserve_jobs=True)
    rows = (tables.TrainedModel & restriction).to_dicts(order_by=["comment", "seed"])
    for row in rows:
        row["output"] = output_from_json(row["output"])
    print(results_table(rows))
    plot_learning_curves(rows, plot)
    print(f"learning curves: {os.path.abspath(plot)}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0
