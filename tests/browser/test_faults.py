"""The browser kernel under faults: Python dying in its worker, malformed page messages, long mixed load.

When Python dies (a Pyodide fatal error: `os._exit`, a C stack overflow) the kernel does what a Jupyter server does
for a kernel process that died: the running cell ends with the reason, the clients get the status "restarting"
(JupyterLab shows "Kernel Restarting" and reconnects) and Python starts again in a new worker under the same kernel
id. The notebook itself is untouched.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from lite import Notebook, dump, new_notebook, open_lab, output_text

from conftest import kernel_workers

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

_KERNEL_STATUS_TEXT = """
() => {
  const bar = document.getElementById('jp-main-statusbar');
  const item = bar && [...bar.querySelectorAll('.jp-StatusBar-TextItem')].find(n => n.textContent.includes('|'));
  return item ? item.textContent.trim() : null;
}
"""

_RECORD_STATUS = """
const rec = [];
panel.sessionContext.statusChanged.connect((_, s) => rec.push(s));
window.__ckStatus = rec;
return true;
"""


def _died(nb: Notebook, i: int, reason: str) -> None:
    """Cell i killed Python: it ends with KernelDied and the reason, JupyterLab says the kernel restarts (one click
    on Ok), and the kernel answers again, with none of the old state."""
    page = nb.page
    out = nb.wait_done(i, 60)
    errors = [o for o in out if o["output_type"] == "error"]
    assert errors and errors[-1]["ename"] == "KernelDied", dump(out)
    assert reason in errors[-1]["evalue"] and "It restarts" in errors[-1]["evalue"], dump(out)
    dialog = page.locator(".jp-Dialog", has_text="Kernel Restarting")
    dialog.wait_for(timeout=30_000)
    dialog.locator(".jp-mod-accept").click()
    page.wait_for_function("() => window.__ckStatus.includes('autorestarting')", timeout=30_000)
    page.wait_for_function(f"() => ({_KERNEL_STATUS_TEXT})()?.endsWith('Idle')", timeout=120_000)


@pytest.mark.parametrize("isolated", [True, False], ids=["isolated", "not-isolated"])
def test_python_dying_restarts_the_kernel_in_the_page(
    page: Any, base_url: str, plain_url: str, isolated: bool
) -> None:
    open_lab(page, base_url if isolated else plain_url)
    nb = new_notebook(
        page,
        "death-test.ipynb",
        [
            "a = 1\na",
            "import os\nos._exit(3)",
            "'a' in globals()",
            "import json\nx = []\nfor _ in range(300_000):\n    x = [x]\njson.dumps(x)",
            "a = 2\nprint('after', a)",
        ],
    )
    kernel_id = nb.kernel["id"]
    nb.js(_RECORD_STATUS)
    assert nb.run_and_wait(0)[0]["data"]["text/plain"] == "1"
    # An edit not yet saved: the restart must leave it alone.
    nb.js("panel.content.widgets[2].model.sharedModel.setSource(\"'a' in globals()  # edited\"); return true;")

    nb.run(1)
    _died(nb, 1, "Python exited with status 3")
    out = nb.run_and_wait(2, 60)
    assert out[0]["data"]["text/plain"] == "False", dump(out)
    assert nb.js("return panel.content.widgets[2].model.sharedModel.getSource();") == "'a' in globals()  # edited"
    assert nb.js("return panel.context.model.dirty;") is True
    assert nb.js("return kernel.id;") == kernel_id
    assert nb.js("return window.concurrentKernels.get(kernel.id).restarts;") == 1

    nb.js("window.__ckStatus.length = 0; return true;")
    nb.run(3)
    _died(nb, 3, "Maximum call stack size exceeded")
    assert "after 2" in output_text(nb.run_and_wait(4, 60))
    assert nb.js("return window.concurrentKernels.get(kernel.id).restarts;") == 2
    # The kernel's worker and the pool's spare, if it has made one yet (it does once the page has been quiet for
    # 2 s, so the count is read on both sides of the list): the dead ones are gone.
    deadline = time.monotonic() + 10
    while True:
        spare = page.evaluate("window.concurrentKernelPool.spareCount")
        workers = kernel_workers(page)
        if spare == page.evaluate("window.concurrentKernelPool.spareCount") and len(workers) == 1 + spare:
            break
        assert time.monotonic() < deadline, f"{len(workers)} workers, {spare} spare: {workers}"
        time.sleep(0.25)


def test_running_out_of_wasm_memory_is_a_memory_error(page: Any, base_url: str) -> None:
    """Pyodide's memory is a 32-bit wasm heap (4 GiB at most): a cell that allocates until none is left gets
    MemoryError, as a CPython process does, and the kernel goes on with its state; an index past 32 bits is
    OverflowError, as on a 32-bit CPython. Nothing restarts."""
    open_lab(page, base_url)
    nb = new_notebook(
        page,
        "memory-test.ipynb",
        [
            "kept = 41\nchunks = []\nfor _ in range(100):\n    chunks.append(bytearray(200 * 2**20))",
            "del chunks\nimport gc\ngc.collect()\nblock = bytearray(100 * 2**20)\nprint(kept + 1, len(block))",
            "bytearray(3 * 2**30)",
        ],
    )
    kernel_id = nb.kernel["id"]
    out = nb.run_and_wait(0, 180)
    errors = [o for o in out if o["output_type"] == "error"]
    assert [e["ename"] for e in errors] == ["MemoryError"], dump(out)
    assert output_text(nb.run_and_wait(1, 60)).strip() == f"42 {100 * 2**20}"
    errors = [o for o in nb.run_and_wait(2, 60) if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "OverflowError", errors
    assert nb.js("return [kernel.id, window.concurrentKernels.get(kernel.id).restarts];") == [kernel_id, 0]


def test_the_kernel_ending_itself_restarts_or_shuts_down_in_the_page(page: Any, base_url: str) -> None:
    """ipykernel's `kernel.do_shutdown(restart)` and `exit` in a cell (the core's exit_callback): the page restarts
    the kernel as a Jupyter server does when a kernel process ends (JupyterLab: "Kernel Restarting"), or shuts it
    down (do_shutdown(False)) as JupyterLab's own shut down does."""
    open_lab(page, base_url)
    nb = new_notebook(
        page,
        "end-itself-test.ipynb",
        [
            "a = 1",
            "get_ipython().kernel.do_shutdown(True)",
            "'a' in globals()",
            "b = 1",
            "exit",  # alone in its cell: IPython calls it (in a longer cell it is just a name)
            "'b' in globals()",
            "get_ipython().kernel.do_shutdown(False)",
        ],
    )
    kernel_id = nb.kernel["id"]
    nb.js(_RECORD_STATUS)
    assert nb.run_and_wait(0) == []
    out = nb.run_and_wait(1, 60)
    assert not [o for o in out if o["output_type"] == "error"], dump(out)
    dialog = page.locator(".jp-Dialog", has_text="Kernel Restarting")
    dialog.wait_for(timeout=30_000)
    dialog.locator(".jp-mod-accept").click()
    page.wait_for_function(f"() => ({_KERNEL_STATUS_TEXT})()?.endsWith('Idle')", timeout=120_000)
    assert nb.run_and_wait(2, 60)[0]["data"]["text/plain"] == "False"
    assert nb.js("return [kernel.id, window.concurrentKernels.get(kernel.id).restarts];") == [kernel_id, 1]

    assert nb.run_and_wait(3, 60) == []
    assert nb.run_and_wait(4, 60) == []
    page.locator(".jp-Dialog", has_text="Kernel Restarting").locator(".jp-mod-accept").click()
    page.wait_for_function(f"() => ({_KERNEL_STATUS_TEXT})()?.endsWith('Idle')", timeout=120_000)
    assert nb.run_and_wait(5, 60)[0]["data"]["text/plain"] == "False"
    assert nb.js("return window.concurrentKernels.get(kernel.id).restarts;") == 2

    nb.run(6)
    page.wait_for_function("() => window.__ckStatus.includes('dead')", timeout=60_000)
    page.wait_for_function("() => window.concurrentKernels.size === 0", timeout=30_000)
    time.sleep(2)
    spare = page.evaluate("window.concurrentKernelPool.spareCount")
    assert len(kernel_workers(page)) == spare, "the kernel's worker is still alive"


