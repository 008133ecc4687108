"""What a notebook shows, executed by a real Jupyter kernel (nbclient + ipykernel).

The cells are the ones a new user types: configs, an experiment, a chain
trained through the database, then its results, lineage, status and a model
summary as the cell's last expression.  Each must come out as HTML that leads
with what matters, not as a dataclass repr or a row of hashes.
"""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_thread"),
              pytest.mark.skipif(bool(os.environ.get("NNTRANSFER_TEST_SERVER")),
                                 reason="displays are the same on every backend: run once, on the embedded database")]

CELLS = [
    """
import nntransfer, torch
from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig, TransferExperiment
from nntransfer.runner import Recipe
from nntransfer import runner
nntransfer.activate()
torch.set_num_threads(1)
digits = DatasetConfig.for_fn("nntransfer.datasets.digits.digits_dataset_fn", split_seed=0, comment="all digits")
mlp = ModelConfig.for_fn("nntransfer.models.mlp.mlp_model_fn", hidden_sizes=[8], comment="MLP 8")
train = TrainerConfig.for_fn("nntransfer.trainer.standard.standard_trainer", epochs=2, lr=3e-3, comment="2 epochs")
finetune = TrainerConfig.for_fn("nntransfer.trainer.standard.standard_trainer", epochs=2, lr=1e-3, comment="finetune")
""",
    "train",
    "chain = TransferExperiment([Experiment(digits, mlp, train, seed=[1, 2]), Experiment(digits, mlp, finetune, seed=[1, 2])])\nchain",
    """
recipe = Recipe(name="notebook", chains={"pretrained": chain, "alone": TransferExperiment([Experiment(digits, mlp, finetune, seed=[1, 2])])})
runner.run(recipe)
runner.status(recipe)
""",
    "from nntransfer.analysis.results import results\nresults(nntransfer.tables.TransferredTrainedModel & {'seed': 1}, recipe=recipe)",
    "nntransfer.tables.TransferredTrainedModel().lineage(chain.steps(seed=1)[-1])",
    """
from nntransfer.transfer.summary import model_summary
net = nntransfer.tables.TransferredTrainedModel().load_model(chain.steps(seed=1)[-1], include_dataloader=False)
model_summary(net, (1, 64))
""",
    "nntransfer.tables.TransferredTrainedModel & {'seed': 1}",
]


def run_notebook(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source.strip()) for source in CELLS])
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=dict(os.environ))
    return [cell.outputs for cell in notebook.cells]


def html(outputs) -> str:
    shown = [o["data"]["text/html"] for o in outputs if o.get("output_type") == "execute_result"]
    assert shown, f"no rich display in {outputs}"
    return shown[0]


def plain(outputs) -> str:
    return next(o["data"]["text/plain"] for o in outputs if o.get("output_type") == "execute_result")


def test_a_notebook_shows_configs_results_lineage_status_and_summaries_as_html(db, tmp_path):
    outputs = run_notebook(tmp_path)
    config = html(outputs[1])
    assert "standard_trainer" in config and "2 epochs" in config and "<b>epochs</b>" in config
    assert "nntransfer.trainer.standard.standard_trainer" in config  # the full path in the small print
    assert "step 0" in html(outputs[2]) and "step 1" in html(outputs[2]) and "its model state" in html(outputs[2])

    status = html(outputs[3])
    assert ">done<" in status and ">6<" in status  # (2 + 1 steps) x 2 seeds, all done
    assert plain(outputs[3]).splitlines()[0].split()[:3] == ["step", "done", "running"]

    table = html(outputs[4])
    headers = [h for h in table.split("<th>")[1:]]
    assert [h.split("<")[0] for h in headers[1:7]] == ["chain", "step", "seed", "score", "comment", "received"]
    assert "pretrained" in table and "alone" in table and "trainer.lr" in table and "dataset.split_seed" not in table

    lineage = html(outputs[5])
    assert "all digits / MLP 8 / 2 epochs" in lineage and "LoadReport" in lineage
    assert "nntransfer.datasets.digits.digits_dataset_fn" in lineage  # paths only in the small print
    assert "step 1: all digits / MLP 8 / finetune (seed 1)" in plain(outputs[5])

    preview = html(outputs[7])  # the table itself: score before the six function and hash columns
    titles = [cell.split("<")[0] for cell in preview.split('">')[1:] if cell.split("<")[0]][:6]
    assert titles == ["step", "seed", "score", "comment", "received", "dataset_fn"]
    assert "TransferredTrainedModel: 3 rows" in preview

    summary = html(outputs[6])
    assert summary.startswith("<pre") and "Total params" in summary
    assert plain(outputs[6]).splitlines()[1].startswith("Layer (type:depth-idx)")
