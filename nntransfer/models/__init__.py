"""Model builders following nnfabrik's contract ``model_fn(dataloaders, seed, **config)``.

Every builder reads input shape and class count from the dataloaders
(:mod:`nntransfer.models.data_info`) and initialises its weights under
``seed`` without disturbing the caller's random state.

Naming convention, shared by every model here so transfer recipes can work
by name ("freeze ``features``", "load all but ``classifier``"):

* ``features``: input -> one flat vector per sample (convolutions, pooling,
  flatten).  ``extract_features(model, loader, layer="features")`` gives the
  representation a fixed-feature-extractor experiment trains on.
* ``classifier``: that vector -> logits; the final ``Linear`` is
  ``classifier`` itself or the last layer inside it (see
  :func:`nntransfer.models.heads.find_head`).

Builders: ``mlp.mlp_model_fn``, ``lenet.lenet5_model_fn``,
``resnet.resnet_model_fn`` (depth 18/34/50), ``vgg.vgg_model_fn`` (depth
11/16, ``batch_norm``), ``zoo.torchvision_model_fn`` (any torchvision
classifier, weights from a local file), ``timm_models.timm_model_fn`` (any
timm model by name, with the optional ``nntransfer[timm]``; weights from a
local ``.safetensors`` or ``.pth`` file, see :mod:`nntransfer.models.weights`).  Convolutional models with a global
pooling head (ResNet always, LeNet/VGG with ``global_pool=True``) have the
same parameter shapes at every input resolution.
"""
