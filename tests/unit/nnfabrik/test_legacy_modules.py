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


class Counter:
    """Counts the samples of every pass in sinzlab's tracker, as its monitoring modules did.

    The labels are 1 in the test set and 0 elsewhere, so the normalised
    ``mean_label`` tells the passes apart; ``post_epoch`` logs once per pass.
    """

    def __init__(self, trainer):
        self.tracker = trainer.tracker
        self.mode = None

    def pre_epoch(self, model, mode, **options):
        self.mode = mode

    def pre_forward(self, model, inputs, task_key, shared_memory):
        return model, inputs

    def post_forward(self, outputs, loss, targets, **shared_memory):
        self.tracker.log_objective(len(targets), (self.mode, "Counter", "samples"))
        self.tracker.log_objective(targets.sum(), (self.mode, "Mean", "label"))
        self.tracker.log_objective(len(targets), (self.mode, "Mean", "normalization"))
        return outputs, loss, targets

    def post_backward(self, model):
        pass

    def post_optimizer(self, model):
        pass

    def post_epoch(self, model):
        self.tracker.log_objective(1.0, (self.mode, "Counter", "passes"))


def test_the_test_phase_after_finish_is_recorded_in_the_final_metrics():
    def loader(n, label):
        return DataLoader(TensorDataset(torch.randn(n, 4), torch.full((n,), label)), batch_size=4)

    loaders = {"train": loader(8, 0), "validation": loader(6, 0), "test": loader(10, 1)}
    modules = {"nntransfer.legacy.modules.LegacyModules": {"modules": [f"{__name__}.Counter"]}}
    _, output, _ = standard_trainer(torch.nn.Linear(4, 2), loaders, seed=0, epochs=2, modules=modules)
    final, history = output["final"], output["history"]
    assert final["test.Counter.samples"] == 10 and final["test.Mean.label"] == 1.0  # the test pass, normalised
    assert final["test.Counter.passes"] == 1.0  # post_epoch ran at the end of the test pass
    assert final["validation.Counter.samples"] == 6 and final["validation.Mean.label"] == 0.0
    assert history["train.Counter.samples"] == [8, 8] and history["validation.Counter.samples"] == [6, 6]
    assert "test.Counter.samples" not in history  # the final evaluation is not an epoch
