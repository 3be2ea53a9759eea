"""Fixtures for tests against a real JupyterLab 4.6 server running this project's CPython kernel.

`lab_server` (session) starts `jupyter lab` on 127.0.0.1 with a token, a temporary root dir, temporary
config/settings/workspaces dirs and this project's kernelspecs (tests/e2e_helpers.py names: `spec_name(backend)`)
visible through JUPYTER_PATH. `lab_page` is pytest-playwright's page logged in to it, with `window.jupyterapp`
exposed (`--expose-app-in-browser`). `lab_notebook` opens a new notebook on a given kernel and returns a
`LabNotebook` (tests/lab/lab.py) to type in, run and read cells and the kernel status indicator.
Every test under tests/lab/ is marked `browser`, so it runs after the anyio tests.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from e2e_helpers import write_kernelspecs

from .lab import LabNotebook, LabServer

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
START_TIMEOUT_S = 90.0


def _browser_conftest() -> Any:
    """tests/browser/conftest.py, for its Chromium path and launch arguments (one place to change them)."""
    spec = importlib.util.spec_from_file_location("_ck_browser_conftest", ROOT / "tests" / "browser" / "conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_lab_server(base: Path, server_config: dict[str, Any] | None = None) -> Iterator[LabServer]:
    """Start `jupyter lab` under `base` (root dir, config, settings, workspaces, kernelspecs all in there);
    `server_config` is written as its jupyter_server_config.json. Stopped on exit."""
    root_dir = base / "root"
    root_dir.mkdir(parents=True)
    kernels_dir = write_kernelspecs(base / "data")
    config_dir = base / "config"
    config_dir.mkdir()
    if server_config:
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(server_config))
    # No "official Jupyter news?" question over the page (it would sit in every screenshot).
    notification = base / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    token = uuid.uuid4().hex
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        JUPYTER_PATH=str(base / "data"),
        JUPYTER_CONFIG_DIR=str(config_dir),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTER_DATA_DIR=str(base / "userdata"),
    )
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
        f"--LabApp.user_settings_dir={base / 'settings'}", f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log_path = base / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root_dir)
        try:
            server = LabServer(url=f"http://127.0.0.1:{port}/", token=token, root_dir=root_dir,
                               kernels_dir=kernels_dir, log_path=log_path)
            _wait_for_server(proc, server)
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _wait_for_server(proc: subprocess.Popen[bytes], server: LabServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{server.log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}api/status?token={server.token}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            tail = server.log_path.read_text()[-4000:]
            pytest.fail(f"jupyter lab did not answer within {START_TIMEOUT_S} s:\n{tail}")
        time.sleep(0.3)


def open_lab(page: Any, server: LabServer) -> None:
    """Log `page` in to `server` and wait until JupyterLab has started and restored its layout."""
    page.goto(f"{server.url}lab?token={server.token}")
    page.wait_for_function("window.jupyterapp !== undefined", timeout=90_000)
    page.evaluate("async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }")


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A JupyterLab 4.6 server (as root: --allow-root) that sees this project's kernelspecs; stopped at the end."""
    with running_lab_server(tmp_path_factory.mktemp("jupyterlab")) as server:
        yield server


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    browser = _browser_conftest()
    if not browser.CHROMIUM.exists():
        pytest.fail(f"{browser.CHROMIUM} is missing: run `bash scripts/setup-browser.sh` (apt-get install chromium)")
    return {**browser_type_launch_args, "executable_path": str(browser.CHROMIUM), "args": browser.CHROMIUM_ARGS}


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def lab_page(page: Any, lab_server: LabServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A Playwright page logged in to `lab_server` with JupyterLab started and restored.

    On failure the browser console's tail and the server log's tail are printed."""
    logs: list[str] = []
    page.on("console", lambda m: logs.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: logs.append(f"pageerror: {e}"))
    page.set_default_timeout(60_000)
    open_lab(page, lab_server)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print("\n--- browser console (last 60 lines) ---\n" + "\n".join(line[:400] for line in logs[-60:]))
        print("\n--- jupyter lab log (tail) ---\n" + lab_server.log_path.read_text(errors="replace")[-3000:])


@pytest.fixture
def lab_notebook(lab_page: Any, lab_server: LabServer) -> Callable[..., LabNotebook]:
    """Factory: `lab_notebook(kernel_name, cells=[...])` opens a new notebook on that kernelspec, waits until its
    kernel is idle and the notebook has settled, and returns a LabNotebook."""

    def open_notebook(kernel_name: str, cells: list[str] | None = None, path: str | None = None) -> LabNotebook:
        return LabNotebook.create(lab_page, path or f"nb-{uuid.uuid4().hex[:8]}.ipynb", kernel_name, cells or [""])

    return open_notebook
