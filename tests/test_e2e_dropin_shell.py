"""ipykernel drop-in behaviour of the shell side, against real kernel processes over ZMQ (both backends):
the status contract, errors, the debugger in the cell, the compatibility surface third-party code uses."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
import zmq
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from e2e_helpers import (
    TIMEOUT,
    drain,
    execute,
    of_type,
    send,
    spec_name,
    start_kernel,
    stdout_of,
    stop_kernel,
    wait_reply,
    write_kernelspecs,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

BACKENDS = ["asyncio", "trio"]
Msg = dict[str, Any]
Kernel = tuple[KernelManager, BlockingKernelClient, str]


@pytest.fixture(scope="session")
def kernels_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_kernelspecs(tmp_path_factory.mktemp("kernelspecs"))


@pytest.fixture(scope="module", params=BACKENDS)
def shared(request: pytest.FixtureRequest, kernels_dir: Path) -> Iterator[Kernel]:
    km, kc = start_kernel(kernels_dir, spec_name(request.param))
    try:
        yield km, kc, request.param
    finally:
        stop_kernel(km, kc)


@pytest.fixture
def kernel(shared: Kernel) -> Kernel:
    km, kc, _ = shared
    assert km.is_alive(), "the shared kernel died in an earlier test"
    drain(kc)
    return shared


def _iopub_for(kc: BlockingKernelClient, seconds: float) -> list[Msg]:
    """Everything on iopub for `seconds`."""
    out: list[Msg] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            out.append(kc.get_iopub_msg(timeout=left))
        except Empty:
            break
    return out


# ------------------------------------------------------------------ status contract


@pytest.mark.parametrize("backend", BACKENDS)
def test_starting_is_published_before_the_first_reply(kernels_dir: Path, backend: str) -> None:
    """The client subscribes while the kernel is still importing (the kernel's I/O thread answers kernel_info
    before IPython is up): `starting` must still come before that first reply's busy, and only once.

    The client connects before the kernel process starts (the connection file is written first), so its
    subscription is in place before the kernel could publish anything: `starting` is sent once and only
    subscribers already there can see it, for this kernel as for ipykernel."""
    ksm = KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)
    # cache_ports=False: the ports written now are the ones the kernel gets (the port cache would pick new ones)
    km = KernelManager(kernel_name=spec_name(backend), kernel_spec_manager=ksm, cache_ports=False)
    km.write_connection_file()
    kc = km.client()
    # Retry connecting every 5 ms rather than every 100: the client's subscription then lands within ms of the
    # kernel binding its sockets, well before the kernel is far enough to publish anything.
    kc.context.setsockopt(zmq.RECONNECT_IVL, 5)
    kc.start_channels()
    km.start_kernel()
    try:
        seen: list[Msg] = []
        deadline = time.monotonic() + TIMEOUT
        while not any(m["msg_type"] == "iopub_welcome" for m in seen):  # subscribed: nothing published is missed
            assert time.monotonic() < deadline, f"no iopub_welcome: {seen}"
            try:
                seen.append(kc.get_iopub_msg(timeout=0.5))
            except Empty:
                pass
        info_id = kc.kernel_info()
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        assert reply["parent_header"]["msg_id"] == info_id
        cell = kc.execute("1 + 1")
        assert kc.get_shell_msg(timeout=TIMEOUT)["parent_header"]["msg_id"] == cell
        seen += _iopub_for(kc, 1.0)  # read directly: e2e_helpers' waits drop unparented messages
        statuses = [(m["content"]["execution_state"], m["parent_header"].get("msg_id")) for m in seen
                    if m["msg_type"] == "status"]
        assert statuses[:3] == [("starting", None), ("busy", info_id), ("idle", info_id)], statuses
        assert [s for s in statuses if s[0] == "starting"] == [("starting", None)], statuses
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_one_busy_and_one_idle_per_request_while_a_cell_runs(kernel: Kernel) -> None:
    """Requests answered while a cell runs get their own busy/idle; nothing re-publishes busy for the cell."""
    _, kc, _ = kernel
    cell = kc.execute("import time\ntime.sleep(1.5)")
    first = kc.get_iopub_msg(timeout=TIMEOUT)
    collected = [first]
    while not any(m["msg_type"] == "execute_input" for m in collected):
        collected.append(kc.get_iopub_msg(timeout=TIMEOUT))
    others = [
        send(kc, "kernel_info_request", {}),
        send(kc, "complete_request", {"code": "impo", "cursor_pos": 4}),
        send(kc, "inspect_request", {"code": "len", "cursor_pos": 3, "detail_level": 0}),
        send(kc, "comm_info_request", {}),
        send(kc, "history_request", {"hist_access_type": "tail", "n": 1, "output": False, "raw": True}),
        send(kc, "kernel_info_request", {}, channel="control"),
    ]
    for msg_id in others:
        channel = "control" if msg_id == others[-1] else "shell"
        assert wait_reply(kc, msg_id, channel)["content"]["status"] == "ok"
    assert wait_reply(kc, cell)["content"]["status"] == "ok"
    collected += _iopub_for(kc, 1.0)
    statuses = [m for m in collected if m["msg_type"] == "status"]
    per_request = {
        msg_id: [m["content"]["execution_state"] for m in statuses if m["parent_header"].get("msg_id") == msg_id]
        for msg_id in [cell, *others]
    }
    assert per_request == {msg_id: ["busy", "idle"] for msg_id in [cell, *others]}, statuses
    assert len(statuses) == 2 * (len(others) + 1), [
        (m["content"]["execution_state"], m["parent_header"].get("msg_type")) for m in statuses
    ]


# ------------------------------------------------------------------ the debugger in the cell


def _prompt(kc: BlockingKernelClient) -> str:
    msg = kc.get_stdin_msg(timeout=TIMEOUT)
    assert msg["msg_type"] == "input_request", msg
    return str(msg["content"]["prompt"])


def _stdout_until_prompt(kc: BlockingKernelClient, parent: str, answer: str) -> tuple[str, str]:
    """Answer the debugger's prompt; return the cell's stdout up to the next prompt, and that prompt."""
    kc.input(answer)
    prompt = _prompt(kc)
    text = "".join(
        m["content"]["text"] for m in _iopub_for(kc, 0.3)
        if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == parent
    )
    return text, prompt


@pytest.mark.parametrize(
    "stop", ["import pdb; pdb.set_trace()", "breakpoint()", "# thread\nbreakpoint()"],
    ids=["set_trace", "breakpoint", "thread-mode"],
)
def test_pdb_reads_stdin_and_an_interrupt_leaves_it(kernel: Kernel, stop: str) -> None:
    """As ipykernel 7.4 (measured): IPython's debugger at the prompt; an interrupt leaves the debugger (it says
    `KeyboardInterrupt: Interrupted by user`), the cell goes on untraced and replies, the queued cell runs.
    Stdlib pdb would ask again after every interrupt and the cell would never end."""
    _, kc, _ = kernel
    first, _, last = stop.rpartition("\n")
    cell = kc.execute(f"{first}\nsecret = 6 * 7\n{last}\nprint('after the debugger')", allow_stdin=True)
    queued = kc.execute("print('queued')")
    assert _prompt(kc).startswith("ipdb>"), "IPython's debugger, not stdlib pdb"
    text, prompt = _stdout_until_prompt(kc, cell, "p secret")
    assert "42" in text and prompt.startswith("ipdb>")
    interrupt = send(kc, "interrupt_request", {}, channel="control")
    assert wait_reply(kc, interrupt, "control")["content"]["status"] == "ok"
    assert wait_reply(kc, cell)["content"]["status"] == "ok"
    out = "".join(
        m["content"]["text"] for m in _iopub_for(kc, 1.0)
        if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == cell
    )
    assert "--KeyboardInterrupt--" in out and "KeyboardInterrupt: Interrupted by user" in out, out
    assert out.index("KeyboardInterrupt: Interrupted by user") < out.index("after the debugger")
    assert wait_reply(kc, queued)["content"]["status"] == "ok"
    _, msgs = execute(kc, "import sys; print('trace', sys.gettrace())")
    assert "trace None" in "".join(m["content"]["text"] for m in of_type(msgs, "stream")), "tracing left on"


def test_debug_magic_post_mortem(kernel: Kernel) -> None:
    _, kc, _ = kernel
    reply, _ = execute(kc, "def broken():\n    local = 41\n    return 1 / 0\nbroken()")
    assert reply["content"]["ename"] == "ZeroDivisionError"
    cell = kc.execute("%debug", allow_stdin=True)
    assert _prompt(kc).startswith("ipdb>")
    text, _ = _stdout_until_prompt(kc, cell, "p local + 1")
    assert "42" in text
    kc.input("q")
    assert wait_reply(kc, cell)["content"]["status"] == "ok"


def test_pdb_magic_opens_the_debugger_on_an_error(kernel: Kernel) -> None:
    _, kc, _ = kernel
    assert execute(kc, "%pdb on")[0]["content"]["status"] == "ok"
    try:
        cell = kc.execute("def broken():\n    local = 41\n    return 1 / 0\nbroken()", allow_stdin=True)
        assert _prompt(kc).startswith("ipdb>")
        text, _ = _stdout_until_prompt(kc, cell, "p local + 1")
        assert "42" in text
        kc.input("q")
        reply = wait_reply(kc, cell)["content"]
        assert reply["status"] == "error" and reply["ename"] == "ZeroDivisionError"
    finally:
        execute(kc, "%pdb off")


# ------------------------------------------------------------------ errors

BAD_REPR = "class BadRepr:\n    def __repr__(self):\n        raise ValueError('bad repr')\n"
BAD_HTML = "class BadHtml:\n    def _repr_html_(self):\n        raise ValueError('bad html')\n"


@pytest.mark.parametrize(
    "code, evalue",
    [(BAD_REPR + "BadRepr()", "bad repr"), (BAD_HTML + "BadHtml()", "bad html"),
     (BAD_REPR + "display(BadRepr())", "bad repr")],
    ids=["result-repr", "result-html", "display"],
)
def test_display_formatter_error_fails_the_cell(kernel: Kernel, code: str, evalue: str) -> None:
    """The traceback is shown and the reply is `error` (ipykernel 7.4 for results), so stop_on_error aborts
    what is queued behind it."""
    _, kc, _ = kernel
    # The sleep lets the queued request reach the kernel before the error: requests arriving after it run (as in
    # ipykernel, whose stop_on_error_timeout is 0), and a CI run caught exactly that race.
    failing = kc.execute("import time; time.sleep(0.3)\n" + code)
    queued = kc.execute("print('queued')")
    reply = wait_reply(kc, failing)["content"]
    assert reply["status"] == "error" and reply["ename"] == "ValueError" and reply["evalue"] == evalue, reply
    assert any(evalue in line for line in reply["traceback"])
    assert wait_reply(kc, queued)["content"]["status"] == "aborted"


def test_traceback_shown_by_code_that_carries_on_is_ok(kernel: Kernel) -> None:
    _, kc, _ = kernel
    reply, msgs = execute(kc, "try:\n    1/0\nexcept ZeroDivisionError:\n    get_ipython().showtraceback()\n'on'")
    assert reply["content"]["status"] == "ok"
    assert of_type(msgs, "error") and of_type(msgs, "execute_result")


@pytest.mark.parametrize(
    "code",
    ["import time\ntime.sleep(100)", "import anyio\nasync def wait():\n    await anyio.sleep(100)\nawait wait()"],
    ids=["sleep", "await"],
)
def test_interrupt_traceback_is_ipythons(kernel: Kernel, code: str) -> None:
    """The same IPython traceback as any other error (ipykernel's), with the cell's frames and none of the
    kernel's, anyio's or the event loop's."""
    _, kc, _ = kernel
    cell = kc.execute(code)
    time.sleep(0.5)
    send(kc, "interrupt_request", {}, channel="control")
    reply = wait_reply(kc, cell)["content"]
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply
    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(reply["traceback"]))
    assert "KeyboardInterrupt                         Traceback (most recent call last)" in text, text
    assert "Cell In[" in text and "----> " in text, text
    assert "File " not in text, f"frames other than the cell's: {text}"  # IPython's header for a module's frame
    [error] = [m for m in _iopub_for(kc, 0.5) if m["msg_type"] == "error" and m["parent_header"]["msg_id"] == cell]
    assert error["content"]["traceback"] == reply["traceback"]


