"""sinzlab nntransfer's configs, experiments and main-loop modules, run on this nntransfer.

``nntransfer.legacy.configs`` has the config base (defaults set in
``__init__``, unset attributes read as None, keys hashed with nnfabrik's
``make_hash``), ``Experiment``, ``TransferExperiment(configs, update=...)``
and ``Description``; ``nntransfer.legacy.modules.LegacyModules`` runs
main-loop modules written for sinzlab's trainer in the new loop.  See
docs/coming-from-nnfabrik.md for the names.
"""
