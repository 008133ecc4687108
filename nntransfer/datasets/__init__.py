"""Dataset builders following nnfabrik's contract ``dataset_fn(seed, **config)``.

Each returns ``{"train": loader, "validation": loader, "test": loader}``:

* ``digits.digits_dataset_fn``: scikit-learn's bundled 8x8 digits, no files needed;
* ``vision.mnist_dataset_fn``, ``fashion_mnist_dataset_fn``,
  ``cifar10_dataset_fn``, ``cifar100_dataset_fn``, ``image_folder_dataset_fn``:
  torchvision's on-disk formats under a local ``root`` (``download=False``);
* ``cached_features.cached_features_dataset_fn`` (weights from a file) and
  ``cached_features.transferred_features_dataset_fn`` (features handed on by
  a previous transfer step): a frozen network's features, computed once.

They share one set of options (class filter, stratified seeded split, k-shot
and fractional training subsets, normalisation, resizing, augmentation,
transfer data), implemented once in ``loaders`` and ``selection``.  Their
datasets carry ``num_classes``, ``classes`` and ``input_shape`` for the model
builders, and ``without_augmentation()`` for computing per-sample outputs.
"""
