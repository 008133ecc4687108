"""A per-layer summary of a model: output shapes, parameter counts, frozen or not.

Before and after a transfer step one wants to see at a glance which layers
were replaced and which are frozen.  The table follows torchinfo's layout
(``Conv2d: 2-1  [1, 64, 244, 244]  (1,792)``, a count in parentheses meaning
frozen) so it reads like the familiar tool, without depending on it.  The
totals are exact ints, so tests and reports can use them directly.
"""

from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import torch
from torch import nn

from nntransfer.errors import ConfigError

Size = Sequence[int]


@dataclass
class LayerRow:
    """One module of the model.

    ``num_params`` counts the module's own parameters (not its children's);
    ``output_shape`` is ``None`` when the module did not run in the forward
    pass, a list of ints for a tensor output, or a list of such for tuples.
    """

    name: str
    type: str
    depth: int
    index: int
    output_shape: Optional[list]
    num_params: int
    trainable_params: int

    @property
    def frozen(self) -> bool:
        return self.num_params > 0 and self.trainable_params == 0

    def params_text(self) -> str:
        if self.num_params == 0:
            return "--"
        if self.frozen:
            return f"({self.num_params:,})"
        if self.trainable_params < self.num_params:
            return f"{self.num_params:,} ({self.num_params - self.trainable_params:,} frozen)"
        return f"{self.num_params:,}"


@dataclass
class ModelSummary:
    rows: list = field(default_factory=list)
    total_params: int = 0
    trainable_params: int = 0

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    def __repr__(self) -> str:
        """The table itself, so a summary as a notebook's last expression reads like torchinfo's."""
        return str(self)

    def _repr_html_(self) -> str:
        """Jupyter's view: the table in a monospaced block, frozen layers greyed."""
        import html

        lines = str(self).splitlines()
        frozen = {i + 3 for i, row in enumerate(self.rows) if row.frozen}  # 3 header lines before the rows
        shown = [f'<span style="color:#888">{html.escape(line)}</span>' if i in frozen else html.escape(line)
                 for i, line in enumerate(lines)]
        return "<pre style=\"line-height:1.25\">" + "\n".join(shown) + "</pre>"

    def __str__(self) -> str:
        labels = []
        for row in self.rows:
            if row.depth == 0:
                labels.append(row.type)
            else:
                indent = "│    " * (row.depth - 1)
                labels.append(f"{indent}├─{row.type}: {row.depth}-{row.index}")
        shapes = ["--" if r.output_shape is None else str(r.output_shape) for r in self.rows]
        params = [r.params_text() for r in self.rows]
        w1 = max([len("Layer (type:depth-idx)")] + [len(s) for s in labels]) + 2
        w2 = max([len("Output Shape")] + [len(s) for s in shapes]) + 2
        w3 = max([len("Param #")] + [len(s) for s in params])
        rule = "=" * (w1 + w2 + w3)
        lines = [rule, f"{'Layer (type:depth-idx)':<{w1}}{'Output Shape':<{w2}}{'Param #'}", rule]
        lines += [f"{a:<{w1}}{b:<{w2}}{c}" for a, b, c in zip(labels, shapes, params)]
        lines += [
            rule,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,}",
            rule,
        ]
        return "\n".join(lines)


def _shape_of(output) -> Optional[list]:
    if isinstance(output, torch.Tensor):
        return list(output.shape)
    if isinstance(output, (tuple, list)):
        shapes = [_shape_of(item) for item in output]
        return shapes if any(s is not None for s in shapes) else None
    if isinstance(output, dict):
        return _shape_of(list(output.values()))
    return None


def _make_inputs(input_size, dtype, device) -> list:
    if not isinstance(input_size, (tuple, list)) or not input_size:
        raise ConfigError(
            f"input_size must be a shape like (1, 3, 32, 32) or a list of shapes, got {input_size!r}"
        )
    sizes = input_size if isinstance(input_size[0], (tuple, list)) else [input_size]
    for size in sizes:
        if not all(isinstance(d, int) and d > 0 for d in size):
            raise ConfigError(f"input_size: every dimension must be a positive int, got {size!r}")
    return [torch.zeros(*size, dtype=dtype, device=device) for size in sizes]


def model_summary(
    model: nn.Module,
    input_size: Union[Size, Sequence[Size]],
    *,
    dtype: torch.dtype = torch.float32,
    device: Optional[Union[str, torch.device]] = None,
) -> ModelSummary:
    """Run one forward pass on zeros of ``input_size`` (batch dim included) and tabulate.

    Several inputs are given as a list of shapes.  The pass runs in eval mode
    under ``no_grad`` (so BatchNorm accepts a batch of one and nothing is
    updated); the model's train/eval flags are restored afterwards.
    """
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    inputs = _make_inputs(input_size, dtype, device)

    outputs = {}
    handles = []

    def recorder(name):
        def hook(module, args, output):
            outputs.setdefault(name, _shape_of(output))

        return hook

    for name, module in model.named_modules():
        handles.append(module.register_forward_hook(recorder(name)))
    modes = {module: module.training for module in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in modes.items():
            module.training = mode

    rows = []
    counters = {}
    for name, module in model.named_modules():
        depth = 0 if name == "" else name.count(".") + 1
        counters[depth] = counters.get(depth, 0) + 1
        own = list(module.parameters(recurse=False))
        rows.append(
            LayerRow(
                name=name,
                type=type(module).__name__,
                depth=depth,
                index=counters[depth],
                output_shape=outputs.get(name),
                num_params=sum(p.numel() for p in own),
                trainable_params=sum(p.numel() for p in own if p.requires_grad),
            )
        )
    unique = list(model.parameters())  # parameters() yields shared tensors once
    return ModelSummary(
        rows=rows,
        total_params=sum(p.numel() for p in unique),
        trainable_params=sum(p.numel() for p in unique if p.requires_grad),
    )