_FLOOD = r"""
const k = window.concurrentKernels.get(kernel.id);
const out = [];
const sendMessage = k._sendMessage;
k._sendMessage = m => { out.push({channel: m.channel, type: m.header.msg_type, parent: m.parent_header?.msg_id,
                                  content: m.content}); sendMessage(m); };
window.__ckFloodOut = out;
const header = (msg_type, msg_id) => ({msg_type, msg_id, session: 'flood', username: '', date: '', version: '5.3'});
const req = (msg_type, msg_id, content, extra = {}) =>
  ({channel: 'shell', header: header(msg_type, msg_id), parent_header: {}, metadata: {}, content, ...extra});
const circular = req('execute_request', 'circular', {code: '1'});
circular.content.self = circular;
const huge = new Uint8Array(64 * 1024 * 1024);
huge[huge.length - 1] = 7;
const bad = [
  // Not messages at all, or without a header.msg_type: dropped by the page with a console line.
  null, undefined, 42, 'execute_request', [], {}, {channel: 'shell'}, {header: 'kernel_info_request'},
  {channel: 'shell', header: {msg_type: 7, msg_id: 'numeric-type'}, content: {}},
  {channel: 'shell', header: {msg_type: '', msg_id: 'empty-type'}, content: {}},
  // Requests with content of the wrong shape or type: error replies from the kernel.
  req('execute_request', 'content-string', 'nope'),
  req('execute_request', 'content-list', [1, 2]),
  req('execute_request', 'code-number', {code: 42}),
  req('execute_request', 'code-missing', {silent: false}),
  req('execute_request', 'silent-string', {code: '1', silent: 'yes'}),
  req('complete_request', 'cursor-string', {code: 'pri', cursor_pos: 'x'}),
  req('inspect_request', 'inspect-null', null),
  req('history_request', 'history-bad', {hist_access_type: 5}),
  req('is_complete_request', 'is-complete-missing', {}),
  req('comm_info_request', 'comm-info-target', {target_name: ['a']}),
  req('made_up_request', 'made-up', {}),
  req('execute_request', 'buffers-not-list', {code: '1'}, {buffers: 'not a list'}),
  req('execute_request', 'null-buffer', {code: '1'}, {buffers: [null, 5, 'x']}),
  circular,
  // Wrong channels and headers: dropped with a log line, or answered.
  {...req('kernel_info_request', 'bad-channel', {}), channel: 'nonsense'},
  {...req('kernel_info_request', 'numeric-channel', {}), channel: 5},
  req('execute_request', {not: 'a string'}, {code: '1'}),
  {...req('kernel_info_request', 'no-parent', {}), parent_header: 'x', metadata: 7},
  {channel: 'shell', header: {msg_type: 'execute_request', msg_id: 'bare-header'}},
  // Not requests: comm messages for comms that do not exist, some with huge buffers; replies nobody asked for.
  req('comm_msg', 'comm-unknown', {comm_id: 'nope', data: {}}),
  req('comm_msg', 'comm-huge', {comm_id: 'nope', data: {}}, {buffers: [huge.buffer]}),
  req('comm_msg', 'comm-many', {comm_id: 'nope', data: {}},
      {buffers: Array.from({length: 2000}, (_, i) => new Uint8Array([i % 256]))}),
  req('comm_msg', 'comm-bad-buffers', {comm_id: 'nope', data: {}}, {buffers: [{}, 'x']}),
  req('comm_open', 'comm-open-bad', {comm_id: 5, target_name: null}),
  req('comm_close', 'comm-close-bad', {comm_id: 'nope', data: 'x'}),
  req('execute_reply', 'stray-reply', {status: 'ok'}),
  {...req('input_reply', 'stray-input', {value: 'x'}), channel: 'stdin'},
  // A huge buffer on a valid request: answered as usual.
  req('execute_request', 'huge-ok', {code: '21 * 2', silent: false, store_history: false},
      {buffers: [new Uint8Array(32 * 1024 * 1024)]}),
];
const thrown = [];
for (let round = 0; round < 3; round++) {
  for (const m of bad) {
    try {
      await k.handleMessage(m);
    } catch (err) {
      thrown.push(String(err));
    }
  }
}
return {thrown, count: bad.length};
"""

