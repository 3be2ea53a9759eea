"""How a page opening a kernel loads: over a slow link the spare worker starts from the labextension's remoteEntry
script (before the app's plugins load) and is the worker the kernel then takes (ts/src/early.ts, WorkerPool); on a
first visit without isolation the plugin starts it as it activates."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import _serve_module

EXT = "/extensions/concurrent-kernel/static/"


def _open_repl(page: Any, url: str, code: str, expect: str) -> None:
    query = urllib.parse.urlencode({"kernel": "concurrent", "code": code, "execute": "1"})
    page.goto(f"{url}repl/index.html?{query}")
    page.locator(".jp-OutputArea-output", has_text=expect).first.wait_for(timeout=120_000)


def _first(requests: list[str], pattern: str) -> int:
    return next(i for i, u in enumerate(requests) if re.search(pattern, u))


@pytest.fixture(scope="module")
def slow_url(site_dir: Path) -> Iterator[str]:
    """The site (isolated) behind a 40 Mbit/s link with 20 ms per request, as bench/browser_bench.py --cold."""
    serve = _serve_module()
    server, url = serve.serve_in_thread(site_dir, 0, True, serve.Throttle(40, 20))
    yield url
    server.shutdown()


def test_slow_link_repl_kernel_takes_the_spare_started_by_the_remote_entry(
    page: Any, slow_url: str, requests_seen: list[str]
) -> None:
    _open_repl(page, slow_url, "print(6*7)", "42")
    seen = list(requests_seen)
    worker = _first(seen, re.escape(EXT) + r"ck-worker\.js")
    remote_entry = _first(seen, re.escape(EXT) + r"remoteEntry\.")
    own_chunk = _first(seen, re.escape(EXT) + r"\d+\.[0-9a-f]+\.js")  # the plugin's code, loaded by the app later
    assert remote_entry < worker < own_chunk, seen
    # One worker loaded Python, and it is the kernel's: the early spare was taken, not replaced.
    assert sum(1 for u in seen if u.endswith("/pyodide/ck-manifest.json")) == 1, seen
    assert page.evaluate("[...window.concurrentKernels.values()][0].timings.ready > 0")


def test_first_visit_not_isolated_starts_the_spare_with_the_plugin(
    page: Any, plain_url: str, requests_seen: list[str]
) -> None:
    """A first visit not cross-origin isolated (no service worker controls the page yet) would have a spare made
    that early replaced by the kernel, whose requests must go through the service worker: the plugin starts it.
    (A fast link, as localhost, starts it with the plugin too, but how fast localhost looks depends on the load.)"""
    _open_repl(page, plain_url, "print(6*7)", "42")
    seen = list(requests_seen)
    assert _first(seen, re.escape(EXT) + r"\d+\.[0-9a-f]+\.js") < _first(seen, re.escape(EXT) + r"ck-worker\.js"), seen
