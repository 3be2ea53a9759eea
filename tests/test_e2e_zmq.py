"""End-to-end tests: the kernel as a subprocess started by jupyter_client, driven over real ZMQ sockets."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import zmq
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.manager import KernelManager
from jupyter_client.session import Session

from e2e_helpers import (
    TIMEOUT,
    drain,
    execute,
    iopub_until_idle,
    kernel_pid,
    of_type,
    request,
    send,
    spec_name,
    start_kernel,
    stdout_of,
    stop_kernel,
    wait_for_iopub,
    wait_reply,
    write_kernelspecs,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

BACKENDS = ["asyncio", "trio"]
Kernel = tuple[KernelManager, BlockingKernelClient, str]


@pytest.fixture(scope="session")
def kernels_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_kernelspecs(tmp_path_factory.mktemp("kernelspecs"))


@pytest.fixture(scope="module", params=BACKENDS)
def shared(request: pytest.FixtureRequest, kernels_dir: Path) -> Iterator[Kernel]:
    """One kernel per backend, shared by every test that does not stop or restart it."""
    km, kc = start_kernel(kernels_dir, spec_name(request.param))
    proc = psutil.Process(kernel_pid(km))
    try:
        yield km, kc, request.param
    finally:
        stop_kernel(km, kc)
    # no orphan: the kernel process and anything it started are gone after shutdown
    _, alive = psutil.wait_procs([proc], timeout=15)
    assert not alive, f"kernel process left after shutdown: {alive}"


@pytest.fixture
def kernel(shared: Kernel) -> Kernel:
    km, kc, _ = shared
    assert km.is_alive(), "the shared kernel died in an earlier test"
    drain(kc)
    return shared


@pytest.fixture
def own_kernel(request: pytest.FixtureRequest, kernels_dir: Path) -> Iterator[Kernel]:
    """A kernel for one test (shutdown/restart); parametrize indirectly with the backend."""
    backend = request.param
    km, kc = start_kernel(kernels_dir, spec_name(backend))
    try:
        yield km, kc, backend
    finally:
        kc.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)


def _ok(reply: dict[str, Any]) -> dict[str, Any]:
    content = reply["content"]
    assert content["status"] == "ok", content
    return content


def _statuses(msgs: list[dict[str, Any]]) -> list[str]:
    return [m["content"]["execution_state"] for m in msgs if m["msg_type"] == "status"]


# ------------------------------------------------------------------ execute and outputs


def test_execute_outputs(kernel: Kernel) -> None:
    _, kc, _ = kernel
    reply, msgs = execute(kc, "print('hello'); 6 * 7")
    content = _ok(reply)
    assert _statuses(msgs) == ["busy", "idle"]
    assert stdout_of(msgs) == "hello\n"
    [result] = of_type(msgs, "execute_result")
    assert result["content"]["data"]["text/plain"] == "42"
    assert result["content"]["execution_count"] == content["execution_count"]
    [inp] = of_type(msgs, "execute_input")
    assert inp["content"]["execution_count"] == content["execution_count"]


def test_display_update_and_clear(kernel: Kernel) -> None:
    _, kc, _ = kernel
    code = (
        "from IPython.display import display, clear_output, HTML\n"
        "h = display(HTML('<b>one</b>'), display_id=True)\n"
        "h.update(HTML('<b>two</b>'))\n"
        "print('before clear')\n"
        "clear_output(wait=True)\n"
    )
    reply, msgs = execute(kc, code)
    _ok(reply)
    kinds = [m["msg_type"] for m in msgs]
    [disp] = of_type(msgs, "display_data")
    [upd] = of_type(msgs, "update_display_data")
    assert disp["content"]["data"]["text/html"] == "<b>one</b>"
    assert upd["content"]["data"]["text/html"] == "<b>two</b>"
    assert disp["content"]["transient"]["display_id"] == upd["content"]["transient"]["display_id"]
    # stdout is flushed before clear_output
    assert kinds.index("stream") < kinds.index("clear_output")
    assert of_type(msgs, "clear_output")[0]["content"]["wait"] is True


def test_error_with_traceback(kernel: Kernel) -> None:
    _, kc, _ = kernel
    reply, msgs = execute(kc, "1 / 0")
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "ZeroDivisionError"
    [err] = of_type(msgs, "error")
    assert err["content"]["ename"] == "ZeroDivisionError"
    traceback = err["content"]["traceback"]
    assert traceback and any("ZeroDivisionError" in line for line in traceback)


def test_silent_store_history_user_expressions(kernel: Kernel) -> None:
    _, kc, _ = kernel
    count = _ok(execute(kc, "pass")[0])["execution_count"]
    reply, msgs = execute(kc, "print('quiet'); 5", silent=True)
    _ok(reply)
    assert not of_type(msgs, "execute_input") and not of_type(msgs, "execute_result")
    assert stdout_of(msgs) == "quiet\n"
    reply, _ = execute(kc, "x_e2e = 3", store_history=False)
    _ok(reply)
    reply, _ = execute(kc, "pass", user_expressions={"a": "x_e2e * 2", "b": "undefined_name_e2e"})
    content = _ok(reply)
    # silent and store_history=False cells do not advance the execution count
    assert content["execution_count"] == count + 1
    exprs = content["user_expressions"]
    assert exprs["a"]["status"] == "ok" and exprs["a"]["data"]["text/plain"] == "6"
    assert exprs["b"]["status"] == "error" and exprs["b"]["ename"] == "NameError"


def test_stop_on_error_aborts_queued(kernel: Kernel) -> None:
    _, kc, _ = kernel
    failing = kc.execute("import time; time.sleep(0.5); raise ValueError('boom')")
    queued = [kc.execute(f"open('/dev/null').close(); {i}") for i in range(3)]
    assert wait_reply(kc, failing)["content"]["status"] == "error"
    for msg_id in queued:
        assert wait_reply(kc, msg_id)["content"]["status"] == "aborted"
    # the queue runs again afterwards
    _ok(execute(kc, "1")[0])
    # stop_on_error=False: the next cell still runs
    failing = kc.execute("import time; time.sleep(0.3); raise ValueError('boom')", stop_on_error=False)
    after = kc.execute("2")
    assert wait_reply(kc, failing)["content"]["status"] == "error"
    assert wait_reply(kc, after)["content"]["status"] == "ok"


# ------------------------------------------------------------------ introspection requests


def test_complete_inspect_page(kernel: Kernel) -> None:
    _, kc, _ = kernel
    _ok(execute(kc, "import os; some_long_name_e2e = 1")[0])
    reply = wait_reply(kc, kc.complete("some_long_na"))
    content = _ok(reply)
    assert "some_long_name_e2e" in content["matches"]
    assert content["cursor_start"] == 0 and content["cursor_end"] == len("some_long_na")
    reply = wait_reply(kc, kc.inspect("os.path.join", len("os.path.join")))
    content = _ok(reply)
    assert content["found"] is True and "text/plain" in content["data"]
    reply = wait_reply(kc, kc.inspect("no_such_name_e2e", 3))
    assert _ok(reply)["found"] is False
    reply, _ = execute(kc, "os.path.join?")
    [page] = [p for p in _ok(reply)["payload"] if p["source"] == "page"]
    assert "text/plain" in page["data"]


def test_history(kernel: Kernel) -> None:
    _, kc, _ = kernel
    marker = uuid.uuid4().hex[:8]
    for _ in range(2):
        _ok(execute(kc, f"'{marker}'")[0])
    _ok(execute(kc, f"'{marker}' + 'x'")[0])
    tail = _ok(wait_reply(kc, kc.history(hist_access_type="tail", n=3, include_latest=True)))["history"]
    assert [h[2] for h in tail] == [f"'{marker}'", f"'{marker}'", f"'{marker}' + 'x'"]
    latest = _ok(wait_reply(kc, kc.history(hist_access_type="tail", n=1, include_latest=True)))["history"]
    assert latest[-1][2] == f"'{marker}' + 'x'"
    session, start = tail[0][0], tail[0][1]
    rng_id = kc.history(hist_access_type="range", session=session, start=start, stop=start + 2)
    rng = _ok(wait_reply(kc, rng_id))
    assert [h[1] for h in rng["history"]] == [start, start + 1]
    search = _ok(wait_reply(kc, kc.history(hist_access_type="search", pattern=f"'{marker}'*")))["history"]
    assert len(search) == 3
    unique = _ok(
        wait_reply(kc, kc.history(hist_access_type="search", pattern=f"'{marker}'", unique=True))
    )["history"]
    assert [h[2] for h in unique] == [f"'{marker}'"]
    with_output_id = kc.history(hist_access_type="tail", n=1, output=True, include_latest=True)
    with_output = _ok(wait_reply(kc, with_output_id))["history"]
    assert len(with_output[-1][2]) == 2  # (input, output) pairs


def test_history_tail_includes_the_latest_cell(kernel: Kernel) -> None:
    """Like ipykernel (and as jupyter_kernel_test expects), a plain tail request ends with the last cell."""
    _, kc, _ = kernel
    marker = uuid.uuid4().hex[:8]
    _ok(execute(kc, f"'{marker}'")[0])
    tail = _ok(wait_reply(kc, kc.history(hist_access_type="tail", n=2, raw=True, output=False)))["history"]
    assert tail[-1][2] == f"'{marker}'"


def test_history_range_reports_the_session_number(kernel: Kernel) -> None:
    _, kc, _ = kernel
    _ok(execute(kc, "'range marker'")[0])
    [(session, line, _)] = _ok(wait_reply(kc, kc.history(hist_access_type="tail", n=1)))["history"]
    rng_id = kc.history(hist_access_type="range", session=session, start=line, stop=line + 1)
    [entry] = _ok(wait_reply(kc, rng_id))["history"]
    assert entry == [session, line, "'range marker'"]


def test_is_complete(kernel: Kernel) -> None:
    _, kc, _ = kernel
    assert wait_reply(kc, kc.is_complete("x = 1"))["content"]["status"] == "complete"
    content = wait_reply(kc, kc.is_complete("for i in range(3):"))["content"]
    assert content["status"] == "incomplete" and content["indent"] == "    "
    assert wait_reply(kc, kc.is_complete("x = )"))["content"]["status"] == "invalid"


def test_comm_info_target_filter(kernel: Kernel) -> None:
    _, kc, _ = kernel
    code = (
        "from comm import create_comm\n"
        "c1 = create_comm(target_name='e2e_a')\n"
        "c2 = create_comm(target_name='e2e_b')"
    )
    _ok(execute(kc, code)[0])
    comms = _ok(wait_reply(kc, kc.comm_info()))["comms"]
    assert {"e2e_a", "e2e_b"} <= {c["target_name"] for c in comms.values()}
    filtered = _ok(wait_reply(kc, kc.comm_info(target_name="e2e_a")))["comms"]
    assert filtered and {c["target_name"] for c in filtered.values()} == {"e2e_a"}
    _ok(execute(kc, "c1.close(); c2.close()")[0])


def test_kernel_info_shell_and_control(kernel: Kernel) -> None:
    _, kc, _ = kernel
    for channel in ("shell", "control"):
        reply, msgs = request(kc, "kernel_info_request", {}, channel)
        content = _ok(reply)
        assert content["protocol_version"] == "5.5"
        assert content["language_info"]["name"] == "python"
        assert isinstance(content["supported_features"], list)
        assert "kernel subshells" in content["supported_features"]
        assert _statuses(msgs) == ["busy", "idle"]


def test_connect_request(kernel: Kernel) -> None:
    km, kc, _ = kernel
    content = _ok(request(kc, "connect_request", {})[0])
    info = km.get_connection_info()
    for name in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"):
        assert content[name] == info[name]


def test_debug_request_without_a_dap_request_fails(kernel: Kernel) -> None:
    _, kc, _ = kernel  # the debugger itself: tests/test_e2e_debugger.py
    reply, _ = request(kc, "debug_request", {"command": "initialize"}, "control")
    assert reply["msg_type"] == "debug_reply" and reply["content"]["success"] is False


# ------------------------------------------------------------------ stdin


def test_stdin_input_and_getpass(kernel: Kernel) -> None:
    _, kc, _ = kernel
    code = "name = input('who? '); import getpass; pw = getpass.getpass('pw: '); print(name, pw)"
    msg_id = kc.execute(code, allow_stdin=True)
    req = kc.get_stdin_msg(timeout=TIMEOUT)
    assert req["msg_type"] == "input_request"
    assert req["content"] == {"prompt": "who? ", "password": False}
    kc.input("alice")  # sent without a parent header
    req = kc.get_stdin_msg(timeout=TIMEOUT)
    assert req["content"]["password"] is True
    kc.input("secret")
    _ok(wait_reply(kc, msg_id))
    assert "alice secret\n" in stdout_of(iopub_until_idle(kc, msg_id))


def test_stdin_not_allowed(kernel: Kernel) -> None:
    _, kc, _ = kernel
    reply, _ = execute(kc, "input('x')", allow_stdin=False)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "StdinNotImplementedError"


# ------------------------------------------------------------------ interrupts


def _interrupt_cases(backend: str) -> list[str]:
    lib = "trio" if backend == "trio" else "asyncio"
    sleeper = f"import {lib}\nawait {lib}.sleep(100)"
    return [
        "while True: pass",
        "import time\ntime.sleep(100)",
        sleeper,
        "# thread\nwhile True: pass",
    ]


@pytest.mark.parametrize("case", range(4), ids=["busy-loop", "sleep", "await-sleep", "thread-busy-loop"])
def test_interrupt(kernel: Kernel, case: int) -> None:
    km, kc, backend = kernel
    body = _interrupt_cases(backend)[case]
    lines = body.split("\n")
    head = lines[:1] if lines[0].startswith("#") else []
    code = "\n".join([*head, "print('started', flush=True)", *lines[len(head):]])
    msg_id = kc.execute(code)
    wait_for_iopub(kc, "stream", msg_id)
    time.sleep(0.2)
    km.interrupt_kernel()
    reply = wait_reply(kc, msg_id)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    iopub_until_idle(kc, msg_id)
    assert km.is_alive()
    _ok(execute(kc, "'alive'")[0])


# ------------------------------------------------------------------ concurrency


@pytest.mark.parametrize("channel", ["shell", "control"])
def test_requests_answered_while_cell_blocks(kernel: Kernel, channel: str) -> None:
    _, kc, _ = kernel
    msg_id = kc.execute("import time\nprint('started', flush=True)\ntime.sleep(3)")
    wait_for_iopub(kc, "stream", msg_id)
    started = time.monotonic()
    _ok(request(kc, "kernel_info_request", {}, channel)[0])
    info_done = time.monotonic() - started
    if channel == "shell":
        _ok(request(kc, "comm_info_request", {}, channel)[0])
    answered = time.monotonic() - started
    # loose sanity bound: answered before the cell's 3 s sleep could have finished
    assert info_done < 2.5 and answered < 2.5
    _ok(wait_reply(kc, msg_id))


def test_comm_from_client_wakes_awaiting_cell(kernel: Kernel) -> None:
    _, kc, _ = kernel
    setup = (
        "import aiologic\n"
        "e2e_event = aiologic.Event()\n"
        "e2e_got = []\n"
        "def _e2e_target(comm, open_msg):\n"
        "    e2e_got.append(open_msg['content']['data'])\n"
        "    @comm.on_msg\n"
        "    def _on_msg(msg):\n"
        "        e2e_got.append(msg['content']['data'])\n"
        "        e2e_event.set()\n"
        "get_ipython().kernel.comm_manager.register_target('e2e_target', _e2e_target)\n"
    )
    _ok(execute(kc, setup)[0])
    waiting = kc.execute("print('waiting', flush=True)\nawait e2e_event\ne2e_got")
    wait_for_iopub(kc, "stream", waiting)
    comm_id = uuid.uuid4().hex
    send(kc, "comm_open", {"comm_id": comm_id, "target_name": "e2e_target", "data": {"hello": 1}})
    send(kc, "comm_msg", {"comm_id": comm_id, "data": {"ping": 2}})
    _ok(wait_reply(kc, waiting))
    msgs = iopub_until_idle(kc, waiting)
    [result] = of_type(msgs, "execute_result")
    assert result["content"]["data"]["text/plain"] == "[{'hello': 1}, {'ping': 2}]"
    send(kc, "comm_close", {"comm_id": comm_id, "data": {}})


def test_task_cell_runs_while_queued_cell_awaits(kernel: Kernel) -> None:
    _, kc, _ = kernel
    _ok(execute(kc, "import aiologic\ne2e_gate = aiologic.Event()")[0])
    waiting = kc.execute("print('waiting', flush=True)\nawait e2e_gate\n'released'")
    wait_for_iopub(kc, "stream", waiting)
    queued_after = kc.execute("'queued after'")
    task_reply, task_msgs = execute(kc, "# task\ne2e_gate.set()\nprint('task ran')")
    _ok(task_reply)
    assert stdout_of(task_msgs) == "task ran\n"
    _ok(wait_reply(kc, waiting))
    _ok(wait_reply(kc, queued_after))


_MODE_CODE = (
    "from concurrent_kernel._context import current_execution\nprint(current_execution.get().run_mode)"
)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("header", "task"),
        ("metadata", "thread"),
        ("tags", "task"),
        ("comment", "thread"),
        ("default", "queue"),
    ],
)
def test_run_mode_selection(kernel: Kernel, how: str, expected: str) -> None:
    _, kc, _ = kernel
    code = _MODE_CODE
    header: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    if how == "header":
        header["run_mode"] = expected
        metadata["run_mode"] = "thread"  # the header wins
    elif how == "metadata":
        metadata["run_mode"] = expected
        metadata["tags"] = ["task"]  # metadata wins over tags
    elif how == "tags":
        metadata["tags"] = ["other", expected]
        code = "# thread\n" + code  # tags win over the first-line comment
    elif how == "comment":
        code = f"# {expected}\n" + code
    reply, msgs = request(kc, "execute_request", {"code": code}, header=header, metadata=metadata)
    _ok(reply)
    assert stdout_of(msgs).strip() in (expected, f"RunMode.{expected.upper()}")


def test_invalid_run_mode_is_an_error(kernel: Kernel, tmp_path: Path) -> None:
    _, kc, _ = kernel
    marker = tmp_path / "ran"
    reply, _ = request(kc, "execute_request", {"code": f"open({str(marker)!r}, 'w').close()"},
                       header={"run_mode": "sideways"})
    assert reply["content"]["status"] == "error"
    assert not marker.exists()


# ------------------------------------------------------------------ subshells


def test_subshells(kernel: Kernel, tmp_path: Path) -> None:
    _, kc, _ = kernel
    created = _ok(request(kc, "create_subshell_request", {}, "control")[0])
    subshell_id = created["subshell_id"]
    listed = _ok(request(kc, "list_subshell_request", {}, "control")[0])
    assert subshell_id in listed["subshell_id"]
    in_subshell = {"subshell_id": subshell_id}
    reply, msgs = request(kc, "execute_request", {"code": "print('in subshell')"}, header=in_subshell)
    _ok(reply)
    assert stdout_of(msgs) == "in subshell\n"
    assert reply["header"].get("subshell_id") == subshell_id
    # a subshell has its own queue: it runs while the main shell's queue waits (for the subshell's cell)
    _ok(execute(kc, "import aiologic\ne2e_sub_gate = aiologic.Event()")[0])
    blocked = kc.execute("print('started', flush=True)\nawait e2e_sub_gate")
    wait_for_iopub(kc, "stream", blocked)
    _ok(request(kc, "execute_request", {"code": "e2e_sub_gate.set()"}, header=in_subshell)[0])
    _ok(wait_reply(kc, blocked))
    _ok(request(kc, "delete_subshell_request", {"subshell_id": subshell_id}, "control")[0])
    listed = _ok(request(kc, "list_subshell_request", {}, "control")[0])
    assert subshell_id not in listed["subshell_id"]
    reply, _ = request(kc, "delete_subshell_request", {"subshell_id": subshell_id}, "control")
    assert reply["content"]["status"] == "error"
    # unknown subshell: error reply, code not run
    marker = tmp_path / "ran"
    reply, msgs = request(kc, "execute_request", {"code": f"open({str(marker)!r}, 'w').close()"},
                          header={"subshell_id": "no-such-subshell"})
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] and "no-such-subshell" in reply["content"]["evalue"]
    assert _statuses(msgs) == ["busy", "idle"]
    assert not marker.exists()


# ------------------------------------------------------------------ bad input over real ZMQ


class RawShell:
    """A raw DEALER socket on the kernel's shell port, for messages jupyter_client would never send."""

    def __init__(self, km: KernelManager) -> None:
        info = km.get_connection_info()
        self.key = info["key"] if isinstance(info["key"], bytes) else str(info["key"]).encode()
        self.session = Session(key=self.key, signature_scheme=str(info["signature_scheme"]))
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(f"{info['transport']}://{info['ip']}:{info['shell_port']}")

    def frames(self, msg_type: str, content: dict[str, Any], session: Session | None = None) -> list[bytes]:
        session = session or self.session
        msg = session.msg(msg_type, content)
        return [bytes(f) for f in session.serialize(msg)]

    def send(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)

    def replies(self, timeout: float) -> list[dict[str, Any]]:
        out = []
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if not self.sock.poll(int(remaining * 1000)):
                break
            frames = self.sock.recv_multipart()
            _, msg_list = self.session.feed_identities(frames)
            out.append(self.session.deserialize(msg_list))
        return out

    def close(self) -> None:
        self.ctx.destroy(linger=0)


