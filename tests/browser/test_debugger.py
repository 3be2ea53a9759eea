"""JupyterLab's debugger panel on the JupyterLite kernel, in headless Chromium on the built site (offline): what
tests/lab/test_debugger_panel.py does with JupyterLab on CPython, done through the same UI in the JupyterLite lab
app (the panel comes from this project's extension, ts/src/debugger.ts; the kernel's side is
services/debugger/monitoring.py). Also: a reload brings the breakpoints back, a browser without JSPI gets no
debugger and a kernel that works as before, a site can leave the panel out, and other kernels are not touched."""

from __future__ import annotations

import time
import uuid
from typing import Any

import lite
import pytest

from lab.debugger_ui import (
    ADD_CELL,
    SIDEBAR,
    TASK_CELL,
    callstack_button,
    top_frame_line,
    turn_on,
    turn_on_with_breakpoint,
    wait_variables,
)
from lab.lab import LabNotebook, output_text

pytestmark = pytest.mark.timeout(600)

#: JupyterLab drops the first Ctrl+Enter typed right after the kernel turns idle (ENVIRONMENT.md).
SETTLE_S = 2.0


def _notebook(page: Any, url: str, cells: list[str], path: str | None = None, kernel: str = "concurrent",
              open_page: bool = True) -> LabNotebook:
    """A new notebook in the lab app, as tests/lab's LabNotebook (the same helpers drive both apps)."""
    if open_page:
        lite.open_lab(page, url)
    path = path or f"debug-{uuid.uuid4().hex[:8]}.ipynb"
    lite.new_notebook(page, path, cells, kernel=kernel)
    page.evaluate("(p) => { window.__lab = window.__lab || {}; window.__lab[p] = {panel: window.__ck[p]}; }", path)
    nb = LabNotebook(page, path, kernel)
    # The session is ready before the kernel answers (the stock kernel loads Pyodide after): a Ctrl+Enter typed
    # before the kernel is idle and settled can be lost.
    nb.js("await kernel.info; return true;")
    time.sleep(SETTLE_S)
    return nb


def _kernel_info(nb: LabNotebook) -> dict[str, Any]:
    return dict(nb.js("const info = await kernel.info; return {debugger: info.debugger, "
                      "features: info.supported_features || []};"))


def _panel_chunk(site_dir: Any) -> str:
    """The file name of the lazily loaded chunk that holds the carried debugger plugins."""
    static = site_dir / "extensions" / "concurrent-kernel" / "static"
    found = [p.name for p in static.glob("*.js") if "debugger-extension:service" in p.read_text(errors="ignore")]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("isolated", [True, False], ids=["isolated", "not-isolated"])
def test_breakpoint_variables_step_continue_task_and_interrupt(
    page: Any, base_url: str, plain_url: str, isolated: bool
) -> None:
    nb = _notebook(page, base_url if isolated else plain_url, [ADD_CELL, TASK_CELL])
    assert page.evaluate("crossOriginIsolated") is isolated
    info = _kernel_info(nb)
    assert info["debugger"] is True and "debugger" in info["features"]
    assert nb.js(_RUN_AND_READ, _ECHO_TARGET) == ""
    sel = nb.panel_selector()
    turn_on_with_breakpoint(page, sel, 2)  # line 2 of the first cell, clicked in the gutter

    nb.run_cell_keyboard(0)
    # stopped in add(): the variables panel shows the frame's locals, the call stack names the cell
    assert wait_variables(page, "a\n2\nb\n3").startswith("a\n2\nb\n3")
    assert top_frame_line(page) == "add\nCell [*]:2"
    assert nb.is_running(0)
    # the kernel is not stopped with it: a task cell runs and prints meanwhile, requests are answered, a comm
    # (what a widget is) is served
    nb.run_cell_keyboard(1)
    assert "task ran while stopped" in nb.wait_output(1, "task ran while stopped")
    assert nb.is_running(0)
    assert nb.js(_REQUESTS_WHILE_STOPPED) == {"info": "ok", "complete": "ok", "commInfo": "ok", "echo": 42}
    assert nb.is_running(0)

    callstack_button(page, "debugger:next").click()
    assert "total\n5" in wait_variables(page, "total\n5")
    assert top_frame_line(page) == "add\nCell [*]:3"
    callstack_button(page, "debugger:continue").click()
    assert "result is 5" in output_text(nb.wait_done(0))

    # stopped again; the notebook's interrupt button ends the stopped cell
    nb.run_cell_keyboard(0)
    wait_variables(page, "a\n2\nb\n3")
    nb.interrupt_button().click()
    outputs = nb.wait_done(0)
    assert "KeyboardInterrupt" in output_text(outputs), outputs
    # and the kernel goes on
    assert nb.js(_RUN_AND_READ, "print('after', 1 + 1)") == "after 2\n"


