"""ipykernel drop-in behaviour of the shell side in the browser kernel (JupyterLite): the debugger in the cell
over the page's stdin, a failing display formatter, kernel.session.send."""

from __future__ import annotations

import time
from typing import Any

from lite import dump, new_notebook, open_lab, output_text


def _answer(page: Any, n: int, text: str) -> None:
    """Type into the n-th stdin box of the page (answered boxes stay in the output area)."""
    box = page.locator(".jp-Stdin-input").nth(n)
    box.wait_for(timeout=30_000)
    box.fill(text)
    box.press("Enter")


def test_pdb_in_the_cell_reads_the_stdin_box(page: Any, base_url: str) -> None:
    open_lab(page, base_url)
    nb = new_notebook(page, "pdb-test.ipynb", ["answer = 40\nbreakpoint()\nprint('went on')"])
    nb.run(0)
    _answer(page, 0, "p answer + 2")
    nb.wait_text(0, "42", 30)
    _answer(page, 1, "c")
    out = nb.wait_done(0, 30)
    text = output_text(out)
    assert "ipdb>" in text and "went on" in text, dump(out)


def test_interrupt_at_the_debugger_prompt_leaves_it(page: Any, base_url: str) -> None:
    open_lab(page, base_url)
    nb = new_notebook(page, "pdb-interrupt.ipynb", ["import pdb; pdb.set_trace()\nprint('after the debugger')", "1+1"])
    assert page.evaluate("crossOriginIsolated") is True
    nb.run(0)
    page.locator(".jp-Stdin-input").wait_for(timeout=30_000)
    time.sleep(0.5)
    page.locator('.jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]').first.click()
    out = nb.wait_done(0, 30)
    assert "after the debugger" in output_text(out), dump(out)
    assert nb.run_and_wait(1, 30)[0]["data"]["text/plain"] == "2"


def test_failing_repr_and_session_send(page: Any, base_url: str) -> None:
    open_lab(page, base_url)
    nb = new_notebook(
        page,
        "dropin-test.ipynb",
        [
            "class Bad:\n    def _repr_html_(self):\n        raise ValueError('no html')\nBad()",
            "kernel = get_ipython().kernel\n"
            "kernel.session.send(kernel.iopub_socket, 'display_data',\n"
            "    {'data': {'text/plain': 'sent by hand'}, 'metadata': {}}, parent=kernel.get_parent())",
        ],
    )
    out = nb.run_and_wait(0, 60)
    assert any(o["output_type"] == "error" and o["evalue"] == "no html" for o in out), dump(out)
    reply = nb.js("return await kernel.requestExecute({code: 'Bad()'}).done;")
    assert reply["content"]["status"] == "error", reply
    out = nb.run_and_wait(1, 30)
    assert "sent by hand" in output_text(out), dump(out)


def test_status_stays_busy_while_requests_overlap_a_cell(page: Any, base_url: str) -> None:
    """Each request gets its own busy/idle, so JupyterLab's kernel status (the status bar) would read idle after
    a kernel_info, completion or widget message answered while a cell awaits; the site's PageConfig
    `untracked_message_types` (lite-site/jupyter-lite.json) leaves those out of the status, as jupyter_server
    does for kernel_info. The notebook toolbar's indicator follows the cell either way."""
    open_lab(page, base_url)
    # The cell awaits until the test releases it: a completion early in a page waits for the standard library's
    # later files (seconds), and a cell of fixed length could end before the last request is answered.
    nb = new_notebook(page, "status-test.ipynb", ["import asyncio\nwhile not globals().get('release'):\n"
                                                  "    await asyncio.sleep(0.05)"])
    nb.run(0)
    page.wait_for_function("() => document.querySelector('.jp-Notebook-ExecutionIndicator')"
                           "?.getAttribute('data-status') === 'busy'", timeout=30_000)
    seen = {"running": nb.js("return kernel.status;")}
    for name, call in [("kernel_info", "kernel.requestKernelInfo()"),
                       ("complete", "kernel.requestComplete({code: 'impo', cursor_pos: 4})"),
                       ("comm_info", "kernel.requestCommInfo({})")]:
        nb.js(f"await {call}; return true;")
        time.sleep(0.3)
        seen[name] = nb.js("return kernel.status;")
    assert nb.is_running(0)
    assert set(seen.values()) == {"busy"}, seen
    nb.js("kernel.requestExecute({code: '# task\\nrelease = True', silent: true}); return true;")
    nb.wait_done(0, 30)
    page.wait_for_function("() => document.querySelector('.jp-Notebook-ExecutionIndicator')"
                           "?.getAttribute('data-status') === 'idle'", timeout=30_000)
