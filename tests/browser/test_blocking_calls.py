"""Blocking calls in the browser kernel (services/suspend.py): none of them ends the kernel.

Where the browser can suspend wasm (JSPI, Chromium here) a blocking call suspends the cell's Python stack and the
worker runs on: other cells, comm messages and interrupts are served meanwhile. Without JSPI (simulated by taking
`WebAssembly.Suspending` away in the worker before Pyodide loads, as in a browser that lacks it) the calls block the
worker or fail with a clear error. Each on a cross-origin isolated page and on one that is not.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from lite import Notebook, dump, new_notebook, open_lab, output_text

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ISOLATION = pytest.mark.parametrize("isolated", [True, False], ids=["isolated", "not-isolated"])

#: Prepended to the worker script: the worker then looks like one in a browser without JSPI.
_NO_JSPI = "delete WebAssembly.Suspending; delete WebAssembly.Suspender; delete WebAssembly.promising;\n"


def _url(isolated: bool, base_url: str, plain_url: str) -> str:
    return base_url if isolated else plain_url


def _errors(out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in out if o["output_type"] == "error"]


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _interrupt(nb: Notebook) -> None:
    nb.page.locator('.jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]').first.click()


def _answer_input(nb: Notebook, text: str) -> None:
    box = nb.page.locator(".jp-Stdin-input").last
    box.wait_for(timeout=30_000)
    box.fill(text)
    box.press("Enter")


def _assert_interrupted(out: list[dict[str, Any]], line: str) -> None:
    errors = _errors(out)
    assert len(errors) == 1 and errors[0]["ename"] == "KeyboardInterrupt", dump(out)
    assert line in _plain("\n".join(errors[0]["traceback"])), dump(out)


@ISOLATION
def test_time_sleep_suspends_the_cell_and_the_kernel_runs_on(
    page: Any, base_url: str, plain_url: str, isolated: bool
) -> None:
    open_lab(page, _url(isolated, base_url, plain_url))
    nb = new_notebook(
        page,
        "sleep-test.ipynb",
        [
            "import time\nt = time.monotonic()\ntime.sleep(1)\nprint(round(time.monotonic() - t, 1))",
            "print('before'); time.sleep(3); print('after')",
            "# task\nimport asyncio\nfor i in range(3):\n    print('tick', i)\n    await asyncio.sleep(0.1)",
            "for bad in (-1, 'x', float('nan')):\n    try:\n        time.sleep(bad)\n    except Exception as e:\n"
            "        print(type(e).__name__, e)",
            "time.sleep(100)",
            "1 + 1",
        ],
    )
    assert page.evaluate("crossOriginIsolated") is isolated
    out = nb.run_and_wait(0, 30)
    assert not _errors(out) and float(output_text(out)) >= 1.0, dump(out)

    # A task cell runs, prints into its own cell, and ends while the queued cell sleeps.
    nb.run(1)
    nb.wait_text(1, "before", 30)
    out = nb.run_and_wait(2, 30)
    assert output_text(out).split() == ["tick", "0", "tick", "1", "tick", "2"], dump(out)
    assert nb.is_running(1), "the sleeping cell ended before the task cell"
    info = nb.js("return (await kernel.requestKernelInfo()).content.status;")
    assert info == "ok"
    out = nb.wait_done(1, 30)
    assert output_text(out).split() == ["before", "after"], dump(out)

    # CPython's own errors (its time.sleep checks the argument).
    out = nb.run_and_wait(3, 30)
    lines = output_text(out).splitlines()
    assert len(lines) == 3 and lines[0] == "ValueError sleep length must be non-negative", dump(out)
    assert lines[1].startswith("TypeError 'str' object cannot be interpreted as an integer"), dump(out)
    assert lines[2] == "ValueError Invalid value NaN (not a number)", dump(out)

    # An interrupt ends a long sleep at once, isolated or not: the worker is free to take it.
    nb.run(4)
    time.sleep(1.0)
    assert nb.is_running(4)
    _interrupt(nb)
    _assert_interrupted(nb.wait_done(4, 30), "time.sleep(100)")
    assert nb.run_and_wait(5, 30)[0]["data"]["text/plain"] == "2"


@ISOLATION
def test_input_waits_without_blocking_the_worker(page: Any, base_url: str, plain_url: str, isolated: bool) -> None:
    open_lab(page, _url(isolated, base_url, plain_url))
    nb = new_notebook(
        page,
        "input-suspend-test.ipynb",
        [
            "name = input('name: ')\nfrom getpass import getpass\nsecret = getpass('secret: ')\n"
            "print('hello', name, len(secret))",
            "input('interrupt me: ')",
            "import sys\nsys.stdin.readline()",
        ],
    )
    nb.run(0)
    nb.page.locator(".jp-Stdin-input").wait_for(timeout=30_000)
    # While input() waits, the worker runs other code (JupyterLab itself runs no other cell while input is
    # pending: the request goes through the kernel API).
    ran = nb.js(
        "const texts = []; const future = kernel.requestExecute({code: '# task\\nprint(\\'task ran\\')'});"
        " future.onIOPub = m => { if (m.header.msg_type === 'stream') texts.push(m.content.text); };"
        " const reply = await future.done; return [reply.content.status, texts.join('')];"
    )
    assert ran == ["ok", "task ran\n"], ran
    _answer_input(nb, "Ada")
    nb.page.locator(".jp-Stdin-input[type=password]").wait_for(timeout=30_000)
    _answer_input(nb, "s3cret")
    out = nb.wait_done(0, 30)
    assert "hello Ada 6" in output_text(out) and not _errors(out), dump(out)

    nb.run(1)
    nb.page.locator(".jp-Stdin-input").last.wait_for(timeout=30_000)
    _interrupt(nb)
    out = nb.wait_done(1, 30)
    assert _errors(out) and _errors(out)[-1]["evalue"] == "Interrupted by user", dump(out)
    # sys.stdin is at its end, as in a kernel jupyter_client starts (it closes the kernel's stdin).
    assert nb.run_and_wait(2, 30)[0]["data"]["text/plain"] == "''"


def test_run_sync_asyncio_run_comms_background_and_js_callbacks(page: Any, base_url: str) -> None:
    open_lab(page, base_url)
    nb = new_notebook(
        page,
        "run-sync-test.ipynb",
        [
            "import asyncio, time\nfrom pyodide.ffi import run_sync\nrun_sync(asyncio.sleep(0.1, 'run_sync ok'))",
            "async def main():\n    await asyncio.sleep(0.1)\n    return 'asyncio.run ok'\nasyncio.run(main())",
            "asyncio.get_event_loop().run_until_complete(asyncio.sleep(0.1, 'run_until_complete ok'))",
            # A background task and a comm callback are task steps too: their stacks suspend.
            "from concurrent_kernel import get_kernel\nasync def bg():\n    time.sleep(0.3)\n    print('bg slept')\n"
            "get_kernel().background.spawn(bg, name='bg')\nawait asyncio.sleep(1.5)",
            "def target(comm, msg):\n    @comm.on_msg\n    def _(m):\n        time.sleep(0.3)\n"
            "        comm.send({'slept': True})\nget_ipython().kernel.comm_manager.register_target('ck-sleep', target)",
            # Python called synchronously from JavaScript cannot suspend: time.sleep blocks, the rest fails clearly.
            "import js, traceback\nfrom pyodide.ffi import create_once_callable\nfrom concurrent_kernel.services "
            "import suspend\nseen = []\ndef cb():\n    t = time.monotonic()\n    time.sleep(0.3)\n"
            "    seen.append(round(time.monotonic() - t, 1))\n    for call in (lambda: run_sync(asyncio.sleep(0)),"
            " lambda: asyncio.run(main())):\n        try:\n            call()\n        except Exception as e:\n"
            "            seen.append(f'{type(e).__name__}: {e}')\njs.setTimeout(create_once_callable(cb), 0)\n"
            "await asyncio.sleep(1.5)\nfor s in seen: print(s)",
            "1 + 1",
        ],
    )
    assert nb.run_and_wait(0, 30)[0]["data"]["text/plain"] == "'run_sync ok'"
    assert nb.run_and_wait(1, 30)[0]["data"]["text/plain"] == "'asyncio.run ok'"
    assert nb.run_and_wait(2, 30)[0]["data"]["text/plain"] == "'run_until_complete ok'"
    assert "bg slept" in output_text(nb.run_and_wait(3, 30))
    assert not _errors(nb.run_and_wait(4, 30))
    reply = nb.js(
        "const c = kernel.createComm('ck-sleep');"
        " const got = new Promise(res => { c.onMsg = m => res(m.content.data); });"
        " c.open({}); c.send({go: 1}); return await got;"
    )
    assert reply == {"slept": True}
    out = nb.run_and_wait(5, 30)
    lines = output_text(out).splitlines()
    assert len(lines) == 3 and float(lines[0]) >= 0.3, dump(out)
    assert all(line.startswith("SuspendUnavailable: this Python code was called synchronously") for line in lines[1:])
    assert nb.run_and_wait(6, 30)[0]["data"]["text/plain"] == "2"


@pytest.fixture
def no_jspi_page(context: Any, page: Any) -> Iterator[Any]:
    """A page whose kernel workers have no JSPI (the worker script deletes WebAssembly.Suspending first)."""

    def patch(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=_NO_JSPI + response.text())

    context.route("**/ck-worker.js", patch)
    yield page


@ISOLATION
def test_blocking_calls_without_jspi(no_jspi_page: Any, base_url: str, plain_url: str, isolated: bool) -> None:
    page = no_jspi_page
    open_lab(page, _url(isolated, base_url, plain_url))
    nb = new_notebook(
        page,
        "no-jspi-test.ipynb",
        [
            "import js\nfrom pyodide.ffi import can_run_sync\ncan_run_sync(), hasattr(js.WebAssembly, 'Suspending')",
            "import time\nt = time.monotonic()\ntime.sleep(0.5)\nprint(round(time.monotonic() - t, 1))",
            "print('hello', input('name: '))",
            "import asyncio\nasync def main():\n    return 1\ntry:\n    asyncio.run(main())\n"
            "except RuntimeError as e:\n    print(type(e).__name__, e)",
            "time.sleep(100)",
            "1 + 1",
        ],
    )
    assert nb.run_and_wait(0, 30)[0]["data"]["text/plain"] == "(False, False)"
    out = nb.run_and_wait(1, 30)
    assert not _errors(out) and float(output_text(out)) >= 0.5, dump(out)
    # input() through the page's shared buffer (isolated) or JupyterLite's service worker (not isolated).
    nb.run(2)
    _answer_input(nb, "Ada")
    assert "hello Ada" in output_text(nb.wait_done(2, 30))
    text = output_text(nb.run_and_wait(3, 30))
    assert text.startswith("SuspendUnavailable this browser cannot suspend Python") and "await main()" in text, text
    if isolated:
        # The worker waits on the interrupt buffer: the page's interrupt wakes it.
        nb.run(4)
        time.sleep(1.0)
        assert nb.is_running(4)
        _interrupt(nb)
        _assert_interrupted(nb.wait_done(4, 30), "time.sleep(100)")
    assert nb.run_and_wait(5, 30)[0]["data"]["text/plain"] == "2"
