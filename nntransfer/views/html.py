"""Small HTML pieces shared by the notebook displays: escaped tables and numbers in short.

Notebook output is HTML that Jupyter inserts into its page, so every value is
escaped and the markup carries its own minimal inline style (no stylesheet
of ours is loaded there).
"""

from __future__ import annotations

import html
import math

TABLE_STYLE = "border-collapse:collapse;font-size:0.9em;text-align:left"
CELL_STYLE = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top"


def number(value, digits: int = 4) -> str:
    """A number as a reader wants it: ``0.8563`` rather than ``0.856312341232``; other values as str."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.{digits}g}"
    return str(value)


def short_fn(path: str) -> str:
    """The function's own name from its dotted path (``nntransfer.models.mlp.mlp_model_fn`` -> ``mlp_model_fn``)."""
    return str(path).rsplit(".", 1)[-1]


def escape(value) -> str:
    return html.escape(number(value) if not isinstance(value, str) else value)


def table(headers, rows, caption: str | None = None) -> str:
    """An HTML table of ``rows`` (sequences of cell values, escaped here) under ``headers``."""
    head = "".join(f'<th style="{CELL_STYLE}">{escape(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td style="{CELL_STYLE}">{escape(cell)}</td>' for cell in row) + "</tr>" for row in rows
    )
    title = f'<caption style="text-align:left;font-weight:bold">{escape(caption)}</caption>' if caption else ""
    return f'<table style="{TABLE_STYLE}">{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def flat(values: dict, prefix: str = "") -> dict:
    """Nested dicts as one level with dotted names (``modules.early_stopping.patience``)."""
    out = {}
    for name, value in values.items():
        dotted = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            out.update(flat(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def config_html(kind: str, fn: str, values: dict, comment: str = "", changed: set | None = None, hash_: str = "") -> str:
    """One config as a small table: its function in short, its comment, and its values.

    ``changed`` names the values that differ from the function's defaults;
    they are shown in bold, so what this config is about stands out.
    """
    rows = []
    for name, value in flat(values).items():
        shown = escape(value if isinstance(value, (int, float, str, type(None))) else repr(value))
        bold = changed is not None and name.split(".", 1)[0] in changed
        rows.append(f'<tr><td style="{CELL_STYLE}">{"<b>" if bold else ""}{escape(name)}{"</b>" if bold else ""}</td>'
                    f'<td style="{CELL_STYLE}">{"<b>" if bold else ""}{shown}{"</b>" if bold else ""}</td></tr>')
    title = f"{escape(kind)} <code>{escape(short_fn(fn))}</code>"
    if comment:
        title += f" &ldquo;{escape(comment)}&rdquo;"
    footer = f'<div style="color:#777;font-size:0.8em">{escape(fn)}{" &middot; hash " + escape(hash_) if hash_ else ""}</div>'
    body = "".join(rows) or f'<tr><td style="{CELL_STYLE}">(no options)</td></tr>'
    return f'<div><div>{title}</div><table style="{TABLE_STYLE}">{body}</table>{footer}</div>'
