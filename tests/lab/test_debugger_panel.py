"""JupyterLab 4.6's debugger panel on this kernel, in headless Chromium, used the way a person uses it: the bug
button, a breakpoint clicked in the gutter, the variables panel, step and continue buttons, and the notebook's
interrupt button; while the cell is stopped, a `# task` cell runs and prints."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from e2e_helpers import spec_name

from .debugger_ui import (
    ADD_CELL,
    SIDEBAR,
    TASK_CELL,
    callstack_button,
    top_frame_line,
    turn_on_with_breakpoint,
    wait_variables,
)
from .lab import LabNotebook, LabServer, output_text

pytestmark = pytest.mark.browser


def _fresh_notebook(page: Any, server: LabServer, kernel_name: str, cells: list[str]) -> LabNotebook:
    """A notebook in a workspace of its own: the default workspace would restore earlier tests' notebooks, and the
    debugger panel follows whichever notebook is current."""
    page.goto(f"{server.url}lab/workspaces/debugger-{uuid.uuid4().hex[:8]}?token={server.token}")
    page.wait_for_function("window.jupyterapp !== undefined", timeout=90_000)
    page.evaluate("async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }")
    return LabNotebook.create(page, f"debug-{uuid.uuid4().hex[:8]}.ipynb", kernel_name, cells)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_breakpoint_variables_step_continue_task_and_interrupt(
    lab_page: Any, lab_server: LabServer, backend: str
) -> None:
    nb = _fresh_notebook(lab_page, lab_server, spec_name(backend), [ADD_CELL, TASK_CELL])
    page = nb.page
    sel = nb.panel_selector()
    # the bug button is enabled once JupyterLab has checked the kernelspec (metadata.debugger) and the kernel;
    # then a breakpoint on line 2 of the first cell, clicked in the gutter
    turn_on_with_breakpoint(page, sel, 2)

    nb.run_cell_keyboard(0)
    # stopped in add(): the variables panel shows the frame's locals
    assert wait_variables(page, "a\n2\nb\n3").startswith("a\n2\nb\n3")
    assert top_frame_line(page).startswith("add\n") and top_frame_line(page).endswith(".py:2")
    assert nb.is_running(0)
    # the kernel is not stopped with it: a task cell runs and prints meanwhile
    nb.run_cell_keyboard(1)
    assert "task ran while stopped" in nb.wait_output(1, "task ran while stopped")
    assert nb.is_running(0)

    callstack_button(page, "debugger:next").click()
    assert "total\n5" in wait_variables(page, "total\n5")
    assert top_frame_line(page).endswith(".py:3")
    callstack_button(page, "debugger:continue").click()
    assert "result is 5" in output_text(nb.wait_done(0))

    # stopped again; the notebook's interrupt button ends the stopped cell
    nb.run_cell_keyboard(0)
    wait_variables(page, "a\n2\nb\n3")
    nb.interrupt_button().click()
    outputs = nb.wait_done(0)
    assert "KeyboardInterrupt" in output_text(outputs), outputs
    nb.wait_status("idle")


_REOPEN = """
async (path) => {
  const app = window.jupyterapp;
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await panel.context.ready;
  await panel.sessionContext.ready;
  return panel.id;
}
"""


_RUN_AND_READ = """
async ({id, code}) => {
  const panel = window.jupyterapp.shell.widgets('main').find(w => w.id === id)
    || [...window.jupyterapp.shell.widgets('main')].find(w => w.id === id);
  const kernel = panel.sessionContext.session.kernel;
  let text = '';
  const future = kernel.requestExecute({code});
  future.onIOPub = (msg) => { if (msg.header.msg_type === 'stream') { text += msg.content.text; } };
  await future.done;
  return text;
}
"""


@pytest.mark.timeout(300)
def test_a_reloaded_page_restores_the_stopped_cell(lab_page: Any, lab_server: LabServer) -> None:
    """debugInfo: after a reload the panel shows the breakpoint and the stopped frame again, and continue works."""
    nb = _fresh_notebook(lab_page, lab_server, spec_name("asyncio"), [ADD_CELL])
    page = nb.page
    sel = nb.panel_selector()
    turn_on_with_breakpoint(page, sel, 2)  # line 2 of the first cell, clicked in the gutter
    nb.run_cell_keyboard(0)
    wait_variables(page, "a\n2\nb\n3")

    page.reload()
    page.wait_for_function("window.jupyterapp !== undefined", timeout=90_000)
    page.evaluate("async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }")
    panel_id = page.evaluate(_REOPEN, nb.path)
    page.evaluate("() => window.jupyterapp.shell.activateById('jp-debugger-sidebar')")
    # restored from debugInfo: the debugger is on, the breakpoint listed, the stopped frame's variables shown
    page.wait_for_function("(s) => document.querySelector(s)?.getAttribute('aria-pressed') === 'true'",
                           arg=f"#{panel_id} .jp-DebuggerBugButton", timeout=60_000)
    page.locator(f"{SIDEBAR} .jp-DebuggerBreakpoint").first.wait_for()
    assert wait_variables(page, "a\n2\nb\n3").startswith("a\n2\nb\n3")
    callstack_button(page, "debugger:continue").click()
    # the stopped cell ran to its end: a cell queued behind it runs and sees what it assigned
    printed = page.evaluate(_RUN_AND_READ, {"id": panel_id, "code": "print('result was', result)"})
    assert printed == "result was 5\n"
