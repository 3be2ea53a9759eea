"""How a page opening a kernel loads: over a slow link the spare worker starts from the labextension's remoteEntry
script (before the app's plugins load) and is the worker the kernel then takes (ts/src/early.ts, WorkerPool),
without isolation too (JupyterLite's service worker registered first)."""

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


def _kernel_worker_started_before_plugin_chunk(page: Any) -> bool:
    """Whether the kernel's worker started (its own clock, epoch ms) before the plugin's code chunk was requested:
    then it is the spare the remoteEntry made, not one made by the plugin or for the kernel."""
    return page.evaluate(
        """() => {
        const origin = [...window.concurrentKernels.values()][0].timings.origin;
        const chunk = performance.getEntriesByType('resource')
          .find(e => /extensions\\/concurrent-kernel\\/static\\/\\d+\\.[0-9a-f]+\\.js/.test(e.name));
        return origin < performance.timeOrigin + chunk.startTime;
      }"""
    )


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
    # The kernel's worker is that spare (taken, not replaced); one worker loaded Python.
    assert _kernel_worker_started_before_plugin_chunk(page)
    assert sum(1 for u in seen if u.endswith("/pyodide/ck-manifest.json")) == 1, seen
    assert page.evaluate("[...window.concurrentKernels.values()][0].timings.ready > 0")


def test_reload_kernel_takes_the_spare_started_by_the_remote_entry(page: Any, base_url: str) -> None:
    """A reload (the page's scripts from the browser's cache) starts the spare at the remoteEntry too, on any link
    (the first load on localhost, a fast link, leaves it to the plugin, unless the load makes localhost look slow)."""
    _open_repl(page, base_url, "print(6*7)", "42")
    page.reload()
    page.locator(".jp-OutputArea-output", has_text="42").first.wait_for(timeout=120_000)
    assert _kernel_worker_started_before_plugin_chunk(page)


@pytest.fixture(scope="module")
def slow_plain_url(site_dir: Path) -> Iterator[str]:
    """The same slow link, without COOP/COEP (not cross-origin isolated, as GitHub Pages or Read the Docs)."""
    serve = _serve_module()
    server, url = serve.serve_in_thread(site_dir, 0, False, serve.Throttle(40, 20))
    yield url
    server.shutdown()


def test_first_visit_not_isolated_kernel_keeps_the_early_spare(
    page: Any, slow_plain_url: str, requests_seen: list[str]
) -> None:
    """Not cross-origin isolated, the kernel's files go through JupyterLite's service worker, which sees only the
    workers made while it controls the page. The remoteEntry registers it at once and makes the spare once it
    controls the page, so the kernel keeps that spare (before, it replaced the uncontrolled one: two workers loaded
    Python) and its files work."""
    query = urllib.parse.urlencode(
        {"kernel": "concurrent", "code": "import os; print(os.getcwd(), sorted(os.listdir('.'))[:1])", "execute": "1"}
    )
    page.goto(f"{slow_plain_url}repl/index.html?{query}")
    page.locator(".jp-OutputArea-output", has_text="/drive").first.wait_for(timeout=120_000)
    seen = list(requests_seen)
    assert page.evaluate("!!navigator.serviceWorker.controller")
    assert _first(seen, re.escape(EXT) + r"ck-worker\.js") < _first(seen, re.escape(EXT) + r"\d+\.[0-9a-f]+\.js"), seen
    assert _kernel_worker_started_before_plugin_chunk(page)