def _counter_code(path: Path) -> str:
    return f"open({str(path)!r}, 'a').write('x')"


def test_bad_input_is_dropped(kernel: Kernel, tmp_path: Path) -> None:
    km, kc, _ = kernel
    counter = tmp_path / "counter"
    raw = RawShell(km)
    try:
        code = {"code": _counter_code(counter)}
        # bad HMAC: flip the signature
        frames = raw.frames("execute_request", code)
        frames[1] = bytes(reversed(frames[1]))
        raw.send(frames)
        # no signature at all
        frames = raw.frames("execute_request", code)
        frames[1] = b""
        raw.send(frames)
        # wrong key
        raw.send(raw.frames("execute_request", code, Session(key=b"not-the-key")))
        # broken framing: no <IDS|MSG> delimiter
        frames = raw.frames("execute_request", code)
        raw.send(frames[1:])
        raw.send([b"just one frame"])
        # invalid JSON in content, correctly signed
        frames = raw.frames("execute_request", code)
        frames[5] = b'{"code": "open(1'
        frames[1] = raw.session.sign(frames[2:6])
        raw.send(frames)
        # a valid message, then the identical frames replayed
        frames = raw.frames("execute_request", code)
        raw.send(frames)
        raw.send(frames)
        replies = raw.replies(timeout=5)
        # exactly the one valid message was answered and executed
        assert [r["msg_type"] for r in replies] == ["execute_reply"], replies
        assert replies[0]["content"]["status"] == "ok"
        assert counter.read_text() == "x"
    finally:
        raw.close()
    assert km.is_alive()
    _ok(execute(kc, "'still alive'")[0])
    assert counter.read_text() == "x"