def test_asyncio_run_in_a_cell_says_how_to_do_it_here(kernel: Kernel) -> None:
    _, kc, backend = kernel
    code = "import asyncio\nasync def main():\n    return 5\nasyncio.run(main())"
    reply, _ = execute(kc, code)
    if backend == "trio":  # no asyncio loop runs under trio: asyncio.run starts one, as in a script
        assert reply["content"]["status"] == "ok"
        return
    content = reply["content"]
    assert content["status"] == "error" and content["ename"] == "RuntimeError"
    text = "\n".join(content["traceback"])
    assert "await main()" in text and "# thread" in text
    reply, _ = execute(kc, "import asyncio\nasyncio.get_event_loop().run_until_complete(asyncio.sleep(0))")
    assert "await main()" in "\n".join(reply["content"]["traceback"])


def test_autoawait_with_another_library_says_how_to_do_it_here(kernel: Kernel) -> None:
    _, kc, backend = kernel
    other = "asyncio" if backend == "trio" else "trio"
    reply, outputs = execute(kc, f"%autoawait {other}")
    assert reply["content"]["status"] == "ok"
    assert f"%%{other}" in stdout_of(outputs) and f"--backend {other}" in stdout_of(outputs)
    _, outputs = execute(kc, "%autoawait")
    assert "is `on`" in stdout_of(outputs)  # the kernel's own runner stays on
    code = f"%%{other}\nimport {other}\nawait {other}.sleep(0.01)\nprint('slept on', '{other}')"
    reply, outputs = execute(kc, code)
    assert reply["content"]["status"] == "ok" and f"slept on {other}" in stdout_of(outputs)


