"""The debugger over ZMQ, driven the way JupyterLab's debugger panel drives it, on both backends.

The point checked throughout: a cell stopped at a breakpoint does not stop the kernel."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.manager import KernelManager

from e2e_helpers import (
    TIMEOUT,
    drain,
    execute,
    iopub_until_idle,
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

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CELL = "def add(a, b):\n    total = a + b\n    return total\n\nresult = add(2, 3)\nprint('result is', result)\n"


class Dap:
    """A debug client: DAP requests over control, debug_event collected from iopub (other iopub kept)."""

    def __init__(self, km: KernelManager, kc: BlockingKernelClient) -> None:
        self.km = km
        self.kc = kc
        self.seq = 0
        self.events: list[dict[str, Any]] = []
        self.iopub: list[dict[str, Any]] = []

    def __call__(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        self.seq += 1
        content = {"type": "request", "seq": self.seq, "command": command, "arguments": arguments or {}}
        msg = self.kc.session.msg("debug_request", content)
        self.kc.control_channel.send(msg)
        reply = wait_reply(self.kc, msg["header"]["msg_id"], "control", TIMEOUT)
        assert reply["msg_type"] == "debug_reply"
        body: dict[str, Any] = reply["content"]
        assert body.get("command") == command and body.get("request_seq") == self.seq, body
        return body

    def pump(self, seconds: float = 0.2) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                msg = self.kc.get_iopub_msg(timeout=0.05)
            except Empty:
                continue
            (self.events if msg["msg_type"] == "debug_event" else self.iopub).append(msg)

    def wait_event(self, name: str, timeout: float = TIMEOUT, **body: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for msg in self.events[seen:]:
                event = msg["content"]
                if event["event"] == name and all(event.get("body", {}).get(k) == v for k, v in body.items()):
                    self.events.remove(msg)
                    return event
            seen = 0
            self.pump(0.1)
        raise TimeoutError(f"no {name} event {body} in {timeout} s; saw {[m['content']['event'] for m in self.events]}")

    def start(self) -> None:
        init = self("initialize", {"clientID": "test", "adapterID": "python", "pathFormat": "path",
                                   "linesStartAt1": True, "columnsStartAt1": True})
        assert init["success"], init
        assert self("attach")["success"]
        assert self("configurationDone")["success"]

    def breakpoint_in_cell(self, code: str, line: int) -> str:
        path = self("dumpCell", {"code": code})["body"]["sourcePath"]
        reply = self("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": line}]})
        assert reply["success"] and reply["body"]["breakpoints"][0]["verified"], reply
        return str(path)

    def frames(self, thread_id: int) -> list[dict[str, Any]]:
        return list(self("stackTrace", {"threadId": thread_id})["body"]["stackFrames"])

    def locals_of(self, frame_id: int) -> dict[str, str]:
        scopes = self("scopes", {"frameId": frame_id})["body"]["scopes"]
        ref = next(s["variablesReference"] for s in scopes if s["name"] == "Locals")
        return {v["name"]: v["value"] for v in self("variables", {"variablesReference": ref})["body"]["variables"]}


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kernels = write_kernelspecs(tmp_path_factory.mktemp("specs"))
    spec = {
        "argv": [sys.executable, "-m", "concurrent_kernel", "-f", "{connection_file}", "--no-debugger",
                 "--HistoryManager.hist_file=:memory:"],
        "display_name": "concurrent e2e (no debugger)", "language": "python", "interrupt_mode": "message",
    }
    (kernels / "ck-nodebug").mkdir()
    (kernels / "ck-nodebug" / "kernel.json").write_text(json.dumps(spec))
    return kernels


@pytest.fixture(params=["asyncio", "trio"])
def dap(request: pytest.FixtureRequest, specs: Path) -> Iterator[Dap]:
    km, kc = start_kernel(specs, spec_name(request.param))
    try:
        client = Dap(km, kc)
        client.start()
        yield client
    finally:
        stop_kernel(km, kc)


def _finish(dap: Dap, msg_id: str) -> dict[str, Any]:
    return wait_reply(dap.kc, msg_id, "shell", TIMEOUT)["content"]


def test_kernel_info_and_debugger_off_costs_nothing(specs: Path) -> None:
    km, kc = start_kernel(specs, spec_name("asyncio"))
    try:
        info = kc.kernel_info(reply=True, timeout=TIMEOUT)["content"]
        assert info["debugger"] is True and "debugger" in info["supported_features"]
        reply, msgs = execute(kc, "import sys; print('debugpy' in sys.modules)")
        assert stdout_of(msgs).strip() == "False"  # enabled, not started: not even imported
    finally:
        stop_kernel(km, kc)
    km, kc = start_kernel(specs, "ck-nodebug")
    try:
        info = kc.kernel_info(reply=True, timeout=TIMEOUT)["content"]
        assert info["debugger"] is False and "debugger" not in info["supported_features"]
        reply, _ = request(kc, "debug_request", {"type": "request", "seq": 1, "command": "initialize"}, "control")
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "DebuggerUnavailable"
        _, msgs = execute(kc, "import sys; print('debugpy' in sys.modules, sys.gettrace())")
        assert stdout_of(msgs).strip() == "False None"
    finally:
        stop_kernel(km, kc)


def test_breakpoint_variables_step_continue(dap: Dap) -> None:
    path = dap.breakpoint_in_cell(CELL, 2)
    info = dap("debugInfo")["body"]
    assert info["isStarted"] and info["breakpoints"] == [{"source": path, "breakpoints": [{"line": 2}]}]
    assert path.startswith(info["tmpFilePrefix"]) and path.endswith(info["tmpFileSuffix"])
    msg_id = dap.kc.execute(CELL)
    stopped = dap.wait_event("stopped", reason="breakpoint")
    thread_id = stopped["body"]["threadId"]
    frames = dap.frames(thread_id)
    # Only the cell's frames: the kernel's own (anyio, IPython, concurrent_kernel) stay out of the stack.
    assert [(f["name"], f["source"]["path"], f["line"]) for f in frames] == [("add", path, 2), ("<module>", path, 5)]
    assert dap.locals_of(frames[0]["id"]) == {"a": "2", "b": "3"}
    assert dap("debugInfo")["body"]["stoppedThreads"] == [thread_id]  # what a reloaded page restores
    evaluated = dap("evaluate", {"expression": "a * 10", "frameId": frames[0]["id"], "context": "repl"})
    assert evaluated["body"]["result"] == "20"
    rich = dap("richInspectVariables", {"variableName": "a", "frameId": frames[0]["id"]})
    assert rich["success"] and rich["body"]["data"]["text/plain"] == "2"
    assert dap("next", {"threadId": thread_id})["success"]
    dap.wait_event("stopped", reason="step", threadId=thread_id)
    frames = dap.frames(thread_id)
    assert frames[0]["line"] == 3 and dap.locals_of(frames[0]["id"])["total"] == "5"
    assert dap("stepOut", {"threadId": thread_id})["success"]
    dap.wait_event("stopped", reason="step", threadId=thread_id)
    assert dap.frames(thread_id)[0]["name"] == "<module>"
    assert dap("continue", {"threadId": thread_id})["success"]
    assert _finish(dap, msg_id)["status"] == "ok"
    assert "result is 5" in stdout_of(iopub_until_idle(dap.kc, msg_id))


def test_the_kernel_stays_live_while_a_cell_is_stopped(dap: Dap) -> None:
    kc = dap.kc
    echo = (
        "def _echo_target(comm, open_msg):\n"
        "    comm.on_msg(lambda msg: comm.send({'echo': msg['content']['data']['ping']}))\n"
        "get_ipython().kernel.comm_manager.register_target('echo', _echo_target)\n"
    )
    reply, _ = execute(kc, echo)
    assert reply["content"]["status"] == "ok", reply["content"]
    dap.breakpoint_in_cell(CELL, 2)
    msg_id = kc.execute(CELL)
    thread_id = dap.wait_event("stopped", reason="breakpoint")["body"]["threadId"]
    # control and shell requests, a task cell, a subshell and comm_info are all answered meanwhile
    assert kc.kernel_info(reply=True, timeout=TIMEOUT)["content"]["status"] == "ok"
    reply, _ = request(kc, "complete_request", {"code": "resu", "cursor_pos": 4})
    assert reply["content"]["status"] == "ok"
    reply, _ = request(kc, "comm_info_request", {})
    assert reply["content"]["status"] == "ok"
    # comm messages are handled (on the main loop, which the stopped cell does not hold)
    send(kc, "comm_open", {"comm_id": "c-echo", "target_name": "echo", "data": {}})
    ping = send(kc, "comm_msg", {"comm_id": "c-echo", "data": {"ping": 42}})
    echoed = wait_for_iopub(kc, "comm_msg", ping)
    assert echoed["content"]["data"] == {"echo": 42}
    task_id = kc.execute("# task\nprint('task ran beside the stopped cell')")
    assert _finish(dap, task_id)["status"] == "ok"
    assert "task ran beside the stopped cell" in stdout_of(iopub_until_idle(kc, task_id))
    sub, _ = request(kc, "create_subshell_request", {}, "control")
    sub_id = sub["content"]["subshell_id"]
    msg = kc.session.msg("execute_request", {"code": "print('subshell ran')", "silent": False})
    msg["header"]["subshell_id"] = sub_id
    kc.shell_channel.send(msg)
    assert wait_reply(kc, msg["header"]["msg_id"])["content"]["status"] == "ok"
    assert "subshell ran" in stdout_of(iopub_until_idle(kc, msg["header"]["msg_id"]))
    threads = {t["id"]: t["name"] for t in dap("threads")["body"]["threads"]}
    assert threads[thread_id].startswith("cell-") and "(queue)" in threads[thread_id]
    assert not any(name in ("Control", "ZMQ I/O", "Heartbeat") for name in threads.values())
    # interrupt ends the stopped cell; the kernel carries on
    start = time.monotonic()
    dap.km.interrupt_kernel()
    content = _finish(dap, msg_id)
    assert content["status"] == "error" and content["ename"] == "KeyboardInterrupt"
    assert time.monotonic() - start < 10
    reply, msgs = execute(kc, "print('after', 1 + 1)")
    assert reply["content"]["status"] == "ok" and "after 2" in stdout_of(msgs)


def test_task_and_thread_cells_stop_as_their_own_threads(dap: Dap) -> None:
    task_cell = "# task\nvalue = 'task'\nprint(value)\n"
    thread_cell = "# thread\nvalue2 = 'thread'\nprint(value2)\n"
    dap.breakpoint_in_cell(task_cell, 3)
    dap.breakpoint_in_cell(thread_cell, 3)
    task_id = dap.kc.execute(task_cell)
    first = dap.wait_event("stopped", reason="breakpoint")["body"]["threadId"]
    thread_id = dap.kc.execute(thread_cell)
    second = dap.wait_event("stopped", reason="breakpoint")["body"]["threadId"]
    assert first != second
    names = {t["id"]: t["name"] for t in dap("threads")["body"]["threads"]}
    assert "(task)" in names[first] and names[second].startswith("cell-")
    assert set(dap("debugInfo")["body"]["stoppedThreads"]) == {first, second}
    for tid in (first, second):
        assert dap("continue", {"threadId": tid})["success"]
    assert _finish(dap, task_id)["status"] == "ok" and _finish(dap, thread_id)["status"] == "ok"


def test_background_task_stops_as_its_own_thread(dap: Dap) -> None:
    cell = (
        "import anyio\n"
        "from concurrent_kernel import get_kernel\n"
        "async def worker():\n"
        "    step = 'in the background'\n"
        "    print(step)\n"
        "get_kernel().background.spawn(worker, name='worker')\n"
    )
    dap.breakpoint_in_cell(cell, 5)
    reply, _ = execute(dap.kc, cell)
    assert reply["content"]["status"] == "ok"
    thread_id = dap.wait_event("stopped", reason="breakpoint")["body"]["threadId"]
    names = {t["id"]: t["name"] for t in dap("threads")["body"]["threads"]}
    assert names[thread_id] == "background worker"
    assert dap.locals_of(dap.frames(thread_id)[0]["id"]) == {"step": "'in the background'"}
    # the main loop is not the one stopped: queue cells and comm_info go on
    reply, msgs = execute(dap.kc, "print('queue cell ran')")
    assert reply["content"]["status"] == "ok" and "queue cell ran" in stdout_of(msgs)
    assert request(dap.kc, "comm_info_request", {})[0]["content"]["status"] == "ok"
    assert dap("continue", {"threadId": thread_id})["success"]


def test_breakpoint_in_an_imported_file(dap: Dap, tmp_path: Path) -> None:
    module = tmp_path / "dbg_target_mod.py"
    module.write_text("def triple(x):\n    y = x * 3\n    return y\n")
    reply, _ = execute(dap.kc, f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import dbg_target_mod")
    assert reply["content"]["status"] == "ok"
    placed = dap("setBreakpoints", {"source": {"path": str(module)}, "breakpoints": [{"line": 2}]})
    assert placed["success"] and placed["body"]["breakpoints"][0]["verified"]
    msg_id = dap.kc.execute("print(dbg_target_mod.triple(4))")
    thread_id = dap.wait_event("stopped", reason="breakpoint")["body"]["threadId"]
    top = dap.frames(thread_id)[0]
    assert top["source"]["path"] == str(module) and top["line"] == 2
    assert dap("source", {"source": {"path": str(module)}})["body"]["content"] == module.read_text()
    assert dap("continue", {"threadId": thread_id})["success"]
    assert _finish(dap, msg_id)["status"] == "ok"


def test_variables_without_a_stop_and_copy_to_globals(dap: Dap) -> None:
    reply, _ = execute(dap.kc, "numbers = [1, 2, 3]\nconfig = {'depth': 4}\n")
    assert reply["content"]["status"] == "ok"
    variables = {v["name"]: v for v in dap("inspectVariables")["body"]["variables"]}
    assert variables["numbers"]["value"] == "[1, 2, 3]" and "In" not in variables and "_i1" not in variables
    children = dap("variables", {"variablesReference": variables["config"]["variablesReference"]})
    assert [(v["name"], v["value"]) for v in children["body"]["variables"]] == [("'depth'", "4")]
    rich = dap("richInspectVariables", {"variableName": "numbers"})
    assert rich["success"] and rich["body"]["data"]["text/plain"] == "[1, 2, 3]"
    assert not dap("richInspectVariables", {"variableName": "1 + 1"})["success"]
    modules = dap("modules", {})["body"]
    assert modules["totalModules"] > 0 and any(m["name"] == "json" for m in modules["modules"])
    cell = "def inner():\n    hidden = 42\n    return hidden\n\ninner()\n"
    dap.breakpoint_in_cell(cell, 3)
    msg_id = dap.kc.execute(cell)
    thread_id = dap.wait_event("stopped", reason="breakpoint")["body"]["threadId"]
    frame = dap.frames(thread_id)[0]
    copied = dap("copyToGlobals", {"srcVariableName": "hidden", "dstVariableName": "copied", "srcFrameId": frame["id"]})
    assert copied["success"], copied
    assert dap("continue", {"threadId": thread_id})["success"]
    assert _finish(dap, msg_id)["status"] == "ok"
    _, msgs = execute(dap.kc, "print(copied)")
    assert stdout_of(msgs).strip() == "42"


def test_disconnect_returns_cells_to_the_main_loop(dap: Dap) -> None:
    _, msgs = execute(dap.kc, "import threading; print(threading.current_thread().name)")
    assert "(queue)" in stdout_of(msgs)
    dap.breakpoint_in_cell(CELL, 2)
    stopped_id = dap.kc.execute(CELL)
    dap.wait_event("stopped", reason="breakpoint")
    # turning the debugger off while a cell is stopped lets that cell finish
    assert dap("disconnect", {"restart": False, "terminateDebuggee": False})["success"]
    assert _finish(dap, stopped_id)["status"] == "ok"
    assert dap("debugInfo")["body"]["isStarted"] is False
    drain(dap.kc)
    _, msgs = execute(dap.kc, "import threading; print(threading.current_thread().name)")
    assert stdout_of(msgs).strip() == "MainThread"
    dap.start()  # a new session attaches to the same debugpy
    path = dap.breakpoint_in_cell(CELL, 2)
    msg_id = dap.kc.execute(CELL)
    thread_id = dap.wait_event("stopped", reason="breakpoint")["body"]["threadId"]
    assert dap.frames(thread_id)[0]["source"]["path"] == path
    assert dap("continue", {"threadId": thread_id})["success"]
    assert _finish(dap, msg_id)["status"] == "ok"


def test_bad_debug_requests_get_failed_responses(dap: Dap) -> None:
    reply, _ = request(dap.kc, "debug_request", {"seq": 1, "command": 5}, "control")
    assert reply["content"]["success"] is False
    assert dap("dumpCell", {})["success"] is False
    assert dap("source", {"source": {"path": "/no/such/file.py"}})["success"] is False
    assert dap("copyToGlobals", {"srcVariableName": "a b", "dstVariableName": "c", "srcFrameId": 1})["success"] is False
