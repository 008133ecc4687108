"""How a trained-model table shows in a notebook: what was trained and how well, before the hashes.

DataJoint's own preview puts the primary key first, which for a trained
model is six function and hash columns, so the score is past the right edge.
This preview leads with step, seed, score, comment and what a step received,
and keeps the functions (in short) and hashes after them.  For the full,
sortable view with configs and final metrics, ``nntransfer.results(query)``.
"""

from __future__ import annotations

from ..views.html import CELL_STYLE, TABLE_STYLE, escape, number, short_fn

PREVIEW_ROWS = 12
LEAD = ("transfer_step", "seed", "score", "comment", "received")


def preview_html(query, limit: int = PREVIEW_ROWS) -> str:
    """The first ``limit`` rows of ``query`` (a trained-model table or a restriction of it) as HTML."""
    names = [name for name in ("score", "comment", "received") if name in query.heading.names]
    rows = query.proj(*names).to_dicts(limit=limit)
    total = len(query)
    keys = [name for name in query.primary_key if name not in LEAD]
    columns = [name for name in LEAD if name in query.heading.names] + keys
    titles = ["step" if name == "transfer_step" else name for name in columns]
    head = "".join(f'<th style="{CELL_STYLE}">{escape(title)}</th>' for title in titles)
    body = []
    for row in rows:
        cells = []
        for name in columns:
            value = row[name]
            if name.endswith("_fn"):
                value = short_fn(value)
            elif name == "score":
                value = number(value)
            cells.append(f'<td style="{CELL_STYLE}">{escape(value)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f"{total} rows" + (f", the first {len(rows)} shown" if total > len(rows) else "")
    note = (f'<div style="color:#777;font-size:0.85em">{type(query).__name__}: {more}. '
            "nntransfer.results(query) adds configs and final metrics.</div>")
    return f'<div><table style="{TABLE_STYLE}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{note}</div>'
