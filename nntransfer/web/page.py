"""One HTML page with everything inline: style, script, the plotly.js library and the data.

Nothing is loaded from elsewhere, so the written report works offline and
from a mail attachment.  The dashboard serves the same page with ``live``
set: its script then fetches a fresh payload from ``/api/payload`` every
``refresh`` seconds and redraws.
"""

from __future__ import annotations

import json
from importlib import resources


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _inline_json(data) -> str:
    """JSON that is safe inside a <script> element (no closing tag can end it early)."""
    return json.dumps(data, allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(payload: dict, *, live: bool = False, refresh: float = 5.0) -> str:
    """The page for ``payload`` (see :func:`nntransfer.web.payload.recipe_payload`)."""
    settings = {"live": live, "refresh_ms": int(refresh * 1000)}
    title = f"nntransfer: {payload['recipe']}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>{_escape(title)}</title>
<style>{_static("style.css")}</style>
</head>
<body>
<header><h1>{_escape(title)}</h1><span id="generated"></span><span id="live-note"></span></header>
<main>
<section><h2>Status</h2><div id="status"></div><div id="live"></div></section>
<section><h2>Learning curves</h2>
<div class="controls">
<label>metric <select id="metric"></select></label>
<label><input type="checkbox" id="earlier"> earlier steps (to the left of epoch 0)</label>
</div>
<div id="curves" class="chart"></div>
<p class="note">Each chain's last step, aligned on its epoch 0; line: mean over seeds, band: <span id="band"></span>.</p>
<h3>Final results</h3>
<div class="controls"><label>metric <select id="final-metric"></select></label></div>
<div id="finals" class="chart"></div>
</section>
<section><h2>Results</h2>
<div class="controls"><label>filter <input type="search" id="filter" placeholder="chain, state, value ..."></label>
<span id="row-count"></span></div>
<div class="table-wrap"><table id="results"><thead></thead><tbody></tbody></table></div>
</section>
<section><h2>Lineage</h2><div id="lineage"></div></section>
</main>
<script type="application/json" id="payload">{_inline_json(payload)}</script>
<script type="application/json" id="settings">{_inline_json(settings)}</script>
<script>{_plotly_js()}</script>
<script>{_static("app.js")}</script>
</body>
</html>
"""


def _escape(text: str) -> str:
    import html

    return html.escape(text)
