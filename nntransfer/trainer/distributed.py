"""Distributed data parallel: one training on N processes, equal to one process with the same global batch.

``standard_trainer(..., strategy="ddp", devices=N)`` runs one training on N
processes with ``torch.distributed``: NCCL on GPUs (rank r on ``cuda:r`` of
the devices the process sees), gloo on CPU.  The calling process is rank 0.
It keeps the trainer's ``cb``, so only it renews the job, writes checkpoints
and returns the result; it spawns ranks 1..N-1, hands them the model, the
loaders and the options (a deep copy each, taken before rank 0 starts training,
so no rank sees another's tensors change), and
waits for them at the end.  A rank that fails ends the run with its
traceback; a rank whose parent disappears (a killed worker) exits.

Why the result equals single-process training with the same batch size:

* Batches: :class:`ShardedBatchSampler` iterates the *original* loader's
  batch sampler (every rank received the same generator state) and yields
  rank r's contiguous part of each global batch, so the ranks' parts of a
  step make up the single-process batch, in the single-process order.
  torch's ``DistributedSampler`` deals out every N-th sample of a permutation
  of its own and pads with repeated samples, which gives other steps.
* Gradients: DDP averages the ranks' gradients; each rank's loss is weighted
  by ``N * b_r / B`` for its ``b_r`` of the step's ``B`` samples, so the
  average is the gradient of the mean loss over the global batch also when
  ``B`` does not split evenly.  A last training batch with fewer samples
  than ranks is left out (logged): a rank without samples cannot take part.
* Metrics: sums of losses, correct predictions, sample counts and what
  modules accumulate are summed over the ranks before an epoch's metrics are
  formed, and validation and test sets are split among the ranks, so every
  rank sees the same metrics and the modules that decide from them (early
  stopping, the best checkpoint) decide alike.
* State: every rank seeds alike, and the ranks resume from the checkpoint
  rank 0 resumes from (rank 0 reads it and hands it over); ranks other than
  0 write no checkpoint and call no ``cb``.

What stays per rank: BatchNorm normalises with each rank's part of the batch
(running statistics are rank 0's: every rank evaluates with rank 0's
buffers), and random draws in the model or in modules (dropout, noise)
come from each rank's own generators.
``nan_policy="skip"`` is refused, since one rank skipping a batch that the
others train on would leave the gradient exchange waiting; a module that
skips batches must decide alike on every rank.  A script that starts a DDP
run must guard its top level with ``if __name__ == "__main__":``, as for any
spawned process.
"""

from __future__ import annotations

import copy
import datetime
import logging
import os
import sys
import threading
import time
import traceback

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler

from nntransfer.errors import ConfigError, TrainingError
from nntransfer.trainer.checkpoints import LocalCheckpointStore, MemoryCheckpointStore, callback_store

log = logging.getLogger(__name__)

STRATEGIES = ("ddp",)
TIMEOUT = datetime.timedelta(minutes=30)
"""How long a collective operation waits for the other ranks before failing."""
JOIN_SECONDS = 120
"""How long rank 0 waits for the other ranks to exit after the training."""


def part(size: int, rank: int, world_size: int) -> slice:
    """Rank ``rank``'s contiguous share of ``size`` items; the first ``size % world_size`` ranks get one more."""
    base, extra = divmod(size, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))


class ShardedBatchSampler(Sampler):
    """This rank's part of every batch of ``batch_sampler`` (see the module doc).

    ``training``: a batch with fewer samples than ranks is left out, since
    every rank must take part in each step; in evaluation such a batch is
    read by the ranks it reaches.  ``weights[i]`` is the loss weight of the
    i-th batch of the current pass, ``N * b_r / B``.
    """

    def __init__(self, batch_sampler, rank: int, world_size: int, training: bool):
        self.batch_sampler = batch_sampler
        self.rank, self.world_size, self.training = rank, world_size, training
        self.weights: list[float] = []

    def __iter__(self):
        self.weights = []
        for batch in self.batch_sampler:
            batch = list(batch)
            if self.training and len(batch) < self.world_size:
                log.info(
                    "ddp: the last training batch has %d samples for %d ranks and is left out of this epoch.",
                    len(batch), self.world_size,
                )
                continue
            mine = batch[part(len(batch), self.rank, self.world_size)]
            if mine:
                self.weights.append(self.world_size * len(mine) / len(batch))
                yield mine

    def __len__(self) -> int:
        sizes = _batch_sizes(self.batch_sampler)
        if self.training:
            return sum(1 for size in sizes if size >= self.world_size)
        return sum(1 for size in sizes if part(size, self.rank, self.world_size).stop > part(size, self.rank, self.world_size).start)


