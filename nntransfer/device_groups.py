"""``nntransfer worker --devices``: which GPUs the worker processes get.

``--devices 0,1,2,3`` (or ``auto``: every GPU this process sees) is shared
out among the ``--jobs`` worker processes in equal, contiguous groups: one
GPU each by default, all of them with ``--jobs 1`` (a worker whose DDP steps,
``strategy="ddp"`` with ``devices="auto"``, then train on every GPU).  Each
worker process sees only its group, through ``CUDA_VISIBLE_DEVICES``, set
before it touches CUDA; inside it the GPUs are ``cuda:0``, ``cuda:1``, ...

Numbers count the GPUs this process sees: under a scheduler that already set
``CUDA_VISIBLE_DEVICES=4,5``, ``--devices 1`` is physical GPU 5.  Without a
visible GPU the numbers cannot be checked; the workers then train on the CPU
and a warning says so.
"""

from __future__ import annotations

import logging
import os

from .errors import ConfigError

log = logging.getLogger(__name__)
VARIABLE = "CUDA_VISIBLE_DEVICES"


def _visible() -> list[str] | None:
    """The GPUs this process sees, as CUDA_VISIBLE_DEVICES entries; None when it does not say and torch finds none."""
    listed = os.environ.get(VARIABLE)
    if listed is not None:
        return [entry.strip() for entry in listed.split(",") if entry.strip()]
    import torch

    count = torch.cuda.device_count()  # NVML's count: it does not start CUDA in this process
    return [str(index) for index in range(count)] if count else None


def parse_devices(text: str) -> list[str]:
    """``"auto"`` or ``"0,2"`` as CUDA_VISIBLE_DEVICES entries, checked against the GPUs this process sees."""
    visible = _visible()
    if text.strip() == "auto":
        if not visible:
            raise ConfigError("--devices auto finds no GPU here; leave --devices out to train on the CPU.")
        return visible
    try:
        numbers = [int(entry) for entry in text.split(",")]
    except ValueError:
        raise ConfigError(f"--devices must be 'auto' or GPU numbers such as 0,1,2,3; got {text!r}.") from None
    if len(set(numbers)) != len(numbers) or min(numbers) < 0:
        raise ConfigError(f"--devices lists each GPU once, by a number >= 0; got {text!r}.")
    if not visible:
        log.warning("--devices %s: this process sees no GPU, so the workers will train on the CPU.", text)
        return [str(number) for number in numbers]
    unknown = [number for number in numbers if number >= len(visible)]
    if unknown:
        raise ConfigError(f"--devices names GPU(s) {unknown}, but this process sees {len(visible)}: 0..{len(visible) - 1}.")
    return [visible[number] for number in numbers]


def share_devices(devices: list[str], jobs: int) -> list[str]:
    """``devices`` in ``jobs`` equal contiguous groups, each a CUDA_VISIBLE_DEVICES value."""
    if len(devices) % jobs:
        raise ConfigError(
            f"{len(devices)} GPU(s) cannot be shared equally among --jobs {jobs}; use a number of jobs that divides "
            f"{len(devices)} (1: one worker with every GPU, {len(devices)}: one GPU per worker)."
        )
    size = len(devices) // jobs
    return [",".join(devices[start : start + size]) for start in range(0, len(devices), size)]


def pin(group: str) -> None:
    """Make this process see only the GPUs ``group``; call it before anything starts CUDA."""
    os.environ[VARIABLE] = group
