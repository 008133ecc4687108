"""GPU speed options that cost something, so a run asks for them: channels_last, torch.compile, cuDNN autotuning.

What every run gets already: batches are copied to a CUDA device with
``non_blocking=True`` (pinned by the loaders' ``pin_memory``), and mixed
precision is the trainer's ``amp`` option (``"fp16"`` with a gradient
scaler, ``"bf16"``).  This module adds, each off by default:

* ``channels_last``: the model's weights and every 4-d input batch in NHWC
  memory order, which convolutions on tensor cores (under fp16/bf16) run
  faster; on the CPU, or for models without convolutions, it gains little;
* ``compile``: ``torch.compile`` of the model, in place
  (``nn.Module.compile``), so its state_dict keeps its names and checkpoints
  load either way; ``True`` or the keywords of ``torch.compile``
  (``{"mode": "max-autotune"}``).  The first batches pay for the compilation,
  so it pays off in long runs; the model stays compiled after the run;
* ``cudnn_benchmark``: cuDNN tries its convolution algorithms for each new
  input shape and keeps the fastest, worth it when shapes do not change
  between batches; the global setting is restored when the run ends.
"""

import torch

from nntransfer.errors import ConfigError
from nntransfer.trainer.module import MainLoopModule


class Performance(MainLoopModule):
    name = "performance"
    order = 20

    @classmethod
    def check_options(cls, options):
        """``compile`` is a switch or torch.compile's keywords."""
        if not isinstance(options["compile"], (bool, dict)):
            raise ConfigError(
                f"performance: compile must be true, false or torch.compile's keywords as a dict, "
                f"got {options['compile']!r}."
            )

    def __init__(self, channels_last: bool = False, compile: bool | dict = False, cudnn_benchmark: bool = False):
        self.check_options({"compile": compile})
        self.channels_last = bool(channels_last)
        self.compile = compile
        self.cudnn_benchmark = bool(cudnn_benchmark)
        self._saved_benchmark = None

    def setup(self, state):
        if self.cudnn_benchmark:
            self._saved_benchmark = torch.backends.cudnn.benchmark
            torch.backends.cudnn.benchmark = True
        if self.channels_last:
            state.model.to(memory_format=torch.channels_last)
        if self.compile:
            state.model.compile(**({} if self.compile is True else self.compile))

    def pre_forward(self, state):
        inputs = state.inputs
        if self.channels_last and isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
            state.inputs = inputs.contiguous(memory_format=torch.channels_last)

    def teardown(self, state):
        if self._saved_benchmark is not None:
            torch.backends.cudnn.benchmark = self._saved_benchmark
            self._saved_benchmark = None