def _batch_sizes(batch_sampler) -> list[int]:
    """Sizes of the batches a (torch) BatchSampler yields, without drawing from its generator."""
    count, size = len(batch_sampler.sampler), batch_sampler.batch_size
    full, rest = divmod(count, size)
    return [size] * full + ([rest] if rest and not batch_sampler.drop_last else [])


class Distributed:
    """This process's place in a DDP run and the collective steps the loop takes.

    The loop (:class:`~nntransfer.trainer.loop.Loop`) shards its loaders
    with :meth:`shard`, runs training batches through :meth:`wrap`'s model
    with :meth:`loss_weight`, evaluates after :meth:`sync_buffers`, and sums
    its tallies with :meth:`reduce_tally` and :meth:`reduce_sums` before an
    epoch's metrics are formed.
    """

    def __init__(self, rank: int, world_size: int, device: torch.device):
        self.rank, self.world_size, self.device = rank, world_size, device
        self._collective_device = device if dist.get_backend() == "nccl" else torch.device("cpu")
        self._train_sampler = None
        self._wrapped = None
        self._trainable = None

    def shard(self, loaders: dict) -> dict:
        """Each split's loader, reading this rank's part of every batch."""
        sharded = {}
        for split, loader in loaders.items():
            if isinstance(loader, dict) or not isinstance(loader, DataLoader) or loader.batch_size is None:
                raise ConfigError(
                    f"strategy='ddp' needs one DataLoader with a batch_size per split; the {split!r} split has "
                    f"{type(loader).__name__}{' of data keys' if isinstance(loader, dict) else ''}."
                )
            sampler = ShardedBatchSampler(loader.batch_sampler, self.rank, self.world_size, split == "train")
            if split == "train":
                self._train_sampler = sampler
            sharded[split] = DataLoader(
                loader.dataset,
                batch_sampler=sampler,
                num_workers=loader.num_workers,
                collate_fn=loader.collate_fn,
                pin_memory=loader.pin_memory,
                worker_init_fn=loader.worker_init_fn,
                generator=loader.generator,
                persistent_workers=loader.persistent_workers,
                prefetch_factor=loader.prefetch_factor if loader.num_workers else None,
                timeout=loader.timeout,
                multiprocessing_context=loader.multiprocessing_context,
            )
        return sharded

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in DistributedDataParallel, built again when the set of trainable parameters changed.

        DDP exchanges the gradients of the parameters that required them when
        it was built, so unfreezing (the ``finetuning`` module) needs a new one.
        Buffers are not broadcast before every training forward (DDP's
        default, one more collective per step): training normalises with
        batch statistics, and :meth:`sync_buffers` hands rank 0's buffers to
        every rank before each evaluation instead.
        """
        trainable = tuple(name for name, parameter in model.named_parameters() if parameter.requires_grad)
        if self._wrapped is None or trainable != self._trainable:
            self._wrapped = None  # the old reducer removes its gradient hooks when it goes
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self._wrapped = DistributedDataParallel(model, device_ids=device_ids, forward_sync_buffers=False)
            self._trainable = trainable
        return self._wrapped

    def sync_buffers(self, model: torch.nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm's running statistics) to every rank, one broadcast per dtype.

        So every rank evaluates its part of a split with the model rank 0
        checkpoints and returns.
        """
        buffers = list(model.buffers())
        for dtype in sorted({buffer.dtype for buffer in buffers}, key=str):
            group = [buffer for buffer in buffers if buffer.dtype == dtype]
            flat = torch.cat([buffer.reshape(-1) for buffer in group])
            dist.broadcast(flat, src=0)
            for buffer, value in zip(group, flat.split([buffer.numel() for buffer in group])):
                buffer.copy_(value.view_as(buffer))

    def loss_weight(self, batch_index: int) -> float:
        return self._train_sampler.weights[batch_index]

    def reduce_tally(self, tally) -> None:
        """Sum a loop tally (loss sum, correct count, sample count) over the ranks, in place."""
        has_correct = tally.correct is not None
        values = torch.tensor(
            [
                float(tally.loss) if tally.loss is not None else 0.0,
                float(tally.correct) if has_correct else 0.0,
                float(tally.count),
                1.0 if has_correct else 0.0,
            ],
            dtype=torch.float64,
            device=self._collective_device,
        )
        dist.all_reduce(values)
        loss, correct, count, with_correct = values.tolist()
        tally.loss = torch.tensor(loss) if count else None
        tally.correct = torch.tensor(correct) if with_correct else None
        tally.count = int(round(count))

    def reduce_sums(self, sums: dict, prefix: str) -> None:
        """Sum the ``state.accumulate`` entries named ``prefix...`` over the ranks, in place."""
        names = sorted(name for name in sums if name.startswith(prefix))
        every = [None] * self.world_size
        dist.all_gather_object(every, names)
        names = sorted(set().union(*every))
        if not names:
            return
        values = torch.tensor(
            [[float(sums[name][0]), float(sums[name][1])] if name in sums else [0.0, 0.0] for name in names],
            dtype=torch.float64,
            device=self._collective_device,
        )
        dist.all_reduce(values)
        for name, (total, weight) in zip(names, values.tolist()):
            sums[name] = [total, weight]