# ------------------------------------------------------------------ what third-party code reaches for

SEND_DISPLAY = (
    "kernel = get_ipython().kernel\n"
    "kernel.session.send(kernel.iopub_socket, 'display_data',\n"
    "                    {'data': {'text/plain': 'sent by hand'}, 'metadata': {}}, parent=kernel.get_parent())\n"
)


def test_session_send_to_iopub_shows_in_the_cell(kernel: Kernel) -> None:
    _, kc, _ = kernel
    reply, msgs = execute(kc, SEND_DISPLAY)
    assert reply["content"]["status"] == "ok", reply["content"]
    [shown] = of_type(msgs, "display_data")
    assert shown["content"]["data"] == {"text/plain": "sent by hand"}
    assert shown["header"]["session"] == reply["header"]["session"], "stamped with the kernel's session"


def test_session_send_from_a_thread_with_a_built_message_and_buffers(kernel: Kernel) -> None:
    """As ipywidgets-era code does: session.msg with the parent's header, then send from another thread."""
    _, kc, _ = kernel
    code = (
        "import threading\n"
        "kernel = get_ipython().kernel\n"
        "header = kernel.get_parent('shell')['header']\n"
        "def work():\n"
        "    msg = kernel.session.msg('comm_msg', {'comm_id': 'nobody', 'data': {}}, parent=header)\n"
        "    kernel.session.send(kernel.iopub_socket, msg, ident=b'comm_msg', buffers=[b'\\xff\\x00'])\n"
        "t = threading.Thread(target=work); t.start(); t.join()\n"
        "print('after')\n"
    )
    reply, msgs = execute(kc, code)
    assert reply["content"]["status"] == "ok", reply["content"]
    [sent] = of_type(msgs, "comm_msg")
    assert sent["content"]["comm_id"] == "nobody" and [bytes(b) for b in sent["buffers"]] == [b"\xff\x00"]
    assert msgs.index(sent) < next(i for i, m in enumerate(msgs) if m["msg_type"] == "stream")


