"""The kernel in a real JupyterLab 4.6 page: what the notebook shows for the kernel's status."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from e2e_helpers import spec_name

from .conftest import open_lab, running_lab_server
from .lab import LabNotebook, output_text

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_typed_cell_runs_and_indicator_returns_to_idle(
    lab_notebook: Callable[..., LabNotebook], backend: str
) -> None:
    nb = lab_notebook(spec_name(backend))
    assert nb.status() == "idle"
    nb.type_cell(0, "import sys; print('ran on', sys.version_info[0])")
    nb.run_cell_keyboard(0)
    assert "ran on 3" in output_text(nb.wait_done(0))
    nb.wait_status("idle")


LONG_CELL = "import time; time.sleep(9); print('long cell done')"
#: Introspection requests jupyter_server's default `MappingKernelManager.untracked_message_types` leaves tracked.
UNTRACKED_EXTRA = ["complete_request", "inspect_request", "is_complete_request", "history_request"]

_KERNEL_STATUS_TEXT = """
() => {
  const bar = document.getElementById('jp-main-statusbar');
  const item = bar && [...bar.querySelectorAll('.jp-StatusBar-TextItem')].find(n => n.textContent.includes('|'));
  return item ? item.textContent.trim() : null;
}
"""


def _screenshot(page: Any, name: str, tmp_path: Path) -> Path:
    out_dir = Path(os.environ.get("CK_SCREENSHOT_DIR", str(tmp_path)))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    page.screenshot(path=str(path))
    return path


def _requests_while_a_cell_runs(nb: LabNotebook, page: Any, tmp_path: Path, tag: str) -> dict[str, Any]:
    """Run a 9 s cell from the keyboard; while it runs ask kernel_info, comm_info (API) and a completion (Tab in
    the next cell). After each reply note the notebook toolbar's indicator, the kernel connection's status (what
    the status bar shows) and the status bar's text."""
    first_record = len(nb.records()["iopubStatus"])
    nb.type_cell(0, LONG_CELL)
    nb.run_cell_keyboard(0)
    nb.wait_status("busy", timeout=10)
    time.sleep(0.5)

    def look() -> dict[str, Any]:
        return {"indicator": nb.status(), "kernel": nb.js("return kernel.status;"),
                "statusbar": page.evaluate(_KERNEL_STATUS_TEXT)}

    seen: dict[str, Any] = {"running": look()}
    nb.js("await kernel.requestKernelInfo(); return true;")
    time.sleep(0.3)
    seen["after kernel_info"] = look()
    nb.js("await kernel.requestCommInfo({}); return true;")
    time.sleep(0.3)
    seen["after comm_info"] = look()
    nb.cell_editor(1).click()
    page.keyboard.press("End")
    page.keyboard.press("Tab")
    page.wait_for_function(
        "(p) => window.__lab[p].iopubStatus.some(s => s.parentType === 'complete_request' && s.state === 'idle')",
        arg=nb.path, timeout=10_000,
    )
    time.sleep(0.3)
    seen["after complete"] = look()
    seen["cell prompt"] = nb.cell(0)["prompt"]
    seen["screenshot"] = str(_screenshot(page, f"lab-status-{tag}-after-complete.png", tmp_path))
    page.keyboard.press("Escape")
    assert "long cell done" in output_text(nb.wait_done(0, timeout=30))
    nb.wait_status("idle")
    time.sleep(0.3)
    seen["end"] = look()
    records = nb.records()
    seen["iopub"] = records["iopubStatus"][first_record:]
    seen["untracked"] = page.evaluate(
        "() => JSON.parse(document.getElementById('jupyter-config-data').textContent).untracked_message_types || []"
    )
    return seen


def _assert_contract(iopub_status: list[dict[str, Any]]) -> None:
    """What the page received: one busy then one idle for every request, nothing else."""
    by_parent: dict[str, list[str]] = {}
    for s in iopub_status:
        by_parent.setdefault(str(s["parent"]), []).append(s["state"])
    assert by_parent and all(states == ["busy", "idle"] for states in by_parent.values()), iopub_status


def _report(tag: str, seen: dict[str, Any]) -> None:
    shown = {k: v for k, v in seen.items() if k not in ("iopub", "untracked")}
    print(f"\n[{tag}] " + "\n  ".join(f"{k}: {v}" for k, v in shown.items()))


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_status_while_requests_overlap_a_running_cell(
    lab_notebook: Callable[..., LabNotebook], lab_page: Any, backend: str, tmp_path: Path
) -> None:
    """JupyterLab 4.6 with jupyter_server's defaults. The notebook toolbar's indicator keys on this notebook's
    own cells (busy from a cell's execute_input until the idle parented to its execute_request), so it stays busy
    for the whole cell. The kernel connection's status (the status bar) is the last status whose parent type is
    not in `untracked_message_types`: kernel_info and comm_info leave it busy, a completion's idle shows idle."""
    nb = lab_notebook(spec_name(backend), cells=["", "import tim"])
    seen = _requests_while_a_cell_runs(nb, lab_page, tmp_path, backend)
    _report(backend, seen)
    _assert_contract(seen["iopub"])
    for moment in ("running", "after kernel_info", "after comm_info", "after complete"):
        assert seen[moment]["indicator"] == "busy", (moment, seen[moment])
    assert "*" in seen["cell prompt"]
    assert "kernel_info_request" in seen["untracked"] and "complete_request" not in seen["untracked"]
    assert seen["after kernel_info"]["kernel"] == seen["after comm_info"]["kernel"] == "busy"
    assert seen["after complete"]["kernel"] == "idle"
    assert seen["after complete"]["statusbar"].endswith("Idle"), seen["after complete"]
    assert seen["end"]["indicator"] == seen["end"]["kernel"] == "idle"


def test_status_bar_stays_busy_when_the_server_leaves_introspection_untracked(
    page: Any, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """The remedy on the server side: jupyter_server's `MappingKernelManager.untracked_message_types` plus the
    introspection requests; the status bar then shows busy for the whole cell too, with the contract unchanged."""
    from jupyter_server.services.kernels.kernelmanager import MappingKernelManager

    untracked = [*MappingKernelManager.class_traits()["untracked_message_types"].default(), *UNTRACKED_EXTRA]
    config = {"MappingKernelManager": {"untracked_message_types": untracked}}
    with running_lab_server(tmp_path_factory.mktemp("jupyterlab-untracked"), config) as server:
        page.set_default_timeout(60_000)
        open_lab(page, server)
        nb = LabNotebook.create(page, "untracked.ipynb", spec_name("asyncio"), ["", "import tim"])
        seen = _requests_while_a_cell_runs(nb, page, tmp_path, "untracked")
    _report("untracked", seen)
    _assert_contract(seen["iopub"])
    assert "complete_request" in seen["untracked"]
    for moment in ("running", "after kernel_info", "after comm_info", "after complete"):
        assert seen[moment]["indicator"] == seen[moment]["kernel"] == "busy", (moment, seen[moment])
        assert seen[moment]["statusbar"].endswith("Busy"), (moment, seen[moment])
    assert seen["end"]["indicator"] == seen["end"]["kernel"] == "idle"
