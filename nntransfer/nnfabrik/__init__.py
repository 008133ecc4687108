"""nnfabrik's module layout on nntransfer: replace `nnfabrik.` by `nntransfer.nnfabrik.` in import lines."""