@pytest.mark.parametrize(
    ("msg_type", "content", "channel"),
    [
        ("execute_request", {}, "shell"),
        ("execute_request", {"code": 42}, "shell"),
        ("complete_request", {"code": "pri", "cursor_pos": "3"}, "shell"),
        ("complete_request", {"code": "pri"}, "shell"),
        ("inspect_request", {"code": "print", "cursor_pos": None}, "shell"),
        ("history_request", {"hist_access_type": 1}, "shell"),
        ("foo_request", {}, "shell"),
        ("foo_request", {}, "control"),
    ],
    ids=[
        "missing-code", "code-int", "cursor-str", "cursor-missing", "cursor-none", "hist-type", "foo",
        "foo-ctl",
    ],
)
def test_malformed_request_gets_error_reply(
    kernel: Kernel, msg_type: str, content: dict[str, Any], channel: str
) -> None:
    km, kc, _ = kernel
    reply, msgs = request(kc, msg_type, content, channel)
    assert reply["msg_type"] == msg_type.replace("_request", "_reply")
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] and reply["content"]["evalue"]
    assert _statuses(msgs) == ["busy", "idle"]
    assert km.is_alive()


# ------------------------------------------------------------------ rich display


def test_ipywidgets_comm_open(kernel: Kernel) -> None:
    _, kc, _ = kernel
    msg_id = kc.execute("import ipywidgets as w; b = w.Button(); display(b)")
    _ok(wait_reply(kc, msg_id, timeout=60))
    msgs = iopub_until_idle(kc, msg_id)
    opens = of_type(msgs, "comm_open")
    assert opens and all(m["content"]["target_name"] == "jupyter.widget" for m in opens)
    assert all(m["parent_header"]["msg_id"] == msg_id for m in opens)
    [disp] = of_type(msgs, "display_data")
    assert "application/vnd.jupyter.widget-view+json" in disp["content"]["data"]


