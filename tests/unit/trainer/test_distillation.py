import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from nntransfer.errors import ConfigError, ModuleRequirementError, TrainingError
from nntransfer.trainer.loop import Loop
from nntransfer.trainer.modules.distillation import (
    KnowledgeDistillation,
    distillation_loss,
    peek_train_batch,
)
from nntransfer.trainer.state import State

torch.set_num_threads(1)


class WithLogits(Dataset):
    """Samples carry their teacher logits as extras, as transferred data does."""

    def __init__(self, x, y, logits):
        self.x, self.y, self.logits = x, y, logits

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i], {"logits": self.logits[i]}


def data(n=64, classes=3):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 5, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return x, y


def student():
    torch.manual_seed(1)
    return nn.Linear(5, 3)


def test_loss_matches_hinton_formula():
    s = torch.randn(4, 3)
    t = torch.randn(4, 3)
    T = 3.0
    p = F.softmax(t / T, 1)
    expected = (p * (p.log() - F.log_softmax(s / T, 1))).sum(1).mean() * T * T
    assert torch.allclose(distillation_loss(s, t, T), expected, atol=1e-6)
    assert distillation_loss(t, t, T).abs() < 1e-6


def test_student_learns_teacher_logits_from_batches():
    x, y = data()
    torch.manual_seed(5)
    teacher = nn.Linear(5, 3)
    with torch.no_grad():
        logits = teacher(x) * 3
    loader = DataLoader(WithLogits(x, y, logits), batch_size=16, shuffle=True)
    trainer = Loop(
        student(), {"train": loader}, epochs=15, lr=0.05, device="cpu", seed=0,
        modules=[KnowledgeDistillation(temperature=2.0, alpha=1.0)],
    )
    history = trainer.fit()
    kd = history["train.distillation_loss"]
    assert kd[-1] < 0.5 * kd[0]
    assert history["train.loss"][-1] == pytest.approx(kd[-1], rel=1e-5)  # alpha=1: soft term only


def test_alpha_mixes_hard_and_soft_loss():
    x, y = data(8)
    state = State(model=student(), loaders={})
    state.phase = "train"
    state.outputs = state.model(x)
    hard = F.cross_entropy(state.outputs, y)
    teacher_logits = torch.randn(8, 3)
    state.loss = hard
    state.extras = {"logits": teacher_logits}
    module = KnowledgeDistillation(temperature=4.0, alpha=0.25)
    module.post_forward(state)
    expected = 0.75 * hard + 0.25 * distillation_loss(state.outputs, teacher_logits, 4.0)
    assert torch.allclose(state.loss, expected)


def test_frozen_teacher_model_is_used_and_not_trained():
    x, y = data()
    torch.manual_seed(7)
    teacher = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    teacher.train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    trainer = Loop(
        student(), {"train": loader}, epochs=2, lr=0.05, device="cpu", seed=0,
        modules=[KnowledgeDistillation(teacher=teacher, alpha=0.5)],
    )
    history = trainer.fit()
    assert len(history["train.distillation_loss"]) == 2
    assert not teacher.training
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_setup_fails_without_logits_or_teacher():
    x, y = data()
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    trainer = Loop(student(), {"train": loader}, epochs=1, device="cpu",
                   modules={"distillation": {"temperature": 2.0}})
    with pytest.raises(ModuleRequirementError, match="no teacher logits.*transfer_data"):
        trainer.fit()


def test_mismatched_classes_fail_clearly():
    x, y = data(16)
    loader = DataLoader(WithLogits(x, y, torch.randn(16, 10)), batch_size=8)
    trainer = Loop(student(), {"train": loader}, epochs=1, device="cpu",
                   modules=[KnowledgeDistillation()])
    with pytest.raises(TrainingError, match=r"shape \(8, 10\).*\(8, 3\)"):
        trainer.fit()


def test_peek_does_not_change_the_shuffle_order():
    x, y = data()
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    torch.manual_seed(3)
    peek_train_batch(loader)
    after_peek = torch.rand(3)
    torch.manual_seed(3)
    assert torch.equal(after_peek, torch.rand(3))


def test_bad_options():
    with pytest.raises(ConfigError, match="temperature"):
        KnowledgeDistillation(temperature=0)
    with pytest.raises(ConfigError, match="alpha"):
        KnowledgeDistillation(alpha=1.5)
    with pytest.raises(ConfigError, match="phases"):
        KnowledgeDistillation(phases=["training"])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_teacher_and_batch_logits_on_cuda():
    x, y = data()
    torch.manual_seed(7)
    teacher = nn.Linear(5, 3)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    history = Loop(student(), {"train": loader}, epochs=1, device="cuda",
                   modules=[KnowledgeDistillation(teacher=teacher)]).fit()
    assert next(teacher.parameters()).device.type == "cuda"
    with torch.no_grad():
        logits = teacher.cpu()(x)
    loader = DataLoader(WithLogits(x, y, logits), batch_size=16)
    again = Loop(student(), {"train": loader}, epochs=1, device="cuda",
                 modules=[KnowledgeDistillation()]).fit()
    assert again["train.distillation_loss"][0] == pytest.approx(history["train.distillation_loss"][0], rel=1e-4)


def test_peek_leaves_the_loaders_own_generators_alone():
    x, y = data()

    def loader():
        return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True,
                          generator=torch.Generator().manual_seed(5))

    peeked = loader()
    peek_train_batch({"task": peeked})
    assert [b[1].tolist() for b in peeked] == [b[1].tolist() for b in loader()]