def test_session_send_refuses_other_streams(kernel: Kernel) -> None:
    _, kc, _ = kernel
    reply, _ = execute(kc, "k = get_ipython().kernel\nk.session.send(object(), 'display_data', {})")
    assert reply["content"]["ename"] == "TypeError" and "iopub_socket" in reply["content"]["evalue"]


def test_imports_follow_chdir(kernel: Kernel, tmp_path: Path) -> None:
    """'' is on sys.path, as with ipykernel."""
    _, kc, _ = kernel
    (tmp_path / "ck_chdir_module.py").write_text("VALUE = 'found'\n")
    code = (
        "import os, sys\n"
        "before = os.getcwd()\n"
        f"os.chdir({str(tmp_path)!r})\n"
        "try:\n"
        "    import ck_chdir_module\n"
        "finally:\n"
        "    os.chdir(before)\n"
        "print('' in sys.path, ck_chdir_module.VALUE)\n"
    )
    reply, msgs = execute(kc, code)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert "True found" in "".join(m["content"]["text"] for m in of_type(msgs, "stream"))


def test_comm_message_buffers_reach_the_client(kernel: Kernel) -> None:
    """Widgets send arrays and images as binary buffers beside the message (they were dropped on ZMQ)."""
    _, kc, _ = kernel
    code = "import comm\nc = comm.create_comm(target_name='ck-test')\nc.send({'x': 1}, buffers=[b'\\x00\\x01', b'z'])"
    reply, msgs = execute(kc, code)
    assert reply["content"]["status"] == "ok", reply["content"]
    [sent] = of_type(msgs, "comm_msg")
    assert [bytes(b) for b in sent["buffers"]] == [b"\x00\x01", b"z"]


