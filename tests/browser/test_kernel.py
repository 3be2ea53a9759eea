"""The concurrent kernel in JupyterLite, driven in headless Chromium against the built site."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from lite import dump, new_notebook, open_lab, open_notebook, output_text

from conftest import kernel_workers

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def test_execute_display_error_await(page: Any, base_url: str) -> None:
    open_lab(page, base_url)
    nb = new_notebook(
        page,
        "basics-test.ipynb",
        [
            "1+1",
            "print('hello stream')",
            "from IPython.display import HTML, display\ndisplay(HTML('<b id=\"ck-html\">bold</b>'))",
            "def f():\n    return 1 / 0\nf()",
            "import asyncio\nawait asyncio.sleep(0.2)\n'slept'",
        ],
    )
    assert nb.kernel["name"] == "concurrent"
    assert page.evaluate("crossOriginIsolated") is True

    out = nb.run_and_wait(0)
    assert [o["output_type"] for o in out] == ["execute_result"], dump(out)
    assert out[0]["data"]["text/plain"] == "2"

    out = nb.run_and_wait(1)
    assert out and out[0]["output_type"] == "stream" and out[0]["name"] == "stdout", dump(out)
    assert "hello stream" in output_text(out)

    out = nb.run_and_wait(2)
    assert out[0]["output_type"] == "display_data" and "text/html" in out[0]["data"], dump(out)
    page.wait_for_selector("#ck-html")

    out = nb.run_and_wait(3)
    errors = [o for o in out if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "ZeroDivisionError", dump(out)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(errors[0]["traceback"]))
    assert len(errors[0]["traceback"]) >= 2 and "1 / 0" in plain and "f()" in plain, plain

    out = nb.run_and_wait(4)
    assert "'slept'" in output_text(out), dump(out)


@pytest.mark.parametrize("isolated", [True, False], ids=["isolated", "not-isolated"])
def test_input(page: Any, base_url: str, plain_url: str, isolated: bool) -> None:
    open_lab(page, base_url if isolated else plain_url)
    nb = new_notebook(page, "input-test.ipynb", ["name = input('your name: ')\nprint('hello', name)"])
    assert page.evaluate("crossOriginIsolated") is isolated
    nb.run(0)
    box = page.locator(".jp-Stdin-input")
    box.wait_for(timeout=30_000)
    box.fill("Ada")
    box.press("Enter")
    out = nb.wait_done(0, 30)
    assert "hello Ada" in output_text(out), dump(out)


def test_widget_click_unblocks_awaiting_cell(page: Any, base_url: str) -> None:
    open_lab(page, base_url)
    nb = new_notebook(
        page,
        "widget-test.ipynb",
        [
            "import asyncio, ipywidgets as w\nclicked = asyncio.Event()\n"
            "b = w.Button(description='ck-click-me')\nb.on_click(lambda _: clicked.set())\nb",
            "await clicked.wait()\nprint('unblocked by the click')",
        ],
    )
    nb.run_and_wait(0)
    button = page.locator("button", has_text="ck-click-me")
    button.wait_for(timeout=30_000)
    nb.run(1)
    time.sleep(1.0)
    assert nb.is_running(1), "the awaiting cell should still be running before the click"
    button.click()
    out = nb.wait_done(1, 30)
    assert "unblocked by the click" in output_text(out), dump(out)


def test_info_requests_answered_while_cell_runs(page: Any, base_url: str) -> None:
    open_lab(page, base_url)
    nb = new_notebook(page, "info-test.ipynb", ["import asyncio\nawait asyncio.sleep(8)\n'done'"])
    nb.run(0)
    time.sleep(0.5)
    assert nb.is_running(0)
    t0 = time.monotonic()
    replies = nb.js(
        "const info = await kernel.requestKernelInfo();"
        " const comms = await kernel.requestCommInfo({});"
        " return [info.content.status, comms.content.status];"
    )
    elapsed = time.monotonic() - t0
    assert replies == ["ok", "ok"]
    assert elapsed < 4, f"kernel_info/comm_info took {elapsed:.1f}s: they waited for the cell"
    assert nb.is_running(0), "the cell should still be running"
    assert "'done'" in output_text(nb.wait_done(0, 30))


def test_task_cell_runs_while_queued_cell_awaits(page: Any, base_url: str) -> None:
    open_lab(page, base_url)
    nb = new_notebook(
        page,
        "task-test.ipynb",
        [
            "import asyncio\ngate = asyncio.Event()",
            "await gate.wait()\nprint('first done')",
            "print('queued cell ran')",
            "# task\nprint('task cell ran')\ngate.set()",
        ],
    )
    nb.run_and_wait(0)
    nb.run(1)
    nb.run(2)
    time.sleep(0.5)
    assert nb.is_running(1)
    assert nb.outputs(2) == []
    nb.run(3)
    out = nb.wait_done(3, 30)
    assert "task cell ran" in output_text(out), dump(out)
    assert "first done" in output_text(nb.wait_done(1, 30))
    assert "queued cell ran" in output_text(nb.wait_done(2, 30))


def test_thread_mode_fails_clearly(page: Any, base_url: str) -> None:
    open_lab(page, base_url)
    nb = new_notebook(page, "thread-test.ipynb", ["# thread\nprint('no')", "1+1"])
    out = nb.run_and_wait(0, 30)
    text = output_text(out)
    assert any(o["output_type"] == "error" for o in out), dump(out)
    assert "thread" in text.lower() and "pyodide" in text.lower(), text
    assert nb.run_and_wait(1)[0]["data"]["text/plain"] == "2"


def _wait_workers(page: Any, n: int, timeout: float = 15) -> None:
    """Wait until n kernels are alive and the page has exactly their workers plus the pool's spare."""
    state = "window.concurrentKernels.size + ',' + window.concurrentKernelPool.spareCount"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kernels, spare = map(int, page.evaluate(state).split(","))
        if kernels == n and len(kernel_workers(page)) == n + spare:
            return
        page.wait_for_timeout(100)  # lets Playwright process worker events (time.sleep would not)
    kernels, spare = map(int, page.evaluate(state).split(","))
    raise AssertionError(f"{kernels} kernels (want {n}), {spare} spare, workers: {kernel_workers(page)}")


