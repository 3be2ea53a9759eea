"""`pip install concurrent-kernel` + `jupyter lite build` gives a site with the kernel.

The wheel ships the built labextension as shared-data.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from lite import new_notebook, open_lab

from conftest import serve_module

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

EXT = "share/jupyter/labextensions/concurrent-kernel"


def test_wheel_contains_labextension_and_pyodide_assets(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    data = [n.split(".data/data/", 1)[1] for n in names if ".data/data/" in n]
    for required in ("package.json", "static/ck-worker.js", "static/pyodide/pyodide.asm.wasm",
                     "static/pyodide/pyodide-lock.json", "static/pyodide/ck-manifest.json",
                     "static/pyodide/ck-snapshot.bin.gz", "static/pyodide/ck-site-packages.bin.gz"):
        assert f"{EXT}/{required}" in data, f"{required} missing from {wheel.name}"
    assert any(n.startswith(f"{EXT}/static/pyodide/concurrent_kernel-") for n in data)
    assert any(n.startswith(f"{EXT}/static/remoteEntry.") for n in data)
    # The wheel inside the labextension must not nest another labextension.
    inner = next(n for n in data if n.startswith(f"{EXT}/static/pyodide/concurrent_kernel-"))
    with zipfile.ZipFile(wheel) as zf, zf.open(next(n for n in names if n.endswith(inner))) as fh:
        assert not [n for n in zipfile.ZipFile(fh).namelist() if ".data/" in n]


def test_pip_installed_wheel_gives_lite_site_with_kernel(wheel: Path, tmp_path: Path, page: Any) -> None:
    # Install the wheel's data files as pip does (share/ under the prefix). Not `pip install --prefix`:
    # pip would first uninstall the concurrent-kernel installed in this test environment.
    prefix = tmp_path / "prefix"
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if ".data/data/" in name and not name.endswith("/"):
                dest = prefix / name.split(".data/data/", 1)[1]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(zf.read(name))
    labext = prefix / "share" / "jupyter" / "labextensions"
    assert (labext / "concurrent-kernel" / "package.json").exists()
    lite = tmp_path / "lite"
    lite.mkdir()
    (lite / "jupyter-lite.json").write_text(json.dumps(
        {"jupyter-lite-schema-version": 0, "jupyter-config-data": {"exposeAppInBrowser": "true"}}))
    site = tmp_path / "site"
    jupyter = Path(sys.executable).parent / "jupyter"
    # The installed extension is found like any pip-installed labextension: the prefix is not sys.prefix
    # here, so it is named as an extra labextensions path, and sys.prefix is ignored (an editable install
    # of this package may already have put a copy there; jupyter lite refuses duplicates).
    subprocess.run(
        [str(jupyter), "lite", "build", "--ignore-sys-prefix", "--output-dir", str(site),
         f"--FederatedExtensionAddon.extra_labextensions_path={labext}"],
        cwd=lite, check=True, capture_output=True,
    )
    config = json.loads((site / "jupyter-lite.json").read_text())["jupyter-config-data"]
    assert "concurrent-kernel" in [e["name"] for e in config["federated_extensions"]]
    assert (site / "extensions" / "concurrent-kernel" / "static" / "pyodide" / "pyodide.asm.wasm").exists()

    server, url = serve_module().serve_in_thread(site, 0, True)
    try:
        open_lab(page, url)
        nb = new_notebook(page, "pip.ipynb", ["import concurrent_kernel\n1+1"])
        assert nb.kernel["implementation"] == "concurrent_kernel"
        assert nb.run_and_wait(0, 60)[0]["data"]["text/plain"] == "2"
        assert "snapshot" in nb.js("return window.concurrentKernels.get(kernel.id).timings;")
    finally:
        server.shutdown()
