import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nntransfer.errors import ConfigError, ModuleRequirementError
from nntransfer.trainer.loop import Loop
from nntransfer.trainer.module import MainLoopModule
from nntransfer.trainer.modules.finetuning import FineTuning
from nntransfer.transfer.freezing import is_kept_in_eval

torch.set_num_threads(1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8))
        self.classifier = nn.Linear(8, 3)

    def forward(self, x):
        return self.classifier(self.features(x))


def loaders(n=48):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 5, generator=g) * 2 + 1
    y = torch.randint(0, 3, (n,), generator=g)
    return {
        "train": DataLoader(TensorDataset(x, y), batch_size=12, shuffle=True),
        "validation": DataLoader(TensorDataset(x[:12], y[:12]), batch_size=12),
    }


def snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def run(epochs, modules, optimizer="adamw", **kw):
    model = Net()
    trainer = Loop(model, loaders(), epochs=epochs, lr=0.01, optimizer=optimizer,
                   optimizer_options={"weight_decay": 0.1}, device="cpu", seed=0,
                   modules=modules, **kw)
    return model, trainer


def test_frozen_backbone_stays_bit_identical_while_head_trains():
    model, trainer = run(3, [FineTuning(head="classifier")])
    backbone, head = snapshot(model.features), snapshot(model.classifier)
    trainer.fit()
    for name, value in model.features.state_dict().items():
        assert torch.equal(value, backbone[name]), name  # BatchNorm statistics included
    assert not torch.equal(model.classifier.weight, head["weight"])


def test_unfreeze_at_epoch_trains_backbone_with_its_own_rate():
    model, trainer = run(1, [FineTuning(freeze="features", unfreeze_at_epoch=2, unfreeze_lr_factor=0.5)])
    trainer.fit()
    frozen_after_one = snapshot(model.features)
    assert torch.equal(frozen_after_one["0.weight"], Net().features[0].weight)

    model, trainer = run(3, [FineTuning(freeze="features", unfreeze_at_epoch=2, unfreeze_lr_factor=0.5)])
    trainer.fit()
    assert not torch.equal(model.features[0].weight, frozen_after_one["0.weight"])
    assert not torch.equal(model.features[1].running_mean, frozen_after_one["1.running_mean"])
    assert all(p.requires_grad for p in model.parameters())
    groups = trainer.state.optimizer.param_groups
    rates = sorted((g["finetuning_group"], g["lr"]) for g in groups)
    assert rates == [("frozen", 0.005), ("trainable", 0.01)]


def test_discriminative_rates_and_group_layout():
    model, trainer = run(1, [FineTuning(head="classifier", lr_factors={"features.3": 0.2, "classifier": 2.0},
                                        unfreeze_lr_factor=0.1)])
    trainer.fit()
    groups = trainer.state.optimizer.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    layout = [(g["finetuning_group"], g["lr"], sorted(names[id(p)] for p in g["params"])) for g in groups]
    assert layout == [
        ("frozen", pytest.approx(0.001), ["features.0.bias", "features.0.weight",
                                          "features.1.bias", "features.1.weight"]),
        ("frozen", pytest.approx(0.002), ["features.3.bias", "features.3.weight"]),
        ("trainable", pytest.approx(0.02), ["classifier.bias", "classifier.weight"]),
    ]


def test_history_records_each_group_rate_and_lr_is_the_rate_of_the_part_that_trains_from_the_start():
    _, trainer = run(2, [FineTuning(head="classifier", unfreeze_at_epoch=2)], optimizer="sgd")
    history = trainer.fit()
    assert history["lr"] == pytest.approx([0.01, 0.01])
    assert history["lr.head"] == pytest.approx([0.01, 0.01])
    assert history["lr.backbone"] == pytest.approx([0.001, 0.001])

    _, trainer = run(1, [FineTuning(head="classifier", lr_factors={"features.3": 0.2, "classifier": 2.0})])
    history = trainer.fit()
    assert {name: values for name, values in history.items() if name.startswith("lr")} == {
        "lr": [pytest.approx(0.02)],
        "lr.backbone": [pytest.approx(0.001)],
        "lr.backbone@0.2": [pytest.approx(0.002)],
        "lr.head@2": [pytest.approx(0.02)],
    }


def test_train_batchnorm_keeps_batchnorm_learning():
    model, trainer = run(2, [FineTuning(freeze="features", train_batchnorm=True)])
    before = snapshot(model.features)
    trainer.fit()
    after = model.features.state_dict()
    assert torch.equal(after["0.weight"], before["0.weight"])
    assert not torch.equal(after["1.weight"], before["1.weight"])
    assert not torch.equal(after["1.running_mean"], before["1.running_mean"])


def test_batchnorm_without_affine_parameters_updates_its_statistics_after_unfreezing():
    def train(epochs):
        model = Net()
        model.features[1] = nn.BatchNorm1d(8, affine=False)
        Loop(model, loaders(), epochs=epochs, lr=0.01, device="cpu", seed=0,
             modules=[FineTuning(head="classifier", unfreeze_at_epoch=2)]).fit()
        return model.features[1]

    fresh = nn.BatchNorm1d(8, affine=False)
    frozen = train(1)
    assert torch.equal(frozen.running_mean, fresh.running_mean) and is_kept_in_eval(frozen)
    unfrozen = train(3)
    assert not is_kept_in_eval(unfrozen)
    assert not torch.equal(unfrozen.running_mean, fresh.running_mean)


def test_resume_across_unfreeze_matches_uninterrupted_run(tmp_path):
    def modules(folder):
        return {"finetuning": {"head": "classifier", "unfreeze_at_epoch": 3},
                "checkpointing": {"folder": str(folder)}}

    full, trainer = run(4, modules(tmp_path / "full"))
    trainer.fit()

    _, first = run(2, modules(tmp_path / "split"))
    first.fit()
    saved_groups = [len(g["params"]) for g in first.state.optimizer.state_dict()["param_groups"]]
    resumed, second = run(4, modules(tmp_path / "split"))
    second.fit()
    assert second.module("checkpointing").resumed_from == 2
    assert [len(g["params"]) for g in second.state.optimizer.param_groups] == saved_groups
    for name, value in full.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name


def test_setup_and_option_errors():
    with pytest.raises(ConfigError, match="either freeze"):
        FineTuning()
    with pytest.raises(ConfigError, match="either freeze"):
        FineTuning(freeze="features", head="classifier")
    with pytest.raises(ConfigError, match="unfreeze_at_epoch"):
        FineTuning(head="classifier", unfreeze_at_epoch=0)
    with pytest.raises(ConfigError, match="lr_factors"):
        FineTuning(head="classifier", lr_factors={"features": -1})
    _, trainer = run(1, [FineTuning(head="fc")])
    with pytest.raises(ConfigError, match="matches no parameter"):
        trainer.fit()


def test_refuses_param_groups_set_by_another_module():
    class Groups(MainLoopModule):
        name = "groups"
        order = 10

        def setup(self, state):
            state.param_groups = [{"params": list(state.model.parameters())}]

    _, trainer = run(1, [Groups(), FineTuning(head="classifier")])
    with pytest.raises(ModuleRequirementError, match="already set state.param_groups"):
        trainer.fit()