def _interrupt_from_toolbar(page: Any) -> None:
    page.locator('.jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]').first.click()


def test_interrupt_blocking_code_when_isolated(page: Any, base_url: str) -> None:
    open_lab(page, base_url)
    nb = new_notebook(
        page,
        "interrupt-test.ipynb",
        ["while True:\n    pass", "1+1", "import asyncio\nawait asyncio.sleep(60)", "input('blocked: ')"],
    )
    assert page.evaluate("crossOriginIsolated") is True
    nb.run(0)
    time.sleep(1.5)
    assert nb.is_running(0)
    _interrupt_from_toolbar(page)
    out = nb.wait_done(0, 30)
    assert any(o["output_type"] == "error" and o["ename"] == "KeyboardInterrupt" for o in out), dump(out)
    assert nb.run_and_wait(1, 30)[0]["data"]["text/plain"] == "2"
    # A cell blocked in input() is interrupted too.
    nb.run(3)
    page.locator(".jp-Stdin-input").wait_for(timeout=30_000)
    _interrupt_from_toolbar(page)
    out = nb.wait_done(3, 30)
    assert any(o["output_type"] == "error" and o["ename"] == "KeyboardInterrupt" for o in out), dump(out)
    assert nb.run_and_wait(1, 30)[0]["data"]["text/plain"] == "2"
    # An awaiting cell is cancelled too, and the kernel goes on.
    nb.run(2)
    time.sleep(1.0)
    assert nb.is_running(2)
    _interrupt_from_toolbar(page)
    out = nb.wait_done(2, 20)
    assert any(o["output_type"] == "error" for o in out), dump(out)
    assert nb.run_and_wait(1, 30)[0]["data"]["text/plain"] == "2"


def test_interrupt_without_isolation(page: Any, plain_url: str) -> None:
    open_lab(page, plain_url)
    nb = new_notebook(
        page,
        "interrupt-plain-test.ipynb",
        ["import asyncio\nawait asyncio.sleep(60)", "while True:\n    pass"],
    )
    assert page.evaluate("crossOriginIsolated") is False
    # An awaiting cell is cancelled.
    nb.run(0)
    time.sleep(1.0)
    _interrupt_from_toolbar(page)
    out = nb.wait_done(0, 20)
    assert any(o["output_type"] == "error" for o in out), dump(out)
    # Blocking code cannot be interrupted: the notebook says so.
    nb.run(1)
    time.sleep(1.0)
    _interrupt_from_toolbar(page)
    text = nb.wait_text(1, "cannot be interrupted", 20)
    assert "cross-origin isolated" in text
    assert nb.is_running(1)
    # Restart is the way out, and leaves one worker.
    nb.js("await kernel.restart();")
    nb.wait_kernel()
    _wait_workers(page, 1)


