"""Counts of a recipe's steps per transfer step and state, as text and as an HTML table.

:func:`nntransfer.runner.status` returns a :class:`StepCounts`: the dict
``{"steps": {transfer_step: {state: count}}, "total": {state: count}}`` that
prints as ``nntransfer status`` does and shows as a coloured table in a
notebook.
"""

from __future__ import annotations

from .html import CELL_STYLE, TABLE_STYLE

STATE_COLOURS = {"done": "#2ca02c", "running": "#1f77b4", "pending": "#7f7f7f", "blocked": "#bcbd22", "error": "#d62728"}


class StepCounts(dict):
    """``{"steps": {step: {state: n}}, "total": {state: n}}`` with a readable text and HTML view."""

    def states(self) -> list:
        return list(self["total"])

    def text(self) -> str:
        states = self.states()
        lines = ["step " + "".join(f"{state:>9}" for state in states)]
        for step, per_step in self["steps"].items():
            lines.append(f"{step:>4} " + "".join(f"{per_step[state]:>9}" for state in states))
        lines.append("all  " + "".join(f"{self['total'][state]:>9}" for state in states))
        return "\n".join(lines)

    __str__ = text

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        states = self.states()
        head = f'<th style="{CELL_STYLE}">step</th>' + "".join(
            f'<th style="{CELL_STYLE};color:{STATE_COLOURS.get(s, "#000")}">{s}</th>' for s in states)

        def row(label, counts, bold=False):
            cells = "".join(
                f'<td style="{CELL_STYLE};text-align:right{";color:" + STATE_COLOURS.get(s, "#000") if counts[s] else ";color:#bbb"}">'
                f"{counts[s]}</td>" for s in states)
            style = ";font-weight:bold" if bold else ""
            return f'<tr style="{style}"><td style="{CELL_STYLE}">{label}</td>{cells}</tr>'

        body = "".join(row(step, counts) for step, counts in self["steps"].items()) + row("all", self["total"], True)
        return f'<table style="{TABLE_STYLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
