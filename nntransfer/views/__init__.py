"""Text and HTML views of configs, chains and step counts, for terminals and notebooks.

A leaf package: it formats plain data (dicts, lists, numbers) and imports
nothing of nntransfer but the errors, so configs, the transfer helpers, the
tables and the runner can all give their objects a readable ``__repr__`` and
a ``_repr_html_`` that Jupyter shows.
"""
