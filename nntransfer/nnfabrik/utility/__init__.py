"""nnfabrik's utility modules on nntransfer."""
