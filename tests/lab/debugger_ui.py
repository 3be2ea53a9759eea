"""JupyterLab's debugger panel as a person uses it, for the tests of both kernels (tests/lab/test_debugger_panel.py on
CPython, tests/browser/test_debugger.py in JupyterLite): the bug button, a breakpoint clicked in the gutter, the
variables and call stack panels, the step and continue buttons."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

SIDEBAR = "#jp-debugger-sidebar"
#: The cell both kernels' tests stop in: a breakpoint on its line 2 stops inside add() with a = 2, b = 3.
ADD_CELL = "def add(a, b):\n    total = a + b\n    return total\n\nresult = add(2, 3)\nprint('result is', result)"
#: A cell that runs (and prints) while another is stopped.
TASK_CELL = "# task\nprint('task ran while stopped')"


def variables_text(page: Any) -> str:
    return str(page.evaluate(
        "(s) => { const n = document.querySelector(s + ' .jp-DebuggerVariables'); return n ? n.innerText : ''; }",
        SIDEBAR,
    ))


def wait_variables(page: Any, needle: str, timeout: float = 60.0) -> str:
    """The variables panel's text (name and value on lines of their own) once it holds `needle`."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = variables_text(page)
        if needle in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not in the variables panel: {text!r}")


def callstack_button(page: Any, command: str) -> Any:
    return page.locator(f'{SIDEBAR} [data-command="{command}"]').first


def top_frame_line(page: Any, timeout_ms: float = 30_000) -> str:
    """The call stack's selected (else first) frame, once the panel shows one: the variables can be drawn before
    the call stack (seen in the full browser run: variables shown, no frame yet)."""
    handle = page.wait_for_function(
        "(s) => { const n = document.querySelector(s + ' .jp-DebuggerCallstackFrame.selected, '"
        " + s + ' .jp-DebuggerCallstackFrame'); return n && n.innerText ? n.innerText : null; }",
        arg=SIDEBAR, timeout=timeout_ms,
    )
    return str(handle.json_value())


KERNEL_BREAKPOINTS = """
async (id) => {
  const panel = [...window.jupyterapp.shell.widgets('main')].find(w => w.id === id);
  const kernel = panel.sessionContext.session.kernel;
  const future = kernel.requestDebug({type: 'request', seq: 0, command: 'debugInfo', arguments: {}});
  const reply = await future.done;
  return reply.content.body.breakpoints.map(b => b.breakpoints.map(p => p.line)).flat();
}
"""


def wait_kernel_breakpoint(page: Any, panel_selector: str, line: int, timeout: float = 60.0) -> None:
    """The click in the gutter reaches the kernel asynchronously: wait until debugInfo lists the breakpoint."""
    deadline = time.monotonic() + timeout
    lines: list[int] = []
    while time.monotonic() < deadline:
        lines = page.evaluate(KERNEL_BREAKPOINTS, panel_selector.lstrip("#"))
        if line in lines:
            return
        time.sleep(0.2)
    raise AssertionError(f"the kernel has no breakpoint on line {line}: {lines}")


def click_breakpoint(page: Any, panel_selector: str, line: int) -> None:
    """Click the breakpoint gutter of the first cell at `line`, as a user does (gutter element 0 is CodeMirror's
    hidden spacer). The gutter is rebuilt while JupyterLab starts its debug session, and a click then is lost:
    click again until the kernel has the breakpoint."""
    gutter = page.locator(f"{panel_selector} .jp-Cell").nth(0).locator(".cm-breakpoint-gutter .cm-gutterElement")
    panel_id = panel_selector.lstrip("#")
    for _ in range(5):
        time.sleep(2.0)
        if line in page.evaluate(KERNEL_BREAKPOINTS, panel_id):
            return  # a click that was slow to arrive: clicking again would take it away
        try:
            gutter.nth(line).click(timeout=10_000)
            wait_kernel_breakpoint(page, panel_selector, line, timeout=5.0)
            return
        except (AssertionError, PlaywrightTimeoutError):
            continue
    wait_kernel_breakpoint(page, panel_selector, line, timeout=5.0)


def turn_on(page: Any, panel_selector: str) -> None:
    """Press the notebook's bug button once JupyterLab has enabled it, and show the debugger sidebar."""
    button = f"{panel_selector} .jp-DebuggerBugButton"
    page.wait_for_function("(s) => document.querySelector(s)?.getAttribute('aria-disabled') === 'false'", arg=button)
    page.wait_for_timeout(1000)
    if page.locator(button).get_attribute("aria-pressed") != "true":  # JupyterLab may restore an earlier session
        page.locator(button).click()
    page.wait_for_function("(s) => document.querySelector(s).getAttribute('aria-pressed') === 'true'", arg=button)
    page.evaluate("() => window.jupyterapp.shell.activateById('jp-debugger-sidebar')")
    # The button is pressed before the session has started (initialize, attach, configurationDone): a cell run
    # before then keeps a single-threaded kernel (the browser's) from answering them. The call stack's pause
    # button is enabled once the session has started.
    page.wait_for_function(_PAUSE_ENABLED, arg=f'{SIDEBAR} [data-command="debugger:continue"]', timeout=60_000)


_PAUSE_ENABLED = """
(s) => { const b = document.querySelector(s); return !!b && b.getAttribute('aria-disabled') === 'false'; }
"""


def turn_on_with_breakpoint(page: Any, panel_selector: str, line: int) -> None:
    """Turn the debugger on and click a breakpoint on `line` of the first cell: done once the sidebar lists it."""
    turn_on(page, panel_selector)
    click_breakpoint(page, panel_selector, line)
    page.locator(f"{SIDEBAR} .jp-DebuggerBreakpoint").first.wait_for()