def test_execute_reply_metadata_says_when_it_started(kernel: Kernel) -> None:
    """ipykernel puts `started` in execute_reply's metadata; JupyterLab records it (shell.execute_reply.started)."""
    from datetime import datetime

    _, kc, _ = kernel
    reply, _ = execute(kc, "import time; time.sleep(0.2)")
    started = datetime.fromisoformat(reply["metadata"]["started"])
    ended = reply["header"]["date"]
    ended = ended if isinstance(ended, datetime) else datetime.fromisoformat(ended)
    assert 0.15 <= (ended - started).total_seconds() < 10
    assert reply["metadata"]["status"] == "ok"


@pytest.mark.parametrize("backend", BACKENDS)
def test_nbclient_stops_at_a_failing_repr(kernels_dir: Path, backend: str) -> None:
    """What stop_on_error buys a user: nbclient raises at the cell whose result could not be shown and runs
    nothing after it."""
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(BAD_HTML + "BadHtml()"), nbformat.v4.new_code_cell("print('not run')")]
    ksm = KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)
    client = NotebookClient(nb, kernel_name=spec_name(backend), timeout=60, kernel_manager_class=KernelManager)
    client.km = client.create_kernel_manager()
    client.km.kernel_spec_manager = ksm
    with pytest.raises(CellExecutionError, match="bad html"):
        client.execute()
    assert nb.cells[1].outputs == []