def world_size_for(devices, device: torch.device) -> int:
    """The number of processes ``devices`` asks for: a number, or ``"auto"`` (every visible GPU)."""
    if devices in (None, "auto"):
        if device.type != "cuda":
            raise ConfigError("strategy='ddp' on CPU needs devices=<number of processes>, e.g. devices=2.")
        return torch.cuda.device_count()
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ConfigError(f"devices must be a number of processes >= 1 or 'auto', got {devices!r}.")
    if device.type == "cuda" and devices > torch.cuda.device_count():
        raise ConfigError(
            f"devices={devices} but this process sees {torch.cuda.device_count()} GPU(s) "
            "(CUDA_VISIBLE_DEVICES); use at most that many, or 'auto'."
        )
    return devices


def run(body, model, dataloaders, seed, cb, *, devices, device: torch.device, options: dict):
    """Run ``body(model, dataloaders, seed, cb, distributed=..., **options)`` on every rank; return rank 0's result.

    ``options`` must not hold ``device``; each rank gets its own.
    """
    world_size = world_size_for(devices, device)
    if world_size == 1:
        return body(model, dataloaders, seed, cb, distributed=None, device=str(device), **options)
    backend = "nccl" if device.type == "cuda" else "gloo"
    store = dist.TCPStore("127.0.0.1", 0, world_size, is_master=True, timeout=TIMEOUT, wait_for_workers=False)
    threads = torch.get_num_threads()
    if device.type == "cpu":  # the ranks share this process's cores
        threads = max(1, threads // world_size)
    handed_over = _resume_point(cb, options.get("modules"))
    # each rank its own copy: multiprocessing hands a tensor over in shared memory, and rank 0
    # trains its model in place while the others start
    payloads = [copy.deepcopy((body, model, dataloaders, seed, handed_over, options)) for _ in range(1, world_size)]
    context = torch.multiprocessing.get_context("spawn")
    failures = context.SimpleQueue()
    ranks = [
        context.Process(
            target=_rank_main,
            args=(rank, world_size, backend, store.port, device.type, payloads[rank - 1], threads, failures,
                  os.getpid()),
            name=f"nntransfer-ddp-rank-{rank}",
        )
        for rank in range(1, world_size)
    ]
    _start(ranks)
    own_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result = _train_rank(0, world_size, backend, store, _rank_device(device.type, 0), body,
                             (model, dataloaders, seed, cb), options)
    except BaseException as error:
        _stop(ranks)
        failure = _first_failure(failures)
        if failure is not None:
            raise TrainingError(f"ddp rank {failure[0]} failed:\n{failure[1]}") from error
        raise
    finally:
        torch.set_num_threads(own_threads)
    _join(ranks, failures)
    return result


def _start(ranks) -> None:
    """Start the ranks, their tensors handed over in files of shared memory.

    Under torch's default strategy every tensor travels as a file descriptor
    of its own; a model and its loaders hold more than the spawn launcher
    passes on.  The strategy is restored at once: it only matters while the
    arguments are pickled for the new processes.
    """
    strategy = torch.multiprocessing.get_sharing_strategy()
    torch.multiprocessing.set_sharing_strategy("file_system")
    try:
        for process in ranks:
            process.start()
    finally:
        torch.multiprocessing.set_sharing_strategy(strategy)


def _rank_device(device_type: str, rank: int) -> torch.device:
    return torch.device("cuda", rank) if device_type == "cuda" else torch.device("cpu")


def _train_rank(rank, world_size, backend, store, device, body, arguments, options):
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=TIMEOUT)
    try:
        distributed = Distributed(rank, world_size, device)
        result = body(*arguments, distributed=distributed, device=str(device), **options)
        _finish_together(store, rank, world_size)
        return result
    finally:
        dist.destroy_process_group()


