"""DDP with gloo on CPU: two real processes against one with the same global batch."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from nntransfer.configs import TrainerConfig
from nntransfer.datasets.digits import digits_dataset_fn
from nntransfer.datasets.file_rows import FileRows
from nntransfer.datasets.loaders import build_image_loaders
from nntransfer.datasets.selection import stratified_split
from nntransfer.errors import ConfigError, TrainingError
from nntransfer.models.mlp import mlp_model_fn
from nntransfer.trainer.distributed import ShardedBatchSampler, part
from nntransfer.trainer.loop import Loop
from nntransfer.trainer.standard import standard_trainer

pytestmark = pytest.mark.slow  # each run starts a second Python process

STANDARD = "nntransfer.trainer.standard.standard_trainer"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _train(strategy=None, transfer_data=None, **options):
    # 1077 training samples: the last batch (27) splits 14 / 13
    loaders = digits_dataset_fn(0, batch_size=50, transfer_data=transfer_data)
    model = mlp_model_fn(loaders, 0, hidden_sizes=[32])
    devices = 2 if strategy else None
    return standard_trainer(model, loaders, 0, device="cpu", strategy=strategy, devices=devices, **options)


def _assert_same_run(single, ddp, tolerance=1e-5):
    (score1, output1, state1), (score2, output2, state2) = single, ddp
    assert score1 == pytest.approx(score2, abs=1e-9)
    history1, history2 = output1["history"], output2["history"]
    assert history1.keys() == history2.keys()
    for name in history1:
        assert np.allclose(np.asarray(history1[name], float), np.asarray(history2[name], float), rtol=tolerance), name
    assert output1["final"] == pytest.approx(output2["final"], rel=tolerance)
    assert output1["optimizer_steps"] == output2["optimizer_steps"]
    for name in state1:
        assert torch.allclose(state1[name], state2[name], atol=tolerance), name


def test_two_processes_train_what_one_process_trains_with_the_same_global_batch(single_thread):
    """Early stopping decides from reduced metrics; distillation's and clipping's sums are reduced too."""
    teacher = np.random.default_rng(0).normal(size=(1077, 10)).astype(np.float32)
    options = dict(
        epochs=4, optimizer="sgd", lr=0.1, optimizer_options={"momentum": 0.9},
        transfer_data={"train": {"logits": teacher}},
        modules={
            "early_stopping": {"objective": "validation.accuracy", "patience": 2, "lr_decay_steps": 1},
            "distillation": {"alpha": 0.5, "temperature": 2.0},
            "grad_clip": {"max_norm": 1.0},
        },
    )
    _assert_same_run(_train(**options), _train(strategy="ddp", **options))


def test_unfreezing_during_training_exchanges_the_new_gradients(single_thread):
    """finetuning unfreezes the backbone at epoch 2: the DDP model is rebuilt with its parameters."""
    options = dict(
        epochs=3, optimizer="sgd", lr=0.05,
        modules={"finetuning": {"head": "classifier", "unfreeze_at_epoch": 2, "unfreeze_lr_factor": 0.5}},
    )
    _assert_same_run(_train(**options), _train(strategy="ddp", **options))


def test_every_rank_evaluates_with_rank_0s_batchnorm_statistics(single_thread):
    """The final metrics, reduced over both ranks' halves, are those of the model rank 0 returns."""
    loaders = digits_dataset_fn(0, batch_size=50)
    model = mlp_model_fn(loaders, 0, hidden_sizes=[32], batch_norm=True)
    _, output, state = standard_trainer(model, loaders, 0, epochs=2, device="cpu", strategy="ddp", devices=2,
                                        validate_every=0)
    returned = mlp_model_fn(loaders, 0, hidden_sizes=[32], batch_norm=True)
    returned.load_state_dict(state)
    alone = Loop(returned, loaders, epochs=0, device="cpu")
    expected = {**alone.evaluate("validation"), **alone.evaluate("test")}
    assert output["final"] == pytest.approx(expected, rel=1e-6)


