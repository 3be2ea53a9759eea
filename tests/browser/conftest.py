"""Fixtures for the browser tests: the built site served locally, headless Chromium, request recording.

The site must be built first (`bash scripts/setup-browser.sh`, or `npm run lite:build`); a missing site
or browser is a failure, not a skip.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parents[2]
# CK_TEST_SITE: another built site (a build of one's own beside the shared one, as helpers working at once need).
SITE = Path(os.environ.get("CK_TEST_SITE") or ROOT / "lite-site" / "_output")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def serve_module() -> Any:
    """scripts/serve-site.py (a script, not a package module), loaded from its file."""
    spec = importlib.util.spec_from_file_location("serve_site", ROOT / "scripts" / "serve-site.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This project's wheel (with the labextension), built once per session; CK_KERNEL_WHEEL names a prebuilt one."""
    if os.environ.get("CK_KERNEL_WHEEL"):
        return Path(os.environ["CK_KERNEL_WHEEL"])
    if not (ROOT / "ts" / "labextension" / "package.json").exists():
        pytest.fail("ts/labextension is not built: run `bash scripts/setup-browser.sh` (or npm run build)")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps",
         "--no-build-isolation", str(ROOT), "-w", str(out)],
        check=True,
    )
    (whl,) = out.glob("concurrent_kernel-*.whl")
    return whl


@pytest.fixture(scope="session")
def site_dir() -> Path:
    if not (SITE / "index.html").exists() or not (SITE / "extensions" / "concurrent-kernel").is_dir():
        pytest.fail(f"the site is not built at {SITE}: run `bash scripts/setup-browser.sh` (or npm run lite:build)")
    return SITE


@contextmanager
def served(site: Path, isolated: bool) -> Iterator[str]:
    """SITE served on a free port; ISOLATED: with COOP/COEP headers (cross-origin isolated)."""
    server, url = serve_module().serve_in_thread(site, 0, isolated)
    try:
        yield url
    finally:
        server.shutdown()


@pytest.fixture(scope="session")
def base_url(site_dir: Path) -> Iterator[str]:
    """The site served with COOP/COEP headers (cross-origin isolated)."""
    with served(site_dir, True) as url:
        yield url


@pytest.fixture(scope="session")
def plain_url(site_dir: Path) -> Iterator[str]:
    """The same site without COOP/COEP (not cross-origin isolated)."""
    with served(site_dir, False) as url:
        yield url


@pytest.fixture(scope="session")
def authored_url() -> Iterator[str]:
    """The site a site author builds with this package (authored_site.py: wheels, contents, settings), isolated."""
    import authored_site

    with served(authored_site.build(), True) as url:
        yield url


@pytest.fixture(scope="session")
def authored_plain_url() -> Iterator[str]:
    """The authored site, not cross-origin isolated."""
    import authored_site

    with served(authored_site.build(), False) as url:
        yield url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/setup-browser.sh` (apt-get install chromium)")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture
def requests_seen(context: Any) -> Iterator[list[str]]:
    """Every request of the context (pages and their workers); the test fails on any non-local one."""
    seen: list[str] = []
    context.on("request", lambda request: seen.append(request.url))
    yield seen
    outside = [
        u for u in seen if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).hostname not in LOCAL_HOSTS
    ]
    assert not outside, f"requests left the machine: {outside[:10]}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def page(page: Any, requests_seen: list[str], request: pytest.FixtureRequest) -> Iterator[Any]:
    """pytest-playwright's page, with requests checked; its console is printed when the test fails."""
    logs: list[str] = []
    page.on("console", lambda m: logs.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: logs.append(f"pageerror: {e}"))
    page.set_default_timeout(60_000)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print("\n--- browser console (last 60 lines) ---\n" + "\n".join(line[:400] for line in logs[-60:]))


def kernel_workers(page: Any) -> list[str]:
    """URLs of the kernel Web Workers alive in the page's browser context, as Chromium lists its targets.

    Not Playwright's `page.workers`: it kept a worker the page had terminated listed for good in half the runs of
    the dying-kernel test (no close event), while Chromium's targets and the renderer's threads had it gone."""
    own = page.context.new_cdp_session(page)
    try:
        context_id = own.send("Target.getTargetInfo")["targetInfo"]["browserContextId"]
    finally:
        own.detach()
    browser = page.context.browser.new_browser_cdp_session()
    try:
        targets = browser.send("Target.getTargets")["targetInfos"]
    finally:
        browser.detach()
    return [
        t["url"] for t in targets
        if t["type"] == "worker" and "ck-worker" in t["url"] and t.get("browserContextId") == context_id
    ]
