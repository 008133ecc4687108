"""The built documentation works offline: no asset from elsewhere, highlighting done at build time,
an API reference from the docstrings, and a search that finds identifiers such as ``reserve_jobs``.

``make test`` builds the site into build/docs before the tests run; this test
uses that build when it is there and builds the site itself otherwise.  The
search is tried in a real headless chromium (skipped where none is installed).
"""

from __future__ import annotations

import functools
import os
import http.server
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from headless import CHROMIUM, Browser  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    built = ROOT / "build" / "docs"
    if (built / "index.html").exists() and (built / "index.html").stat().st_mtime > (ROOT / "mkdocs.yml").stat().st_mtime:
        return built
    folder = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(folder)],
                   cwd=ROOT, check=True, env={"NO_MKDOCS_2_WARNING": "1", **os.environ})
    return folder


def test_pages_load_nothing_from_elsewhere_and_code_is_highlighted(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 10
    remote = re.compile(r"""<(script|link|img)\b[^>]*\b(src|href)=["']?(https?:)?//""", re.IGNORECASE)
    loading = [page.name for page in pages if remote.search(page.read_text(encoding="utf-8"))]
    assert loading == []
    getting_started = (site / "getting-started" / "index.html").read_text(encoding="utf-8")
    assert '<span class="kn">import</span>' in getting_started  # pygments ran at build time


def test_the_api_reference_is_built_from_the_docstrings(site):
    tables = (site / "reference" / "tables" / "index.html").read_text(encoding="utf-8")
    assert "describe_lineage" in tables and "The chain of steps that led to one entry" in tables
    assert (site / "img" / "recipe-curves.png").stat().st_size > 10_000  # drawn by the docs build


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_search_finds_identifiers_in_a_browser(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    browser = Browser()
    try:
        browser.open(f"http://127.0.0.1:{server.server_address[1]}/?q=reserve_jobs")
        assert browser.wait_for("document.querySelectorAll('.md-search-result__item').length") >= 1
        found = browser.evaluate("[...document.querySelectorAll('.md-search-result__item a')].map(a => a.href)")
        assert any("/cluster/" in href for href in found)
        assert browser.errors == []
    finally:
        browser.close()
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the standard library's signature)
        pass
