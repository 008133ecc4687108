"""What a partial load of a model state did with each parameter name, as data.

:func:`nntransfer.transfer.load_partial` makes a :class:`LoadReport`; the
transfer table stores it as JSON with the step's row, and the lineage, the
report and the dashboard print it.  It lives apart from the loading code so
that reading it back needs no torch (``nntransfer report`` starts without
it).
"""

from dataclasses import dataclass, field
from typing import Mapping

from nntransfer.errors import ConfigError


@dataclass
class LoadReport:
    """What :func:`load_partial` did with each name.

    * ``loaded``: in both, same shape, copied into the model.
    * ``missing``: in the model but not in the (renamed) state; keeps its
      current (usually fresh) value.
    * ``unexpected``: in the (renamed) state but not in the model.
    * ``shape_mismatched``: in both with different shapes,
      ``{name: (shape_in_state, shape_in_model)}``; the model keeps its value.
    * ``excluded``: in the state but left out by ``include``/``exclude``.
    * ``renamed``: ``{name_in_state: new_name}`` for every renamed entry.
    """

    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    shape_mismatched: dict = field(default_factory=dict)
    excluded: list = field(default_factory=list)
    renamed: dict = field(default_factory=dict)

    @property
    def skipped(self) -> list:
        """Names from the state that were not loaded, for whatever reason."""
        return sorted(set(self.unexpected) | set(self.shape_mismatched) | set(self.excluded))

    def to_dict(self) -> dict:
        return {
            "loaded": list(self.loaded),
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
            "shape_mismatched": {
                name: [list(old), list(new)] for name, (old, new) in self.shape_mismatched.items()
            },
            "excluded": list(self.excluded),
            "renamed": dict(self.renamed),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "LoadReport":
        known = {"loaded", "missing", "unexpected", "shape_mismatched", "excluded", "renamed"}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"LoadReport.from_dict: unknown keys {sorted(unknown)}; known keys are {sorted(known)}"
            )
        return cls(
            loaded=list(data.get("loaded", [])),
            missing=list(data.get("missing", [])),
            unexpected=list(data.get("unexpected", [])),
            shape_mismatched={
                name: (tuple(old), tuple(new))
                for name, (old, new) in data.get("shape_mismatched", {}).items()
            },
            excluded=list(data.get("excluded", [])),
            renamed=dict(data.get("renamed", {})),
        )

    def __str__(self) -> str:
        lines = [
            f"LoadReport: {len(self.loaded)} loaded, {len(self.missing)} missing, "
            f"{len(self.unexpected)} unexpected, {len(self.shape_mismatched)} shape-mismatched, "
            f"{len(self.excluded)} excluded"
        ]
        if self.renamed:
            lines.append("  renamed: " + ", ".join(f"{a} -> {b}" for a, b in self.renamed.items()))
        for title, names in (
            ("missing (kept model value)", self.missing),
            ("unexpected (not in model)", self.unexpected),
            ("excluded", self.excluded),
        ):
            if names:
                lines.append(f"  {title}: " + ", ".join(names))
        for name, (old, new) in self.shape_mismatched.items():
            lines.append(f"  shape mismatch {name}: state {tuple(old)} vs model {tuple(new)}")
        return "\n".join(lines)