def test_matplotlib_inline(kernel: Kernel) -> None:
    _, kc, _ = kernel
    reply, msgs = execute(kc, "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()", timeout=90)
    _ok(reply)
    assert any("image/png" in m["content"]["data"] for m in of_type(msgs, "display_data"))


# ------------------------------------------------------------------ lifecycle (own kernels)


@pytest.mark.parametrize("own_kernel", BACKENDS, indirect=True)
def test_restart_then_shutdown_leaves_no_process(own_kernel: Kernel) -> None:
    km, kc, _ = own_kernel
    _ok(execute(kc, "e2e_state = 1")[0])
    first = psutil.Process(kernel_pid(km))
    km.restart_kernel(now=False)
    kc.wait_for_ready(timeout=60)
    drain(kc)
    second = psutil.Process(kernel_pid(km))
    assert second.pid != first.pid
    assert not first.is_running() or first.status() == psutil.STATUS_ZOMBIE
    reply, _ = execute(kc, "e2e_state")
    assert reply["content"]["ename"] == "NameError"  # a fresh namespace
    children = second.children(recursive=True)
    km.shutdown_kernel(now=False)
    _, alive = psutil.wait_procs([second, *children], timeout=15)
    assert not alive, f"processes left after shutdown: {alive}"
    assert not km.is_alive()


