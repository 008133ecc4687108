"""Notebook views: readable, escaped, and leading with what a reader looks for."""

import torch

from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig, TransferExperiment
from nntransfer.transfer.freezing import freeze
from nntransfer.transfer.summary import model_summary
from nntransfer.views.status import StepCounts

DIGITS = "nntransfer.datasets.digits.digits_dataset_fn"
MLP = "nntransfer.models.mlp.mlp_model_fn"
TRAINER = "nntransfer.trainer.standard.standard_trainer"


def test_a_config_shows_its_function_in_short_its_comment_escaped_and_its_changed_values_in_bold():
    config = TrainerConfig.for_fn(TRAINER, epochs=3, comment="<script>alert(1)</script>")
    html = config._repr_html_()
    assert "<code>standard_trainer</code>" in html and "<b>epochs</b>" in html and "<b>lr</b>" not in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert config.hash in html and TRAINER in html


def test_experiments_and_chains_show_their_configs_step_by_step():
    data, model = DatasetConfig.for_fn(DIGITS, comment="digits"), ModelConfig.for_fn(MLP, comment="mlp")
    first = Experiment(data, model, TrainerConfig.for_fn(TRAINER, comment="pretrain"), seed=[1, 2])
    second = Experiment(data, model, TrainerConfig.for_fn(TRAINER, epochs=2, comment="finetune"), seed=[1, 2])
    html = TransferExperiment([first, second], update=[{"data_transfer": True}, None])._repr_html_()
    assert html.index("step 0") < html.index("pretrain") < html.index("step 1") < html.index("finetune")
    assert "hands on its generated data" in html and "seeds 1, 2" in html
    assert "digits" in first._repr_html_()


def test_a_model_summary_is_its_table_in_text_and_html_with_frozen_layers_greyed():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    freeze(model[0])
    summary = model_summary(model, (1, 4))
    assert repr(summary) == str(summary) and "Total params: 23" in repr(summary)
    html = summary._repr_html_()
    assert html.startswith("<pre") and '<span style="color:#888">' in html and "(15)" in html


def test_step_counts_print_as_the_status_command_and_compare_as_dicts():
    counts = StepCounts(steps={0: {"done": 2, "error": 1}}, total={"done": 2, "error": 1})
    assert str(counts).splitlines() == ["step      done    error", "   0         2        1", "all          2        1"]
    assert counts == {"steps": {0: {"done": 2, "error": 1}}, "total": {"done": 2, "error": 1}}
    assert ">error<" in counts._repr_html_()