def _finish_together(store, rank: int, world_size: int) -> None:
    """Return once every rank has completed its last collective, so none closes a connection another still reads.

    A barrier alone does not ensure it: a rank may leave the barrier (and
    exit, closing its gloo sockets) while another still reads the barrier's
    last message, which can then fail with a reset connection.  So each
    rank also says it is done through the TCPStore (a connection of its
    own) and waits for the others there; the barrier comes first because
    it fails at once when a rank is gone.
    """
    dist.barrier()
    store.set(f"finished/{rank}", "1")
    store.wait([f"finished/{other}" for other in range(world_size)], datetime.timedelta(seconds=JOIN_SECONDS))


def _rank_main(rank, world_size, backend, port, device_type, payload, threads, failures, parent):
    """Entry of a spawned rank: train, or report the traceback to rank 0; then leave at once.

    The rank ends with ``os._exit``, without the interpreter's teardown: its
    work is done (rank 0 returns the result, and a failure is in the queue,
    written before), while tearing down torch's C++ objects at exit can
    abort the process ("terminate called without an active exception", seen
    once on a loaded machine), which rank 0 would report as a failed rank.
    """
    os.environ["TQDM_DISABLE"] = "1"  # progress bars are rank 0's
    threading.Thread(target=_exit_without_parent, args=(parent,), daemon=True).start()
    torch.set_num_threads(threads)
    code = 0
    try:
        body, model, dataloaders, seed, handed_over, options = payload
        store = dist.TCPStore("127.0.0.1", port, world_size, is_master=False, timeout=TIMEOUT)
        cb = _RankCallback(handed_over)
        _train_rank(rank, world_size, backend, store, _rank_device(device_type, rank), body,
                    (model, dataloaders, seed, cb), options)
    except BaseException:
        failures.put((rank, traceback.format_exc()))
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_without_parent(parent: int) -> None:
    """A rank whose rank 0 is gone (killed with its worker) has nobody to train for."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _stop(ranks) -> None:
    for process in ranks:
        if process.is_alive():
            process.terminate()
    for process in ranks:
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()


def _first_failure(failures):
    return None if failures.empty() else failures.get()


def _join(ranks, failures) -> None:
    deadline = time.monotonic() + JOIN_SECONDS
    for process in ranks:
        process.join(max(0.0, deadline - time.monotonic()))
    if any(process.is_alive() for process in ranks):
        _stop(ranks)
        raise TrainingError(f"ddp ranks did not exit within {JOIN_SECONDS} s after the training ended.")
    failure = _first_failure(failures)
    if failure is not None or any(process.exitcode for process in ranks):
        rank, message = failure or (None, "no traceback")
        raise TrainingError(f"ddp rank {rank} failed after the training:\n{message}")


def _resume_point(cb, modules):
    """What the other ranks resume from: rank 0's last checkpoint (None: nothing), or no store at all.

    Returns ``(has_store, payload)``.  The ranks get a store whenever rank 0
    checkpoints, so that they resume alike and never write to rank 0's place.
    """
    store = callback_store(cb)
    if store is None:
        options = (modules or {}).get("checkpointing") if isinstance(modules, dict) else None
        folder = options.get("folder") if isinstance(options, dict) else None
        store = LocalCheckpointStore(folder) if folder else None
    if store is None:
        return (isinstance(modules, dict) and "checkpointing" in modules, None)
    return (True, store.load("last"))


class _HandedOverStore(MemoryCheckpointStore):
    """Rank 0's last checkpoint for a rank to resume from; what the rank saves is dropped (rank 0 saves)."""

    def __init__(self, payload):
        super().__init__()
        if payload is not None:
            super().save(payload["epoch"], payload)

    def save(self, epoch, payload, tags=("last",)) -> None:
        pass


class _RankCallback:
    """The ``cb`` of a rank other than 0: it brings the handed-over checkpoint store and reports nothing."""

    def __init__(self, handed_over):
        has_store, payload = handed_over
        self.checkpoint_store = _HandedOverStore(payload) if has_store else None

    def __call__(self, **_):
        pass
