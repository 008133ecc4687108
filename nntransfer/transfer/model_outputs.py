"""Models that return ``(extras, output)`` instead of just ``output``.

Older nntransfer models return a dict of intermediate results (e.g. the
representation that a matching loss needs) together with the output.  The loop
passes the output to the loss and keeps the dict in ``state.model_extras`` so
that modules can use it; code outside the loop wraps such a model in
:class:`OutputOnly` to get a plain ``output``.

It lives with the transfer helpers because feature extraction needs it as
much as the trainer does, and the trainer may use :mod:`nntransfer.transfer`
while the transfer helpers never use the trainer.
"""

import torch


def split_output(result):
    """Return ``(output, extras)``; ``extras`` is None for a model that returns only its output."""
    if type(result) is tuple and len(result) == 2 and isinstance(result[0], dict):
        return result[1], result[0]
    return result, None


class OutputOnly(torch.nn.Module):
    """Wrap a model so that calling it returns only the output, never the extras dict."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        return split_output(self.model(*args, **kwargs))[0]