def test_a_failing_rank_ends_the_run_with_its_traceback(tmp_path):
    rows = 40
    (tmp_path / "images.bin").write_bytes(np.zeros((rows - 1, 1, 4, 4), np.uint8).tobytes())  # one row short
    labels = np.arange(rows) % 2
    _, validation, _ = stratified_split(labels, [0.25, 0.25], 0)
    # The missing file row becomes the last validation sample, which rank 1 reads (its half of the last batch).
    order = np.arange(rows)
    order[[validation[-1], rows - 1]] = order[[rows - 1, validation[-1]]]
    images = FileRows(tmp_path / "images.bin", offset=0, count=rows, row_shape=(1, 4, 4), dtype=np.uint8)[order]
    loaders = build_image_loaders(0, images, labels, scale=1 / 255, batch_size=8, normalize=False,
                                  validation_fraction=0.25, test_fraction=0.25)
    model = mlp_model_fn(loaders, 0, hidden_sizes=[4])
    with pytest.raises(TrainingError, match="ddp rank 1 failed") as error:
        standard_trainer(model, loaders, 0, epochs=1, device="cpu", strategy="ddp", devices=2)
    assert "truncated" in str(error.value)


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"strategy": "ddp"}, "needs devices=<number of processes>"),
        ({"devices": 2}, "needs strategy='ddp'"),
        ({"strategy": "ddp", "devices": 0}, "number of processes >= 1"),
        ({"strategy": "ddp", "devices": 2, "nan_policy": "skip"}, "nan_policy='skip' cannot run under ddp"),
    ],
)
def test_bad_options_are_refused_with_the_way_out(options, fragment):
    loaders = digits_dataset_fn(0, class_range=[0, 1])
    with pytest.raises((ConfigError, TrainingError), match=fragment):
        standard_trainer(mlp_model_fn(loaders, 0), loaders, 0, epochs=1, device="cpu", **options)


@pytest.mark.parametrize("size, world", [(10, 2), (9, 2), (7, 3), (2, 4)])
def test_the_ranks_parts_make_up_each_batch_in_order(size, world):
    parts = [list(range(size))[part(size, rank, world)] for rank in range(world)]
    assert sum(parts, []) == list(range(size))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_sharded_batches_leave_out_a_training_batch_smaller_than_the_world():
    batches = torch.utils.data.BatchSampler(range(21), batch_size=10, drop_last=False)  # 10, 10, 1
    train = [ShardedBatchSampler(batches, rank, 2, training=True) for rank in range(2)]
    evaluation = [ShardedBatchSampler(batches, rank, 2, training=False) for rank in range(2)]
    assert [list(s) for s in train] == [[[0, 1, 2, 3, 4], [10, 11, 12, 13, 14]], [[5, 6, 7, 8, 9], [15, 16, 17, 18, 19]]]
    assert [len(s) for s in train] == [2, 2]
    assert [len(list(s)) for s in evaluation] == [len(s) for s in evaluation] == [3, 2]


def test_new_trainer_options_leave_existing_hashes_alone():
    plain = TrainerConfig.for_fn(STANDARD, epochs=3)
    assert "strategy" not in plain.to_dict() and "devices" not in plain.to_dict()
    ddp = TrainerConfig.for_fn(STANDARD, epochs=3, strategy="ddp", devices=2)
    assert ddp.to_dict()["strategy"] == "ddp" and ddp.hash != plain.hash
    with pytest.raises(ConfigError, match="strategy"):
        TrainerConfig.for_fn(STANDARD, strategy="dpp")


def _resumable_run(folder, epochs):
    loaders = digits_dataset_fn(0, batch_size=50)
    model = mlp_model_fn(loaders, 0, hidden_sizes=[64])
    _, output, state = standard_trainer(
        model, loaders, 0, epochs=epochs, device="cpu", strategy="ddp", devices=2, lr=1e-2,
        modules={"checkpointing": {"folder": str(folder)}},
    )
    return output["history"]["train.loss"], state


RESUMABLE = """
import json, sys, torch
from tests.unit.trainer.test_distributed import _resumable_run

if __name__ == "__main__":
    torch.set_num_threads(1)
    losses, state = _resumable_run(sys.argv[1], int(sys.argv[2]))
    torch.save(state, sys.argv[1] + "/result.pt")
    print(json.dumps(losses))
"""


def _children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _running(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _script(folder, epochs):
    return [sys.executable, "-c", RESUMABLE, str(folder), str(epochs)]


def test_killed_rank_0_takes_its_ranks_along_and_the_run_resumes_to_the_same_result(tmp_path, single_thread):
    epochs = 8
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    whole.mkdir()
    cut.mkdir()
    expected_losses, expected_state = _resumable_run(whole, epochs)

    process = subprocess.Popen(_script(cut, epochs), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    deadline = time.monotonic() + 300
    while not any(cut.glob("last-00000[2-9].pt")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    ranks = _children(process.pid)
    assert ranks
    process.send_signal(signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 60
    while any(_running(pid) for pid in ranks) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_running(pid) for pid in ranks), "ranks outlived their rank 0"
    assert not (cut / "result.pt").exists()

    resumed = subprocess.run(_script(cut, epochs), capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads(resumed.stdout.splitlines()[-1]) == expected_losses
    got = torch.load(cut / "result.pt")
    assert all(torch.equal(expected_state[name], got[name]) for name in expected_state)
