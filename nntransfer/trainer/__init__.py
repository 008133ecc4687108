"""The modular trainer: a lean loop, one shared State, main-loop modules.

Names are imported on first use, so importing a submodule (as main-loop
modules do) does not pull in the loop and its entry points.
"""

from importlib import import_module

_LAZY = {
    "Loop": "nntransfer.trainer.loop",
    "State": "nntransfer.trainer.state",
    "Event": "nntransfer.trainer.events",
    "MainLoopModule": "nntransfer.trainer.module",
    "SkipBatch": "nntransfer.trainer.control",
    "SkipOptimizerStep": "nntransfer.trainer.control",
    "StopEpoch": "nntransfer.trainer.control",
    "StopTraining": "nntransfer.trainer.control",
    "CheckpointStore": "nntransfer.trainer.checkpoints",
    "LocalCheckpointStore": "nntransfer.trainer.checkpoints",
    "MemoryCheckpointStore": "nntransfer.trainer.checkpoints",
    "standard_trainer": "nntransfer.trainer.standard",
    "generate_transfer_data": "nntransfer.trainer.generate",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nntransfer.trainer' has no attribute {name!r}")
