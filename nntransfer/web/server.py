"""``nntransfer ui``: the report page served from the database on 127.0.0.1, refreshed while workers train.

A small threaded HTTP server from the standard library: ``/`` is the page
(with the data of the moment inline, so it draws at once), ``/api/payload``
the data the page fetches every few seconds.  One database connection is
shared, so payloads are built one at a time.  It listens on the loopback
address only: the dashboard shows configs and results to whoever can reach
it, and it has no login.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .page import render
from .payload import recipe_payload

log = logging.getLogger(__name__)


class Dashboard(ThreadingHTTPServer):
    """The server; ``payload()`` reads the recipe's state from ``table`` now."""

    daemon_threads = True

    def __init__(self, recipe, table, host: str = "127.0.0.1", port: int = 8050, refresh: float = 5.0):
        super().__init__((host, port), _Handler)
        self.recipe = recipe
        self.table = table
        self.refresh = refresh
        self._lock = threading.Lock()

    def payload(self) -> dict:
        with self._lock:
            return recipe_payload(self.recipe, self.table)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: Dashboard

    def do_GET(self):  # noqa: N802 (the standard library's name)
        path = self.path.split("?", 1)[0]
        try:
            if path == "/":
                body, kind = render(self.server.payload(), live=True, refresh=self.server.refresh), "text/html"
            elif path == "/api/payload":
                body, kind = json.dumps(self.server.payload(), allow_nan=False), "application/json"
            else:
                self.send_error(404, "not found: the dashboard serves / and /api/payload")
                return
        except Exception as error:  # the page shows it and retries; the server keeps serving
            log.exception("building the dashboard's data failed")
            self.send_error(500, f"{type(error).__name__}: {error}")
            return
        data = body.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # noqa: A002 (the standard library's signature)
        log.debug("%s %s", self.address_string(), format % args)
