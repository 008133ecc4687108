"""sinzlab-style main-loop modules in the new loop: events, modes, loss terms and a clear refusal."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from nntransfer.errors import ModuleRequirementError
from nntransfer.trainer.standard import standard_trainer

CALLS = []


class Recorder:
    """Records the events it sees, in sinzlab's signatures."""

    def __init__(self, trainer):
        self.config = trainer.config
        self.tracker = trainer.tracker

    def pre_epoch(self, model, mode, **options):
        CALLS.append(("pre_epoch", mode, self.config.tag, self.config.unset))

    def pre_forward(self, model, inputs, task_key, shared_memory):
        shared_memory["seen"] = task_key
        return model, inputs

    def post_forward(self, outputs, loss, targets, **shared_memory):
        self.tracker.log_objective(2.0, ("Training", "Probe", "value"))
        return outputs, loss + 100.0, targets

    def post_backward(self, model):
        pass

    def post_optimizer(self, model):
        pass

    def post_epoch(self, model):
        CALLS.append(("post_epoch",))


class Swapper(Recorder):
    def pre_forward(self, model, inputs, task_key, shared_memory):
        return torch.nn.Identity(), inputs


def _run(module_path):
    data = TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))
    loaders = {name: DataLoader(data, batch_size=4) for name in ("train", "validation", "test")}
    modules = {"nntransfer.legacy.modules.LegacyModules": {"modules": [module_path], "config": {"tag": "t"}}}
    return standard_trainer(torch.nn.Linear(4, 2), loaders, seed=0, epochs=1, modules=modules)


def test_old_modules_see_sinzlabs_modes_config_and_add_to_the_loss():
    CALLS.clear()
    score, output, _ = _run(f"{__name__}.Recorder")
    assert ("pre_epoch", "Training", "t", None) in CALLS and ("pre_epoch", "Validation", "t", None) in CALLS
    assert output["history"]["train.loss"][0] > 100  # the module's term joined the loop's loss
    assert output["history"]["train.Probe.value"] == [4.0]  # two batches, summed per phase


def test_a_module_that_swaps_the_model_is_refused_with_the_reason():
    with pytest.raises(ModuleRequirementError, match="must hand back the model"):
        _run(f"{__name__}.Swapper")