_ECHO_TARGET = (
    "def _echo_target(comm, open_msg):\n"
    "    comm.on_msg(lambda msg: comm.send({'echo': msg['content']['data']['ping']}))\n"
    "get_ipython().kernel.comm_manager.register_target('echo', _echo_target)\n"
)

_REQUESTS_WHILE_STOPPED = """
const info = await kernel.requestKernelInfo();
const complete = await kernel.requestComplete({code: 'resu', cursor_pos: 4});
const commInfo = await kernel.requestCommInfo({});
const comm = kernel.createComm('echo');
const echoed = new Promise(res => { comm.onMsg = (msg) => res(msg.content.data.echo); });
comm.open({});
comm.send({ping: 42});
const echo = await Promise.race([echoed, new Promise(res => setTimeout(() => res('no echo'), 30000))]);
return {info: info.content.status, complete: complete.content.status, commInfo: commInfo.content.status, echo};
"""

_RUN_AND_READ = """
let text = '';
const future = kernel.requestExecute({code: arg});
future.onIOPub = (msg) => { if (msg.header.msg_type === 'stream') { text += msg.content.text; } };
await future.done;
return text;
"""


def test_pause_stops_a_busy_cell(page: Any, base_url: str) -> None:
    """A busy cell holds the worker, and the panel's pause request would wait behind it: on a cross-origin
    isolated page the page also signals the cell through Pyodide's interrupt buffer, and it stops where it is."""
    nb = _notebook(page, base_url, ["spins = 0\nwhile True:\n    spins += 1"])
    sel = nb.panel_selector()
    turn_on(page, sel)
    nb.run_cell_keyboard(0)
    time.sleep(1.0)
    assert nb.is_running(0)
    callstack_button(page, "debugger:continue").click()  # the pause button while nothing is stopped
    text = wait_variables(page, "spins")
    frame = top_frame_line(page)
    assert frame.startswith("<module>\nCell [*]:"), (frame, text)
    spins = int(text.split("spins\n")[1].split("\n")[0])
    assert spins > 0
    nb.interrupt_button().click()
    assert "KeyboardInterrupt" in output_text(nb.wait_done(0))


_DEBUG_INFO = """
async (p) => {
  const kernel = window.__lab[p].panel.sessionContext.session.kernel;
  const reply = await kernel.requestDebug({type: 'request', seq: 0, command: 'debugInfo', arguments: {}}).done;
  return reply.content.body;
}
"""


def test_a_reloaded_page_restores_the_breakpoints(page: Any, base_url: str) -> None:
    """A JupyterLite kernel dies with its page: the page keeps its debug session and gives it to the notebook's
    next kernel, so after a reload the debugger is on, the breakpoint is back in the cell and stops it."""
    nb = _notebook(page, base_url, [ADD_CELL])
    sel = nb.panel_selector()
    turn_on_with_breakpoint(page, sel, 2)  # line 2 of the first cell, clicked in the gutter

    page.reload()
    page.wait_for_function("window.jupyterapp !== undefined", timeout=90_000)
    page.evaluate("async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }")
    lite.open_notebook(page, nb.path)
    page.evaluate("(p) => { window.__lab = {}; window.__lab[p] = {panel: window.__ck[p]}; }", nb.path)
    sel = nb.panel_selector()
    page.wait_for_function("(s) => document.querySelector(s)?.getAttribute('aria-pressed') === 'true'",
                           arg=f"{sel} .jp-DebuggerBugButton", timeout=90_000)
    page.evaluate("() => window.jupyterapp.shell.activateById('jp-debugger-sidebar')")
    page.locator(f"{SIDEBAR} .jp-DebuggerBreakpoint").first.wait_for()
    info = page.evaluate(_DEBUG_INFO, nb.path)
    assert info["isStarted"] is True
    assert [bp["line"] for entry in info["breakpoints"] for bp in entry["breakpoints"]] == [2]
    # and the cell stops there
    time.sleep(SETTLE_S)
    nb.run_cell_keyboard(0)
    assert wait_variables(page, "a\n2\nb\n3").startswith("a\n2\nb\n3")
    callstack_button(page, "debugger:continue").click()
    assert "result is 5" in output_text(nb.wait_done(0))


_WITHOUT_JSPI = "delete WebAssembly.Suspending; delete WebAssembly.promising;"


