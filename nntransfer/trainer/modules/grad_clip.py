"""Gradient clipping by global norm or by value, once per optimizer step.

Clipping runs only on batches that end in an optimizer step, so with gradient
accumulation it sees the summed gradient.  With fp16 AMP the loop unscales the
gradients before ``post_backward``, so the threshold is in true units.  The
pre-clipping norm is recorded as ``train.grad_norm`` (epoch mean) without a
device sync.
"""

import torch

from nntransfer.errors import ConfigError
from nntransfer.trainer.module import MainLoopModule


class GradClip(MainLoopModule):
    name = "grad_clip"
    order = 300
    added_metrics = ("grad_norm",)

    def __init__(self, max_norm: float | None = None, max_value: float | None = None, norm_type: float = 2.0):
        if (max_norm is None) == (max_value is None):
            raise ConfigError("grad_clip: give exactly one of max_norm or max_value.")
        if (max_norm if max_norm is not None else max_value) <= 0:
            raise ConfigError("grad_clip: the threshold must be > 0.")
        self.max_norm = max_norm
        self.max_value = max_value
        self.norm_type = norm_type

    def post_backward(self, state):
        if not state.is_step:
            return
        params = [p for p in state.model.parameters() if p.grad is not None]
        if not params:
            return
        if self.max_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, self.max_norm, norm_type=self.norm_type)
            state.accumulate("grad_norm", norm)
        else:
            torch.nn.utils.clip_grad_value_(params, self.max_value)
