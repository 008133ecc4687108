"""timm backbones by name (``pip install "nntransfer[timm]"``), weights from a local file.

timm builds the network and loads the weights, so its per-model knowledge
applies: a ViT's position embeddings are resampled for another ``img_size``,
and the first convolution's pretrained filters are adapted to the data's
channel count (summed for one channel, repeated and rescaled for more).
Nothing is downloaded: the weights come from ``weights_path``, a file saved
on a machine with internet access, e.g. timm's ``model.safetensors`` from the
Hugging Face hub or ``torch.save(timm.create_model(name,
pretrained=True).state_dict(), path)``.

The head is the checkpoint's own when its class count equals the data's, and
a new, seeded one (timm's ``reset_classifier``) otherwise.  The result is a
:class:`TimmModel` with the package-wide names: ``features`` (the timm network
with its classifier replaced by ``Identity``, so it returns the pooled
pre-logits vector, with timm's inner names) and ``classifier``.  Freezing
(the ``finetuning`` module's ``head="classifier"``), partial loading with
``transfer={"exclude": ["classifier"]}`` and feature extraction with
``layer="features"`` therefore work as for every model of this package.
"""

from __future__ import annotations

from typing import Mapping

from torch import nn

from nntransfer.errors import ConfigError, TransferError
from nntransfer.models.building_blocks import seeded
from nntransfer.models.data_info import data_info
from nntransfer.models.weights import read_state_dict
from nntransfer.resolve import did_you_mean


class TimmModel(nn.Module):
    """A timm model split into ``features`` (pooled pre-logits) and ``classifier``."""

    def __init__(self, network: nn.Module):
        super().__init__()
        head = network.get_classifier()
        if not isinstance(head, nn.Module):
            raise ConfigError(
                f"{type(network).__name__} has {len(head)} classifier heads (a distilled model); "
                "choose a model with one head."
            )
        self.classifier = head
        network.reset_classifier(0)
        self.features = network

    def forward(self, x):
        return self.classifier(self.features(x))


def _timm():
    try:
        import timm
    except ImportError:
        raise ConfigError('timm models need the timm package: pip install "nntransfer[timm]".') from None
    return timm


def check_model_name(name: str) -> None:
    """Refuse a name timm does not know (``arch`` or ``arch.tag``), with a suggestion."""
    timm = _timm()
    architectures = timm.list_models()
    if name.split(".", 1)[0] not in architectures:
        raise ConfigError(
            f"timm has no model {name!r};{did_you_mean(name, architectures)} "
            "see timm.list_models() for the names."
        )


def timm_model_fn(
    dataloaders: Mapping,
    seed: int,
    *,
    name: str = "resnet18",
    weights_path: str | None = None,
    num_classes: int | None = None,
    model_options: dict | None = None,
) -> TimmModel:
    """nnfabrik model function: timm model ``name`` adapted to the data.

    ``weights_path``: a local ``.safetensors`` or ``torch.save`` state_dict of
    this architecture; ``None`` starts from timm's initialisation under
    ``seed``.  ``model_options`` go to ``timm.create_model``, e.g.
    ``{"img_size": 32}`` for a ViT on small images or ``{"drop_path_rate": 0.1}``.
    """
    timm = _timm()
    check_model_name(name)
    info = data_info(dataloaders, num_classes)
    channels = info.image_shape[0]
    options = dict(model_options or {})
    for reserved in ("pretrained", "num_classes", "in_chans", "pretrained_cfg_overlay"):
        if reserved in options:
            raise ConfigError(
                f"`model_options` may not set {reserved!r}; the builder sets it from the data and "
                "`weights_path` (use `num_classes` to override the class count)."
            )
    with seeded(seed):
        if weights_path is None:
            network = _create(timm, name, info.num_classes, channels, options)
        else:
            network = _create_from_file(timm, name, weights_path, channels, options)
            if network.num_classes != info.num_classes:
                network.reset_classifier(info.num_classes)
        return TimmModel(network)


def _create(timm, name, num_classes, channels, options, **pretrained):
    try:
        return timm.create_model(name, num_classes=num_classes, in_chans=channels, **pretrained, **options)
    except TypeError as error:  # an option the architecture's constructor does not take
        raise ConfigError(f"timm model {name!r} refuses the options {options}: {error}") from error


def _create_from_file(timm, name, weights_path, channels, options):
    """Build ``name`` with the file's class count and let timm load and adapt the file."""
    state = read_state_dict(weights_path)
    cfg = timm.models.get_pretrained_cfg(name.split(".", 1)[0])
    cfg = cfg.to_dict() if cfg is not None else {}
    classifier = cfg.get("classifier")
    head_names = (classifier,) if isinstance(classifier, str) else tuple(classifier or ())
    head_weight = next((state[f"{n}.weight"] for n in head_names if f"{n}.weight" in state), None)
    if head_weight is None:
        raise TransferError(
            f"{weights_path!r} has no classifier weights ({[f'{n}.weight' for n in head_names]}), so it is "
            f"not a complete checkpoint of timm's {name!r}. Save the whole model's state_dict."
        )
    overlay = {"state_dict": state, "source": "", "num_classes": int(head_weight.shape[0])}
    first_conv = cfg.get("first_conv")
    first_weight = state.get(f"{first_conv}.weight") if isinstance(first_conv, str) else None
    if first_weight is not None and first_weight.ndim == 4 and cfg.get("input_size"):
        overlay["input_size"] = (int(first_weight.shape[1]), *cfg["input_size"][1:])
    try:
        return _create(
            timm, name, overlay["num_classes"], channels, options,
            pretrained=True, pretrained_cfg_overlay=overlay,
        )
    except RuntimeError as error:  # load_state_dict's missing / unexpected / size-mismatch report
        raise TransferError(f"The weights in {weights_path!r} do not fit timm's {name!r}: {error}") from error


def _check_config(config: dict) -> None:
    """A misspelt model name fails when the config is made, not later in a worker."""
    check_model_name(config.get("name", "resnet18"))


timm_model_fn.check_config = _check_config
