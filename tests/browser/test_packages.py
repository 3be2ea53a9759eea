"""Packages in the browser kernel: `%pip`, micropip, and Pyodide's packages loaded on import.

The site is built as an author builds one (tests/browser/authored_site.py): wheels shipped through
`PipliteAddon.piplite_urls`, plus local stand-ins for a package index and for the Pyodide distribution, all
served by the test server. Every request is recorded and none may leave the machine.
"""

from __future__ import annotations

import json
import time
from typing import Any

import authored_site
import pytest
from lite import dump, new_notebook, open_lab, output_text

from conftest import serve_module

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

_TIMINGS = "return window.concurrentKernels.get(kernel.id).timings;"


def _errors(out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in out if o["output_type"] == "error"]


def test_pip_installs_wheels_shipped_with_the_site(page: Any, authored_url: str, requests_seen: list[str]) -> None:
    open_lab(page, authored_url)
    nb = new_notebook(
        page,
        "pip-shipped-test.ipynb",
        [
            "%pip install ck-shipped-demo",
            "import ck_shipped_demo, ck_shipped_dep\nck_shipped_demo.VALUE, ck_shipped_dep.VALUE",
        ],
    )
    assert "snapshot" in nb.js(_TIMINGS)
    out = nb.run_and_wait(0, 120)
    installed = [line for line in output_text(out).splitlines() if line.startswith("Successfully installed ")]
    assert not _errors(out) and installed, dump(out)
    assert sorted(installed[0].split()[2:]) == ["ck-shipped-demo-0.1.0", "ck-shipped-dep-0.1.0"], dump(out)
    out = nb.run_and_wait(1)
    assert out and out[-1]["data"]["text/plain"] == "('shipped', 'dep')", dump(out)
    wheels = [u for u in requests_seen if u.endswith(".whl")]
    assert any("/pypi/ck_shipped_demo-" in u for u in wheels) and any("/pypi/ck_shipped_dep-" in u for u in wheels)
    assert any("/static/pyodide/micropip-" in u for u in wheels), "micropip comes from the site, on first use"

    # Installed packages live in this kernel only: the next kernel still starts from the snapshot.
    other = new_notebook(page, "pip-other-test.ipynb", ["import ck_shipped_demo"])
    assert "snapshot" in other.js(_TIMINGS)
    out = other.run_and_wait(0)
    assert _errors(out) and _errors(out)[0]["ename"] == "ModuleNotFoundError", dump(out)


def test_site_built_without_the_stock_kernel_package(page: Any) -> None:
    """Without jupyterlite-pyodide-kernel's piplite addon, this package's addon reads the same build settings."""
    site = authored_site.build(stock_piplite=False)
    config = json.loads((site / "jupyter-lite.json").read_text())["jupyter-config-data"]["litePluginSettings"]
    assert "@jupyterlite/pyodide-kernel-extension:kernel" not in config, config
    assert config["concurrent-kernel:plugin"]["pipliteUrls"][0].startswith("./pypi/all.json?sha256="), config
    assert sorted(p.name for p in (site / "pypi").glob("*.whl")) == [
        "ck_ipykernel_widget-0.1.0-py2.py3-none-any.whl", "ck_shipped_demo-0.1.0-py2.py3-none-any.whl",
        "ck_shipped_dep-0.1.0-py2.py3-none-any.whl"]
    server, url = serve_module().serve_in_thread(site, 0, True)
    try:
        open_lab(page, url)
        cell = "%pip install ck-shipped-demo\nimport ck_shipped_demo as a, ck_shipped_dep as b\na.VALUE + b.VALUE"
        nb = new_notebook(page, "own-addon-test.ipynb", [cell])
        out = nb.run_and_wait(0, 120)
        assert not _errors(out) and out[-1]["data"]["text/plain"] == "'shippeddep'", dump(out)
    finally:
        server.shutdown()


def test_micropip_in_code_and_the_package_index(page: Any, authored_url: str, requests_seen: list[str]) -> None:
    open_lab(page, authored_url)
    nb = new_notebook(
        page,
        "micropip-test.ipynb",
        [
            "import micropip\nawait micropip.install('ck-shipped-dep')\nimport ck_shipped_dep\nck_shipped_dep.VALUE",
            "%pip install ck-index-demo\nimport ck_index_demo\nck_index_demo.VALUE",
        ],
    )
    out = nb.run_and_wait(0, 120)
    text = output_text(out)
    assert "Loading micropip from this site" in text and out[-1]["data"]["text/plain"] == "'dep'", dump(out)
    out = nb.run_and_wait(1, 120)
    assert not _errors(out) and out[-1]["data"]["text/plain"] == "'from the index'", dump(out)
    assert any("/ck-test-index/ck-index-demo/" in u for u in requests_seen)
    assert any("/ck-test-files/ck_index_demo-" in u for u in requests_seen)


