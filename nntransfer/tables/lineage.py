"""A chain of steps as one object: readable as text, shown as a table in a notebook.

:meth:`TransferredTrainedModelBase.lineage` returns a :class:`Lineage`, a
list of step dicts (step 0 first) that prints as :meth:`Lineage.describe`:
per step the configs' comments (or the functions' own names when a config has
no comment), the score in four digits, what the step received and hands on,
and the load report of a received model state.  Full dotted paths and hashes
stay in the items and in the HTML view's small print.
"""

from __future__ import annotations

from ..load_report import LoadReport
from ..views.html import CELL_STYLE, TABLE_STYLE, escape, number, short_fn

KINDS = ("dataset", "model", "trainer")
RECEIVED_TEXT = {
    "": "nothing (first step)",
    "model_state": "the previous model state",
    "transfer_data": "the previous step's generated data",
    "state_and_data": "the previous model state and generated data",
    None: "-",
}
HANDS_ON_TEXT = {"model_state": "its model state", "transfer_data": "its generated data",
                 "state_and_data": "its model state and generated data"}


def step_names(item: dict) -> str:
    """``dataset / model / trainer`` of one step, each by its comment or else its function's name."""
    return " / ".join(item.get(f"{kind}_comment") or short_fn(item[f"{kind}_fn"]) for kind in KINDS)


def load_report_text(report: dict | None) -> str:
    """A stored load report (``LoadReport.to_dict``) as its text; empty when the step loaded no model state."""
    if not report:
        return ""
    return str(LoadReport.from_dict(report))


def deleted_item(key: dict) -> dict:
    """The item of a step whose plan row is gone (deleted with its configs): only its key is known."""
    return {"key": key, "deleted": True, "done": False, "score": None, "received": None, "load_report": None,
            "hands_on": "transfer_data" if key["data_transfer"] else "model_state",
            **{f"{kind}_{part}": key[f"{kind}_fn"] if part == "fn" else None
               for kind in KINDS for part in ("fn", "config", "comment")}}


class Lineage(list):
    """The steps that led to one entry, step 0 first (items as :meth:`lineage` documents them)."""

    def describe(self) -> str:
        lines = []
        for item in self:
            key = item["key"]
            if item.get("deleted"):
                lines.append(f"step {key['transfer_step']}: {step_names(item)} (seed {key['seed']})")
                lines.append("    deleted: its row and configs are gone, so the steps before it are unknown")
                continue
            state = f"score {number(item['score'])}" if item["done"] else "not done"
            lines.append(f"step {key['transfer_step']}: {step_names(item)} (seed {key['seed']})")
            lines.append(
                f"    {state}; received {RECEIVED_TEXT.get(item['received'], item['received'])}; "
                f"hands on {HANDS_ON_TEXT.get(item['hands_on'], item['hands_on'])}"
            )
            lines.extend("    " + line for line in load_report_text(item["load_report"]).splitlines())
        return "\n".join(lines)

    __str__ = describe

    def __repr__(self) -> str:
        return self.describe()

    def _repr_html_(self) -> str:
        head = "".join(f'<th style="{CELL_STYLE}">{name}</th>'
                       for name in ("step", "dataset / model / trainer", "seed", "score", "received", "hands on",
                                    "load report"))
        rows = []
        for item in self:
            key = item["key"]
            functions = " / ".join(escape(item[f"{kind}_fn"]) for kind in KINDS)
            report = escape(load_report_text(item["load_report"])).replace("\n", "<br>")
            cells = [
                escape(key["transfer_step"]),
                f'{escape(step_names(item))}<div style="color:#777;font-size:0.8em">{functions}</div>',
                escape(key["seed"]),
                escape(number(item["score"])) if item["done"] else f"<i>{'deleted' if item.get('deleted') else 'not done'}</i>",
                escape(RECEIVED_TEXT.get(item["received"], item["received"])),
                escape(HANDS_ON_TEXT.get(item["hands_on"], item["hands_on"])),
                f'<span style="font-size:0.85em">{report}</span>' if report else "",
            ]
            rows.append("<tr>" + "".join(f'<td style="{CELL_STYLE}">{cell}</td>' for cell in cells) + "</tr>")
        return f'<table style="{TABLE_STYLE}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
