"""Figures of the docs, drawn when the site is built, from real trainings (no database needed).

The plot on the results page is made here by the same code that draws
``nntransfer plot`` and the demo's figure: a small MLP learns digits 0-4,
and digits 5-9 are learnt from 5 examples per class either from
scratch or from the pretrained network with a new head, 3 seeds each, all on
the CPU in a few seconds.  So the picture in the docs is what the code draws
today, never a pasted screenshot.
"""

from __future__ import annotations

import io
import logging

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.figures")
SEEDS = (1, 2, 3)


def _train(dataset_options, seed, epochs, previous=None):
    import torch

    from nntransfer.datasets.digits import digits_dataset_fn
    from nntransfer.models.mlp import mlp_model_fn
    from nntransfer.trainer.standard import standard_trainer
    from nntransfer.transfer.loading import load_partial

    loaders = digits_dataset_fn(seed, split_seed=0, flatten=True, **dataset_options)
    model = mlp_model_fn(loaders, seed, hidden_sizes=[32])
    if previous is not None:
        load_partial(model, previous, exclude=["classifier"])
    torch.set_num_threads(1)
    score, output, state = standard_trainer(model, loaders, seed, epochs=epochs, lr=3e-3, device="cpu")
    return {"score": score, "output": output, "received": "" if previous is None else "model_state"}, state


def recipe_figure() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nntransfer.analysis.report import StepResult, plot_recipe

    source = {"class_range": [0, 4]}
    target = {"class_range": [5, 9], "examples_per_class": 5, "batch_size": 16}
    results = []
    for seed in SEEDS:
        pretrained, state = _train(source, seed, 8)
        finetuned, _ = _train(target, seed, 15, previous=state)
        scratch, _ = _train(target, seed, 15)
        pre = (("digits 0-4", "MLP 32", "8 epochs"),)
        results.append(StepResult("new_head", 0, seed, "digits 0-4 / MLP 32 / 8 epochs", "model state", False,
                                  pretrained, "done", pre))
        results.append(StepResult("new_head", 1, seed, "digits 5-9, 5 per class / new head / 15 epochs", "", True,
                                  finetuned, "done", pre + (("new head",),)))
        results.append(StepResult("scratch", 0, seed, "digits 5-9, 5 per class / MLP 32 / 15 epochs", "", True,
                                  scratch, "done", (("scratch",),)))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    plot_recipe(results, axes, earlier=True)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def on_files(files, config):
    log.info("training the small example for the results figure")
    files.append(File.generated(config, "img/recipe-curves.png", content=recipe_figure()))
    return files