#: Requests in the flood, each answered with an error reply, and that reply's ename.
_FLOOD_ERRORS = {
    "content-string": "InvalidMessage",
    "content-list": "InvalidMessage",
    "code-number": "InvalidMessage",
    "code-missing": "InvalidMessage",
    "silent-string": "InvalidMessage",
    "cursor-string": "InvalidMessage",
    "inspect-null": "InvalidMessage",
    "history-bad": "InvalidMessage",
    "is-complete-missing": "InvalidMessage",
    "comm-info-target": "InvalidMessage",
    "made-up": "UnknownMessageType",
    "buffers-not-list": "MalformedMessage",
    "null-buffer": "MalformedMessage",
    "circular": "MalformedMessage",
}


@pytest.mark.parametrize("isolated", [True, False], ids=["isolated", "not-isolated"])
def test_a_flood_of_malformed_page_messages(page: Any, base_url: str, plain_url: str, isolated: bool) -> None:
    """Messages a page should never send (not objects, no header, content of the wrong type, wrong channels,
    buffers that are not buffers, 64 MB and 2,000 buffers on comm messages), three times over: every request among
    them gets an error reply naming what is wrong, everything else a console line, and the kernel goes on in the same
    worker with its variables (no restart)."""
    logs: list[str] = []
    page.on("console", lambda m: logs.append(m.text))
    open_lab(page, base_url if isolated else plain_url)
    nb = new_notebook(page, "flood-test.ipynb", ["a = 1\na", "b = a + 1\nb"])
    assert nb.run_and_wait(0)[0]["data"]["text/plain"] == "1"
    flood = nb.js(_FLOOD)
    assert flood["thrown"] == [], flood

    def replies() -> dict[str, list[dict[str, Any]]]:
        seen: dict[str, list[dict[str, Any]]] = {}
        for m in page.evaluate("window.__ckFloodOut"):
            if m["channel"] == "shell" and m["type"].endswith("_reply"):
                seen.setdefault(str(m["parent"]), []).append(m["content"])
        return seen

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(len(replies().get(i, [])) >= 3 for i in [*_FLOOD_ERRORS, "huge-ok"]):
        time.sleep(0.5)
    got = replies()
    for msg_id, ename in _FLOOD_ERRORS.items():
        contents = got.get(msg_id, [])
        assert len(contents) == 3, (msg_id, contents)
        assert all(c["status"] == "error" and c["ename"] == ename for c in contents), (msg_id, contents)
    assert [c["status"] for c in got["huge-ok"]] == ["ok"] * 3, got["huge-ok"]
    # The requests on a channel the kernel does not have are logged, not answered; the others get their reply.
    assert "bad-channel" not in got and "numeric-channel" not in got, got.keys()
    assert [c["status"] for c in got["no-parent"]] == ["ok"] * 3, got["no-parent"]
    # Dropped by the page: 9 with no header.msg_type (the empty one reaches Python, which drops it), the comm
    # message whose buffers are not buffers.
    assert len([line for line in logs if "dropping malformed message" in line]) == 3 * 9, logs
    assert len([line for line in logs if "dropping comm_msg: buffers must be" in line]) == 3, logs
    # What Python drops is logged to the worker's console (which the page repeats), as the ZMQ kernel logs to its
    # terminal: nothing of it goes out on iopub, where no front end would show it.
    python_logs = [line for line in logs if line.startswith("[concurrent kernel] [concurrent-kernel ERROR]")]
    assert len([line for line in python_logs if "received on unknown channel 'nonsense'" in line]) == 3, logs
    assert len([line for line in python_logs if "without a header.msg_type" in line]) == 3, logs
    assert not [m for m in page.evaluate("window.__ckFloodOut") if m["type"] == "stream"]

    # The same kernel, in the same worker, with its state: nothing restarted.
    out = nb.run_and_wait(1, 60)
    assert out[0]["data"]["text/plain"] == "2", dump(out)
    assert nb.js("return window.concurrentKernels.get(kernel.id).restarts;") == 0
    # Its worker, plus at most the pool's spare (warmed once the page has been quiet: during the flood's wait or not).
    assert 1 <= len(kernel_workers(page)) <= 2
    assert not [line for line in logs if "died" in line or "fatal" in line.lower()], logs