@pytest.mark.parametrize("own_kernel", ["asyncio"], indirect=True)
def test_shutdown_request_replies_on_control_and_iopub(own_kernel: Kernel) -> None:
    km, kc, _ = own_kernel
    proc = psutil.Process(kernel_pid(km))
    msg_id = send(kc, "shutdown_request", {"restart": False}, "control")
    reply = wait_reply(kc, msg_id, "control")
    assert reply["content"] == {"status": "ok", "restart": False}
    assert wait_for_iopub(kc, "shutdown_reply", msg_id)["content"]["restart"] is False
    proc.wait(timeout=15)
    assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE


@pytest.mark.parametrize("backend", BACKENDS)
def test_signal_interrupt_mode(kernels_dir: Path, backend: str) -> None:
    km, kc = start_kernel(kernels_dir, spec_name(backend, "signal"))
    try:
        msg_id = kc.execute("import time\nprint('started', flush=True)\ntime.sleep(100)")
        wait_for_iopub(kc, "stream", msg_id)
        time.sleep(0.2)
        km.interrupt_kernel()
        assert wait_reply(kc, msg_id)["content"]["ename"] == "KeyboardInterrupt"
        _ok(execute(kc, "1")[0])
    finally:
        stop_kernel(km, kc)


def test_nbclient_runs_a_notebook(kernels_dir: Path) -> None:
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 20\nprint('hi')"),
        nbformat.v4.new_code_cell("x * 2 + 2"),
        nbformat.v4.new_code_cell("from IPython.display import Markdown\nMarkdown('**md**')"),
    ]
    ksm = KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)
    km = KernelManager(kernel_name=spec_name("asyncio"), kernel_spec_manager=ksm)
    client = NotebookClient(nb, km=km, timeout=60, startup_timeout=60)
    try:
        client.execute()
    finally:
        if client.kc is not None:  # nbclient leaves the client of a manager it was handed running
            client.kc.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    assert nb.cells[0].outputs[0]["text"] == "hi\n"
    assert nb.cells[1].outputs[0]["data"]["text/plain"] == "42"
    assert nb.cells[2].outputs[0]["data"]["text/markdown"] == "**md**"