def test_without_jspi_the_kernel_offers_no_debugger_and_works(page: Any, base_url: str) -> None:
    """A browser that cannot suspend a WebAssembly stack (no JSPI): kernel_info says debugger: false, JupyterLab
    shows no debugger for the kernel, and the kernel runs cells as it does without one."""
    page.add_init_script(_WITHOUT_JSPI)

    def worker_without_jspi(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=_WITHOUT_JSPI + "\n" + response.text())

    page.route("**/ck-worker.js", worker_without_jspi)
    nb = _notebook(page, base_url, ["import time\nt = time.time()\ntime.sleep(0.2)\n"
                                    "print('slept', time.time() - t >= 0.2)"])
    assert page.evaluate("typeof WebAssembly.Suspending") == "undefined"
    info = _kernel_info(nb)
    assert info["debugger"] is False and "debugger" not in info["features"]
    spec = page.evaluate("() => window.jupyterapp.serviceManager.kernelspecs.specs.kernelspecs.concurrent.metadata")
    assert spec["debugger"] is False
    nb.run_cell_keyboard(0)
    assert "slept True" in output_text(nb.wait_done(0))
    assert page.locator(f"{nb.panel_selector()} .jp-DebuggerBugButton").count() == 0
    reply = nb.js("const r = await kernel.requestDebug({type: 'request', seq: 1, command: 'debugInfo', "
                  "arguments: {}}).done; return r.content;")
    assert reply["status"] == "error" and reply["ename"] == "DebuggerUnavailable"


#: The tests that run the stock Pyodide kernel use the page that is not cross-origin isolated: on an isolated page
#: its worker calls (the `coincident` package in its own chunk) sometimes threw "A(...).value.then is not a
#: function" here (Atomics.waitAsync answered synchronously) and the cell's execute_reply never came.


def test_a_site_can_leave_the_debugger_out(page: Any, plain_url: str, site_dir: Any, requests_seen: list[str]) -> None:
    """One setting in the site's jupyter-lite.json: the panel is not loaded and the kernel offers no debugger; the
    site's other kernel (the stock Pyodide one) runs as before."""

    def with_setting(route: Any) -> None:
        response = route.fetch()
        config = response.json()
        config["jupyter-config-data"]["disabledExtensions"] = ["concurrent-kernel:debugger"]
        route.fulfill(response=response, json=config)

    page.route("**/jupyter-lite.json", with_setting)
    nb = _notebook(page, plain_url, [ADD_CELL])
    assert _kernel_info(nb)["debugger"] is False
    nb.run_cell_keyboard(0)
    assert "result is 5" in output_text(nb.wait_done(0))
    assert page.locator(f"{nb.panel_selector()} .jp-DebuggerBugButton").count() == 0
    assert page.locator(SIDEBAR).count() == 0
    chunk = _panel_chunk(site_dir)
    assert not [url for url in requests_seen if chunk in url]
    stock = _notebook(page, plain_url, ["print(1 + 1)"], kernel="python", open_page=False)
    stock.run_cell_keyboard(0)
    assert "2" in output_text(stock.wait_done(0, timeout=300))
    assert page.locator(f"{stock.panel_selector()} .jp-DebuggerBugButton").count() == 0
    assert not [url for url in requests_seen if chunk in url]


def test_other_kernels_are_not_touched(page: Any, plain_url: str, site_dir: Any, requests_seen: list[str]) -> None:
    """A page with the stock Pyodide kernel only loads nothing of the panel; once this kernel's notebook is open
    beside it, the stock kernel's notebook still shows no debugger (its kernel_info says none)."""
    stock = _notebook(page, plain_url, ["print(1 + 1)"], kernel="python")
    stock.run_cell_keyboard(0)
    assert "2" in output_text(stock.wait_done(0, timeout=300))
    chunk = _panel_chunk(site_dir)
    assert not [url for url in requests_seen if chunk in url]
    assert page.locator(SIDEBAR).count() == 0
    ours = _notebook(page, plain_url, [ADD_CELL], open_page=False)
    turn_on(page, ours.panel_selector())
    assert [url for url in requests_seen if chunk in url]
    page.evaluate("(p) => window.jupyterapp.shell.activateById(window.__ck[p].id)", stock.path)
    time.sleep(SETTLE_S)
    button = page.locator(f"{stock.panel_selector()} .jp-DebuggerBugButton")
    assert button.count() == 0 or button.get_attribute("aria-disabled") == "true"
    stock.run_cell_keyboard(0)
    assert "2" in output_text(stock.wait_done(0))