def test_import_loads_a_pyodide_distribution_package(page: Any, authored_url: str, requests_seen: list[str]) -> None:
    """An entry of the Pyodide lock that the site does not ship comes from the distribution's base URL."""
    open_lab(page, authored_url)
    nb = new_notebook(page, "autoload-test.ipynb", ["import ck_dist_demo\nck_dist_demo.VALUE", "import ck_dist_demo"])
    out = nb.run_and_wait(0, 120)
    text = output_text(out)
    assert f"Loading ck-dist-demo from the Pyodide distribution ({authored_url}ck-test-dist/)" in text, dump(out)
    assert out[-1]["data"]["text/plain"] == "'from the distribution'", dump(out)
    assert any(u.startswith(f"{authored_url}ck-test-dist/ck_dist_demo-") for u in requests_seen), requests_seen
    out = nb.run_and_wait(1)
    assert out == [], dump(out)  # loaded once: no second line


def test_a_package_nobody_has_is_a_clear_error(page: Any, authored_url: str) -> None:
    open_lab(page, authored_url)
    nb = new_notebook(page, "nowhere-test.ipynb", ["%pip install ck-nowhere-to-be-found"])
    started = time.monotonic()
    out = nb.run_and_wait(0, 120)
    assert time.monotonic() - started < 60
    errors = _errors(out)
    assert errors and errors[0]["ename"] == "PackageNotAvailable", dump(out)
    assert "ck-nowhere-to-be-found" in errors[0]["evalue"], dump(out)


LATER_BUNDLE = "ck-site-packages-later.bin.gz"
STDLIB_ZIP = "python_stdlib.zip"


def test_offline_page_says_how_to_ship_a_package(browser: Any, base_url: str) -> None:
    """The demo site with its online defaults (PyPI, the Pyodide CDN), the page offline: clear errors, no fetch."""
    from urllib.parse import urlsplit

    from conftest import LOCAL_HOSTS

    context = browser.new_context()
    seen: list[str] = []
    finished: list[str] = []
    context.on("request", lambda r: seen.append(r.url))
    context.on("requestfinished", lambda r: finished.append(urlsplit(r.url).path.rsplit("/", 1)[-1]))
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        open_lab(page, base_url)
        nb = new_notebook(page, "offline-test.ipynb", ["import micropip", "%pip install some-package-not-shipped",
                                                       "import numpy", "%pip install pandas"])
        assert "Loading micropip from this site" in output_text(nb.run_and_wait(0, 120))
        # Offline once the page has loaded: the worker fetches the files a first result does not need (the later
        # bundle, the standard library) in the background after it; a CI run that went offline before they had
        # arrived got IPython's plain fallback traceback (stack_data is in the later bundle) instead of the error.
        deadline = time.monotonic() + 30
        while not {LATER_BUNDLE, STDLIB_ZIP} <= set(finished) and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert {LATER_BUNDLE, STDLIB_ZIP} <= set(finished), finished
        context.set_offline(True)
        started = time.monotonic()
        out = nb.run_and_wait(1, 60)
        assert time.monotonic() - started < 30
        errors = _errors(out)
        assert errors and errors[0]["ename"] == "PackageNotAvailable", dump(out)
        assert "some-package-not-shipped" in errors[0]["evalue"] and "offline" in errors[0]["evalue"]
        assert "piplite_urls" in errors[0]["evalue"], errors[0]["evalue"]
        # A Pyodide package on import, the page offline: said at once, nothing fetched.
        out = nb.run_and_wait(2, 60)
        text = output_text(out)
        assert "numpy is a Pyodide distribution package and the page is offline" in text, dump(out)
        assert "pyodideDistUrl" in text and _errors(out)[0]["ename"] == "ModuleNotFoundError", dump(out)
        out = nb.run_and_wait(3, 60)
        errors = _errors(out)
        assert errors and errors[0]["ename"] == "PackageNotAvailable", dump(out)
        assert "pandas is a Pyodide distribution package and the page is offline" in errors[0]["evalue"], dump(out)
    finally:
        context.close()
    left = [u for u in seen if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).hostname not in LOCAL_HOSTS]
    assert not left, left


def test_matplotlib_backend_is_inline(page: Any, authored_url: str) -> None:
    """Set as the CPython kernel sets it. matplotlib itself is a Pyodide package: not available offline here."""
    open_lab(page, authored_url)
    nb = new_notebook(page, "mpl-test.ipynb", ["import os\nos.environ['MPLBACKEND']"])
    out = nb.run_and_wait(0)
    assert out[-1]["data"]["text/plain"] == "'module://matplotlib_inline.backend_inline'", dump(out)