def test_restart_shutdown_and_second_notebook(page: Any, base_url: str) -> None:
    open_lab(page, base_url)
    nb1 = new_notebook(page, "one.ipynb", ["a = 41", "a + 1", "'a' in globals()"])
    assert nb1.run_and_wait(0) == []
    assert nb1.run_and_wait(1)[0]["data"]["text/plain"] == "42"
    _wait_workers(page, 1)

    nb2 = new_notebook(page, "two.ipynb", ["'a' in globals()"])
    assert nb2.kernel["id"] != nb1.kernel["id"]
    assert nb2.run_and_wait(0)[0]["data"]["text/plain"] == "False"
    _wait_workers(page, 2)

    old_id = nb1.kernel["id"]
    nb1.js("await kernel.restart();")
    nb1.wait_kernel()
    out = nb1.run_and_wait(2, 60)
    assert out[0]["data"]["text/plain"] == "False", "state must be gone after restart"
    _wait_workers(page, 2)
    assert nb1.kernel["id"] == old_id  # JupyterLite restarts under the same id

    nb2.js("await panel.sessionContext.shutdown();")
    _wait_workers(page, 1)
    nb1.js("await panel.sessionContext.shutdown();")
    _wait_workers(page, 0)
    assert page.evaluate("window.concurrentKernels.size") == 0


def test_handler_exception_and_malformed_message(page: Any, base_url: str) -> None:
    open_lab(page, base_url)
    nb = new_notebook(page, "bad-input-test.ipynb", ["1+1"])
    # A request whose content makes the handler raise gets an error reply, not silence.
    reply = nb.js(
        "const r = await Promise.race([kernel.requestInspect({code: 5, cursor_pos: 'x', detail_level: 0}),"
        " new Promise(res => setTimeout(() => res(null), 10000))]);"
        " return r && r.content;"
    )
    assert reply is not None, "no inspect_reply within 10s"
    assert reply["status"] == "error", reply
    # Malformed messages from the page are dropped with an error, and the kernel keeps serving.
    nb.js(
        "const k = window.concurrentKernels.get(kernel.id);"
        " await k.handleMessage({channel: 'shell'});"
        " await k.handleMessage({channel: 'shell', header: {msg_type: 'execute_request', msg_id: 'bad-1',"
        " session: 'x', username: '', date: '', version: '5.3'}, parent_header: {}, metadata: {}, content: 'nope'});"
    )
    assert nb.run_and_wait(0, 30)[0]["data"]["text/plain"] == "2"


def test_failed_package_load_is_reported(browser: Any, base_url: str) -> None:
    """A wheel that cannot be fetched: loadPackage returns quietly, the import check must catch it.

    The snapshot is refused too, so the worker installs the wheels (with it, no wheel is fetched at all).
    """
    context = browser.new_context(service_workers="block")  # so context.route sees the worker's fetches
    seen: list[str] = []
    context.on("request", lambda request: seen.append(request.url))
    refused: list[str] = []

    def refuse(route: Any) -> None:
        refused.append(route.request.url)
        route.fulfill(status=404, body="missing on purpose")

    context.route("**/pyodide/ipython-*.whl", refuse)
    context.route("**/pyodide/ck-snapshot.bin.*", lambda route: route.fulfill(status=404, body="refused"))
    try:
        page = context.new_page()
        open_lab(page, base_url)
        nb = new_notebook(page, "broken-test.ipynb", ["1+1"], wait=False)
        nb.wait_kernel()
        assert "failed to start" in nb.js("return (await kernel.info).banner;")
        out = nb.run_and_wait(0, 60)
        text = output_text(out)
        assert refused, "the ipython wheel was never requested"
        assert any(o["output_type"] == "error" for o in out), dump(out)
        assert "KernelLoadError" in text and "IPython" in text, text
    finally:
        context.close()
    assert all(u.startswith(base_url) or u.startswith(("data:", "blob:")) for u in seen), seen


def test_embedded_console_prints(page: Any, base_url: str) -> None:
    page.goto(base_url + "embed.html")
    frame = page.frame_locator("iframe#console")
    frame.locator(".jp-OutputArea-output", has_text="hello from the concurrent kernel 42").first.wait_for(
        timeout=120_000
    )
    page.frame_locator("iframe#notebook").locator(".jp-Notebook").first.wait_for(timeout=60_000)


def test_demo_notebook_runs(page: Any, base_url: str) -> None:
    """The shipped concurrency demo: button awaited by a cell, a # task cell meanwhile, background tasks."""
    open_lab(page, base_url)
    nb = open_notebook(page, "concurrency-demo.ipynb")
    nb.run_and_wait(1)
    button = page.locator("button", has_text="Click me")
    button.wait_for(timeout=30_000)
    nb.run(3)
    time.sleep(0.5)
    assert nb.is_running(3)
    assert "tick 2" in output_text(nb.run_and_wait(5, 30))
    assert nb.is_running(3), "the awaiting cell must still wait for the click"
    button.click()
    assert "button clicked" in output_text(nb.wait_done(3, 30))
    assert "heartbeat" in output_text(nb.run_and_wait(7, 30))
    assert "stopping 'heartbeat'" in output_text(nb.run_and_wait(8, 30))
    out = nb.run_and_wait(10, 30)
    assert any(o["output_type"] == "error" for o in out) and "thread" in output_text(out), dump(out)
