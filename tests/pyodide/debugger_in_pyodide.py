"""The browser kernel's debugger (services/debugger/monitoring.py) inside Pyodide, driven as JupyterLab drives it.

Collected only by tests/pyodide/test_core_in_pyodide.py, which runs it inside Pyodide under Node with JSPI (the
file name keeps CPython's pytest from collecting it: the backend needs Pyodide's stack switching to stop a cell).
The point checked throughout, as tests/test_e2e_debugger.py checks it on CPython: a cell stopped at a
breakpoint does not stop the kernel.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from memory_client import MemoryClient, serving_kernel, stdout_of

pytestmark = pytest.mark.anyio

CELL = "def add(a, b):\n    total = a + b\n    return total\n\nresult = add(2, 3)\nprint('result is', result)\n"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Dap:
    """A debug client over the in-memory transport: DAP requests on control, debug_event kept from iopub."""

    def __init__(self, client: MemoryClient) -> None:
        self.client = client
        self.seq = 0
        self._taken: set[int] = set()

    async def __call__(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        self.seq += 1
        content = {"type": "request", "seq": self.seq, "command": command, "arguments": arguments or {}}
        reply, _ = await self.client.request("control", "debug_request", content)
        assert reply["msg_type"] == "debug_reply"
        body: dict[str, Any] = reply["content"]
        assert body.get("command") == command and body.get("request_seq") == self.seq, body
        return body

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m["content"] for c, m in self.client.received
                if c == "iopub" and m["msg_type"] == "debug_event" and m["content"]["event"] == name]

    async def wait_event(self, name: str, timeout: float = 20, **body: Any) -> dict[str, Any]:
        """The next `name` event (after those already taken) whose body has these values."""

        def match(channel: str, msg: dict[str, Any]) -> bool:
            if channel != "iopub" or msg["msg_type"] != "debug_event":
                return False
            event = msg["content"]
            return event["event"] == name and all(event.get("body", {}).get(k) == v for k, v in body.items()) \
                and id(msg) not in self._taken

        _, msg = await self.client.wait_for(match, timeout)
        self._taken.add(id(msg))
        return dict(msg["content"])

    async def start(self) -> None:
        init = await self("initialize", {"clientID": "test", "adapterID": "python", "pathFormat": "path",
                                         "linesStartAt1": True, "columnsStartAt1": True})
        assert init["success"], init
        assert (await self("attach"))["success"]
        assert (await self("configurationDone"))["success"]

    async def breakpoint_in_cell(self, code: str, line: int) -> str:
        path = (await self("dumpCell", {"code": code}))["body"]["sourcePath"]
        reply = await self("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": line}]})
        assert reply["success"] and reply["body"]["breakpoints"][0]["verified"], reply
        return str(path)

    async def frames(self, thread_id: int) -> list[dict[str, Any]]:
        return list((await self("stackTrace", {"threadId": thread_id}))["body"]["stackFrames"])

    async def step(self, command: str, thread_id: int) -> dict[str, Any]:
        """`next`, `stepIn` or `stepOut` on THREAD_ID: the top frame once it has stopped again."""
        assert (await self(command, {"threadId": thread_id}))["success"]
        await self.wait_event("stopped", reason="step", threadId=thread_id)
        return (await self.frames(thread_id))[0]

    async def scope(self, frame_id: int, name: str = "Locals") -> dict[str, dict[str, Any]]:
        scopes = (await self("scopes", {"frameId": frame_id}))["body"]["scopes"]
        ref = next(s["variablesReference"] for s in scopes if s["name"] == name)
        return {v["name"]: v for v in (await self("variables", {"variablesReference": ref}))["body"]["variables"]}

    async def locals_of(self, frame_id: int) -> dict[str, str]:
        return {name: v["value"] for name, v in (await self.scope(frame_id)).items()}


@pytest.fixture
async def dclient() -> AsyncIterator[MemoryClient]:
    async with serving_kernel("asyncio", debugger=True) as client:
        yield client


@pytest.fixture
async def dap(dclient: MemoryClient) -> AsyncIterator[Dap]:
    client = Dap(dclient)
    await client.start()
    yield client
    await client("disconnect", {"restart": False, "terminateDebuggee": False})
    assert tracer_of(dclient).instrumented() == 0  # nothing stays instrumented after a session


def tracer_of(client: MemoryClient) -> Any:
    return client.kernel.debugger.backend.tracer  # type: ignore[attr-defined]


def execute(client: MemoryClient, code: str) -> str:
    return client.send("shell", "execute_request", {"code": code, "silent": False, "store_history": True,
                                                    "user_expressions": {}, "allow_stdin": False,
                                                    "stop_on_error": True})


async def finish(client: MemoryClient, msg_id: str, timeout: float = 20) -> tuple[dict[str, Any], str]:
    reply = await client.reply(msg_id, timeout)
    await client.idle(msg_id, timeout)
    return reply["content"], stdout_of(client.children(msg_id))


async def test_kernel_info_offers_the_debugger(dclient: MemoryClient) -> None:
    reply, _ = await dclient.request("shell", "kernel_info_request")
    assert reply["content"]["debugger"] is True and "debugger" in reply["content"]["supported_features"]
    dap = Dap(dclient)
    info = (await dap("debugInfo"))["body"]
    assert info["isStarted"] is False and info["hashMethod"] == "Murmur2" and info["exceptionPaths"]
    init = await dap("initialize", {"clientID": "test", "adapterID": "python"})
    filters = {f["filter"] for f in init["body"]["exceptionBreakpointFilters"]}
    assert filters == {"raised", "uncaught"}
    # Initialize alone switches nothing on: no monitoring tool until attach.
    assert sys.monitoring.get_tool(sys.monitoring.DEBUGGER_ID) is None or tracer_of(dclient).tool is None


async def test_attached_without_breakpoints_instruments_nothing(dap: Dap) -> None:
    tool = sys.monitoring.DEBUGGER_ID
    tracer = tracer_of(dap.client)
    assert sys.monitoring.get_tool(tool) is not None and tracer.tool == tool
    # The one global event, RAISE, has no callback until the "raised" filter asks for one.
    assert sys.monitoring.get_events(tool) == sys.monitoring.events.RAISE
    reply, outputs = await dap.client.execute("def f():\n    return 1\nprint(f())")
    assert reply["content"]["status"] == "ok" and stdout_of(outputs) == "1\n"
    assert tracer.instrumented() == 0  # no code object has events while no breakpoint is set
    path = await dap.breakpoint_in_cell("def g():\n    return 2\n", 2)
    reply, _ = await dap.client.execute("def g():\n    return 2\n")
    assert tracer.instrumented() == 1  # only the code the breakpoint is in
    assert (await dap("setBreakpoints", {"source": {"path": path}, "breakpoints": []}))["success"]
    assert tracer.instrumented() == 0
    assert sys.monitoring.get_events(tool) == sys.monitoring.events.RAISE


async def test_breakpoint_variables_step_continue(dap: Dap) -> None:
    path = await dap.breakpoint_in_cell(CELL, 2)
    info = (await dap("debugInfo"))["body"]
    assert info["isStarted"] and info["breakpoints"] == [{"source": path, "breakpoints": [{"line": 2}]}]
    msg_id = execute(dap.client, CELL)
    stopped = await dap.wait_event("stopped", reason="breakpoint")
    thread_id = stopped["body"]["threadId"]
    assert thread_id == 1  # the main shell's queue: the thread ipykernel's clients ask for
    frames = await dap.frames(thread_id)
    # Only the cell's frames: the kernel's own (asyncio, IPython, concurrent_kernel) stay out of the stack.
    assert [(f["name"], f["source"]["path"], f["line"]) for f in frames] == [("add", path, 2), ("<module>", path, 5)]
    assert await dap.locals_of(frames[0]["id"]) == {"a": "2", "b": "3"}
    assert (await dap("debugInfo"))["body"]["stoppedThreads"] == [thread_id]
    evaluated = await dap("evaluate", {"expression": "a * 10", "frameId": frames[0]["id"], "context": "repl"})
    assert evaluated["body"]["result"] == "20"
    rich = await dap("richInspectVariables", {"variableName": "a", "frameId": frames[0]["id"]})
    assert rich["success"] and rich["body"]["data"] == {"text/plain": "2"}
    top = await dap.step("next", thread_id)
    assert top["line"] == 3 and (await dap.locals_of(top["id"]))["total"] == "5"
    top = await dap.step("stepOut", thread_id)
    assert (top["name"], top["line"]) == ("<module>", 5)
    assert (await dap.step("next", thread_id))["line"] == 6
    assert (await dap("continue", {"threadId": thread_id}))["success"]
    content, out = await finish(dap.client, msg_id)
    assert content["status"] == "ok" and out == "result is 5\n"
    assert (await dap("debugInfo"))["body"]["stoppedThreads"] == []


async def test_step_in_and_out_of_a_function(dap: Dap) -> None:
    cell = "def inner(x):\n    y = x + 1\n    return y\n\nvalue = inner(1)\nvalue += inner(value)\n"
    await dap.breakpoint_in_cell(cell, 5)
    msg_id = execute(dap.client, cell)
    thread_id = (await dap.wait_event("stopped", reason="breakpoint"))["body"]["threadId"]
    top = await dap.step("stepIn", thread_id)
    assert (top["name"], top["line"]) == ("inner", 2)
    top = await dap.step("stepOut", thread_id)
    assert (top["name"], top["line"]) == ("<module>", 5)  # back in the caller, the assignment still to finish
    top = await dap.step("next", thread_id)
    assert top["line"] == 6 and (await dap.locals_of(top["id"]))["value"] == "2"
    # Stepping past the cell's last line runs it to its end (the kernel's code is not stepped through).
    assert (await dap("next", {"threadId": thread_id}))["success"]
    content, _ = await finish(dap.client, msg_id)
    assert content["status"] == "ok"
    assert not (await dap("debugInfo"))["body"]["stoppedThreads"]


async def test_the_kernel_stays_live_while_a_cell_is_stopped(dap: Dap) -> None:
    client = dap.client
    echo = (
        "def _echo_target(comm, open_msg):\n"
        "    comm.on_msg(lambda msg: comm.send({'echo': msg['content']['data']['ping']}))\n"
        "get_ipython().kernel.comm_manager.register_target('echo', _echo_target)\n"
    )
    reply, _ = await client.execute(echo)
    assert reply["content"]["status"] == "ok", reply["content"]
    await dap.breakpoint_in_cell(CELL, 2)
    msg_id = execute(client, CELL)
    thread_id = (await dap.wait_event("stopped", reason="breakpoint"))["body"]["threadId"]
    # control and shell requests, comm messages and a task cell are all answered meanwhile
    reply, _ = await client.request("control", "kernel_info_request")
    assert reply["content"]["status"] == "ok" and reply["content"]["debugger"] is True
    reply, _ = await client.request("shell", "complete_request", {"code": "resu", "cursor_pos": 4})
    assert reply["content"]["status"] == "ok"
    reply, _ = await client.request("shell", "comm_info_request", {})
    assert reply["content"]["status"] == "ok"
    client.send("shell", "comm_open", {"comm_id": "c-echo", "target_name": "echo", "data": {}})
    client.send("shell", "comm_msg", {"comm_id": "c-echo", "data": {"ping": 42}})
    await client.wait_for(lambda c, m: c == "iopub" and m["msg_type"] == "comm_msg"
                                      and m["content"]["data"] == {"echo": 42})
    task_id = execute(client, "# task\nprint('task ran beside the stopped cell')")
    content, out = await finish(client, task_id)
    assert content["status"] == "ok" and out == "task ran beside the stopped cell\n"
    threads = {t["id"]: t["name"] for t in (await dap("threads"))["body"]["threads"]}
    assert "(queue)" in threads[thread_id]
    # interrupt ends the stopped cell; the kernel carries on
    reply, _ = await client.request("control", "interrupt_request")
    content, _ = await finish(client, msg_id)
    assert content["status"] == "error" and content["ename"] == "KeyboardInterrupt"
    assert (await dap("debugInfo"))["body"]["stoppedThreads"] == []
    reply, outputs = await client.execute("print('after', 1 + 1)")
    assert reply["content"]["status"] == "ok" and stdout_of(outputs) == "after 2\n"


async def test_task_cells_and_background_tasks_stop_as_their_own_threads(dap: Dap) -> None:
    task_cell = "# task\nvalue = 'task'\nprint(value)\n"
    await dap.breakpoint_in_cell(task_cell, 3)
    background = (
        "from concurrent_kernel import get_kernel\n"
        "async def worker():\n"
        "    step = 'in the background'\n"
        "    print(step)\n"
        "get_kernel().background.spawn(worker, name='worker')\n"
    )
    await dap.breakpoint_in_cell(background, 4)
    task_id = execute(dap.client, task_cell)
    first = (await dap.wait_event("stopped", reason="breakpoint"))["body"]["threadId"]
    reply, _ = await dap.client.execute(background)
    assert reply["content"]["status"] == "ok"
    second = (await dap.wait_event("stopped", reason="breakpoint"))["body"]["threadId"]
    assert len({first, second, 1}) == 3
    names = {t["id"]: t["name"] for t in (await dap("threads"))["body"]["threads"]}
    assert names[first].endswith("(task)") and names[second] == "background worker"
    assert await dap.locals_of((await dap.frames(second))[0]["id"]) == {"step": "'in the background'"}
    assert set((await dap("debugInfo"))["body"]["stoppedThreads"]) == {first, second}
    # the queue is not the one stopped: queue cells still run
    reply, outputs = await dap.client.execute("print('queue cell ran')")
    assert reply["content"]["status"] == "ok" and stdout_of(outputs) == "queue cell ran\n"
    for tid in (first, second):
        assert (await dap("continue", {"threadId": tid}))["success"]
    content, out = await finish(dap.client, task_id)
    assert content["status"] == "ok" and out == "task\n"


async def test_breakpoint_in_an_imported_file(dap: Dap, tmp_path: Any) -> None:
    module = tmp_path / "dbg_target_mod.py"
    module.write_text("def triple(x):\n\n    y = x * 3\n    return y\n")
    reply, _ = await dap.client.execute(f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import dbg_target_mod")
    assert reply["content"]["status"] == "ok"
    placed = await dap("setBreakpoints", {"source": {"path": str(module)}, "breakpoints": [{"line": 2}]})
    # line 2 is blank: the breakpoint moves to the next line with code, as debugpy moves it
    assert placed["success"] and placed["body"]["breakpoints"][0]["verified"]
    assert placed["body"]["breakpoints"][0]["line"] == 3
    msg_id = execute(dap.client, "print(dbg_target_mod.triple(4))")
    thread_id = (await dap.wait_event("stopped", reason="breakpoint"))["body"]["threadId"]
    top = (await dap.frames(thread_id))[0]
    assert top["source"]["path"] == str(module) and top["line"] == 3
    assert (await dap("source", {"source": {"path": str(module)}}))["body"]["content"] == module.read_text()
    assert (await dap("continue", {"threadId": thread_id}))["success"]
    content, out = await finish(dap.client, msg_id)
    assert content["status"] == "ok" and out == "12\n"


async def test_variables_globals_groups_and_copy_to_globals(dap: Dap) -> None:
    cell = ("from IPython.core.display import HTML\n"
            "def my_test():\n"
            "    var = HTML('<p>test content</p>')\n"
            "    pass\n"
            "a = 2\n"
            "my_test()")
    await dap.breakpoint_in_cell(cell, 4)
    msg_id = execute(dap.client, cell)
    thread_id = (await dap.wait_event("stopped", reason="breakpoint"))["body"]["threadId"]
    frame_id = (await dap.frames(thread_id))[0]["id"]
    copied = await dap("copyToGlobals", {"srcVariableName": "var", "dstVariableName": "var_copy",
                                         "srcFrameId": frame_id})
    assert copied["success"], copied
    local = (await dap.scope(frame_id))["var"]
    globals_ = await dap.scope(frame_id, "Globals")
    assert {"function variables", "special variables", "class variables"} <= set(globals_)
    assert globals_["var_copy"]["value"] == local["value"] and globals_["var_copy"]["type"] == "HTML"
    assert globals_["a"]["value"] == "2" and "In" not in globals_ and "_i1" not in globals_
    functions = await dap("variables", {"variablesReference": globals_["function variables"]["variablesReference"]})
    assert "my_test" in {v["name"] for v in functions["body"]["variables"]}
    rich = await dap("richInspectVariables", {"variableName": "var", "frameId": frame_id})
    assert rich["body"]["data"]["text/html"] == "<p>test content</p>"
    # an expandable value: its attributes, and setting one
    assert local["variablesReference"] > 0
    fields = await dap("variables", {"variablesReference": local["variablesReference"]})
    data = next(v for v in fields["body"]["variables"] if v["name"] == "data")
    assert data["value"] == "'<p>test content</p>'" and data["evaluateName"] == "var.data"
    assert (await dap("setExpression", {"expression": "var.data", "value": "'<b>changed</b>'",
                                        "frameId": frame_id}))["success"]
    assert (await dap("evaluate", {"expression": "var.data", "frameId": frame_id}))["body"]["result"] == \
        "'<b>changed</b>'"
    scopes = (await dap("scopes", {"frameId": frame_id}))["body"]["scopes"]
    locals_ref = next(s["variablesReference"] for s in scopes if s["name"] == "Locals")
    set_reply = await dap("setVariable", {"variablesReference": locals_ref, "name": "var", "value": "a + 40"})
    assert set_reply["success"] and set_reply["body"]["value"] == "42"
    assert (await dap.locals_of(frame_id))["var"] == "42"  # written through to the running frame
    assert (await dap("continue", {"threadId": thread_id}))["success"]
    content, _ = await finish(dap.client, msg_id)
    assert content["status"] == "ok"
    _, outputs = await dap.client.execute("print(var_copy.data)")
    assert stdout_of(outputs) == "<b>changed</b>\n"


async def test_evaluate_and_variables_without_a_stop(dap: Dap) -> None:
    assert (await dap("evaluate", {"expression": "'a' + 'b'", "context": "repl"}))["body"]["result"] == "ab"
    reply, _ = await dap.client.execute("numbers = [1, 2, 3]\nconfig = {'depth': 4}\ntext = 'Hello the world'\n")
    assert reply["content"]["status"] == "ok"
    variables = {v["name"]: v for v in (await dap("inspectVariables"))["body"]["variables"]}
    assert variables["numbers"]["value"] == "[1, 2, 3]" and "In" not in variables
    children = await dap("variables", {"variablesReference": variables["config"]["variablesReference"]})
    assert [(v["name"], v["value"]) for v in children["body"]["variables"]] == [("'depth'", "4")]
    rich = await dap("richInspectVariables", {"variableName": "text"})
    assert rich["body"]["data"] == {"text/plain": "'Hello the world'"}
    # the kernel sources panel: modules listed, and the source of one from Pyodide's zipped standard library
    modules = (await dap("modules", {}))["body"]["modules"]
    json_module = next(m for m in modules if m["name"] == "json")
    assert ".zip/" in json_module["path"]
    source = await dap("source", {"source": {"path": json_module["path"]}})
    assert source["success"] and "def dumps(" in source["body"]["content"]
    failed = await dap("evaluate", {"expression": "no_such_name", "context": "repl"})
    assert failed["success"] is False and "NameError" in failed["message"]
    assert (await dap("evaluate", {"expression": "made_here = 5", "context": "repl"}))["success"]
    _, outputs = await dap.client.execute("print(made_here)")
    assert stdout_of(outputs) == "5\n"


async def test_exception_filters(dap: Dap) -> None:
    cell = ("def fails():\n"
            "    raise ValueError('boom')\n"
            "try:\n"
            "    fails()\n"
            "except ValueError:\n"
            "    caught = True\n"
            "fails()\n")
    assert (await dap("setExceptionBreakpoints", {"filters": ["raised"]}))["success"]
    msg_id = execute(dap.client, cell)
    stopped = await dap.wait_event("stopped", reason="exception")
    thread_id = stopped["body"]["threadId"]
    assert stopped["body"]["text"] == "ValueError: boom"
    assert [(f["name"], f["line"]) for f in await dap.frames(thread_id)][:2] == [("fails", 2), ("<module>", 4)]
    info = await dap("exceptionInfo", {"threadId": thread_id})
    assert info["body"]["exceptionId"] == "ValueError" and info["body"]["description"] == "boom"
    assert (await dap("continue", {"threadId": thread_id}))["success"]
    # raised again (a new exception) on line 7; passing through <module> does not stop a second time
    await dap.wait_event("stopped", reason="exception", threadId=thread_id)
    top = (await dap.frames(thread_id))[0]
    assert (top["name"], top["line"]) == ("fails", 2)
    assert (await dap("continue", {"threadId": thread_id}))["success"]
    content, _ = await finish(dap.client, msg_id)
    assert content["status"] == "error" and content["ename"] == "ValueError"
    assert len(dap.events("stopped")) == 2
    # uncaught only: the caught one goes by; the one that ends the cell stops where it leaves the cell's code
    # uncaught only: the caught one goes by; the one that ends the cell stops, post mortem, in the frames it
    # passed through
    assert (await dap("setExceptionBreakpoints", {"filters": ["uncaught"]}))["success"]
    msg_id = execute(dap.client, cell)
    stopped = await dap.wait_event("stopped", reason="exception")
    frames = await dap.frames(stopped["body"]["threadId"])
    assert [(f["name"], f["line"]) for f in frames] == [("fails", 2), ("<module>", 7)]
    assert (await dap.locals_of(frames[1]["id"]))["caught"] == "True"
    assert (await dap("continue", {"threadId": stopped["body"]["threadId"]}))["success"]
    content, _ = await finish(dap.client, msg_id)
    assert content["status"] == "error" and content["ename"] == "ValueError"
    assert len(dap.events("stopped")) == 3
    assert (await dap("setExceptionBreakpoints", {"filters": []}))["success"]
    reply, _ = await dap.client.execute(cell)
    assert reply["content"]["status"] == "error" and len(dap.events("stopped")) == 3


async def test_pause_stops_an_awaiting_cell(dap: Dap) -> None:
    cell = "import asyncio\nfor i in range(200):\n    await asyncio.sleep(0.05)\n    last = i\n"
    msg_id = execute(dap.client, cell)
    await anyio.sleep(0.3)
    assert (await dap("pause", {"threadId": 1}))["success"]
    stopped = await dap.wait_event("stopped", reason="pause")
    assert stopped["body"]["threadId"] == 1
    top = (await dap.frames(1))[0]
    assert top["line"] in (2, 3, 4)
    reached = int((await dap("evaluate", {"expression": "i", "frameId": top["id"]}))["body"]["result"])
    assert 0 < reached < 199
    assert (await dap("continue", {"threadId": 1}))["success"]
    await dap.client.request("control", "interrupt_request")
    content, _ = await finish(dap.client, msg_id)
    assert content["status"] == "error"


async def test_conditions_hit_counts_and_logpoints(dap: Dap) -> None:
    cell = "total = 0\nfor i in range(10):\n    total += i\nprint(total)\n"
    path = (await dap("dumpCell", {"code": cell}))["body"]["sourcePath"]
    placed = await dap("setBreakpoints", {"source": {"path": path}, "breakpoints": [
        {"line": 3, "condition": "i == 6"}, {"line": 4, "logMessage": "total is {total}"}]})
    assert [b["verified"] for b in placed["body"]["breakpoints"]] == [True, True]
    msg_id = execute(dap.client, cell)
    thread_id = (await dap.wait_event("stopped", reason="breakpoint"))["body"]["threadId"]
    top = (await dap.frames(thread_id))[0]
    assert (await dap("evaluate", {"expression": "i", "frameId": top["id"]}))["body"]["result"] == "6"
    assert (await dap("continue", {"threadId": thread_id}))["success"]
    content, out = await finish(dap.client, msg_id)
    assert content["status"] == "ok" and out == "45\n"
    logged = await dap.wait_event("output")
    assert logged["body"]["output"] == "total is 45\n"
    assert len(dap.events("stopped")) == 1


async def test_disconnect_while_stopped_lets_the_cell_finish(dap: Dap) -> None:
    await dap.breakpoint_in_cell(CELL, 2)
    stopped_id = execute(dap.client, CELL)
    await dap.wait_event("stopped", reason="breakpoint")
    assert (await dap("disconnect", {"restart": False, "terminateDebuggee": False}))["success"]
    content, out = await finish(dap.client, stopped_id)
    assert content["status"] == "ok" and out == "result is 5\n"
    assert (await dap("debugInfo"))["body"]["isStarted"] is False
    assert tracer_of(dap.client).instrumented() == 0
    await dap.start()  # a new session
    path = await dap.breakpoint_in_cell(CELL, 2)
    msg_id = execute(dap.client, CELL)
    thread_id = (await dap.wait_event("stopped", reason="breakpoint"))["body"]["threadId"]
    assert (await dap.frames(thread_id))[0]["source"]["path"] == path
    assert (await dap("continue", {"threadId": thread_id}))["success"]
    content, _ = await finish(dap.client, msg_id)
    assert content["status"] == "ok"


async def test_bad_requests_get_failed_responses(dap: Dap) -> None:
    reply, _ = await dap.client.request("control", "debug_request", {"seq": 1, "command": 5})
    assert reply["content"]["success"] is False
    for command, arguments in (("stackTrace", {"threadId": 99}), ("stackTrace", {"threadId": 1}),
                               ("continue", {"threadId": "x"}), ("scopes", {"frameId": 12345}),
                               ("variables", {"variablesReference": "nope"}), ("evaluate", {}),
                               ("setBreakpoints", {"source": {}}), ("setExpression", {"expression": "("}),
                               ("exceptionInfo", {"threadId": 1}), ("stepInTargets", {"frameId": 1}),
                               ("setExceptionBreakpoints", {"filters": "raised"})):
        body = await dap(command, arguments)
        assert body["success"] is False and body["message"], (command, body)
    reply, outputs = await dap.client.execute("print('still fine')")
    assert reply["content"]["status"] == "ok" and stdout_of(outputs) == "still fine\n"


async def test_breakpoints_on_lines_without_code(dap: Dap) -> None:
    cell = "\n\nx = 1\n\n# a comment\ny = 2\n"
    path = (await dap("dumpCell", {"code": cell}))["body"]["sourcePath"]
    placed = await dap("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": 1}, {"line": 5},
                                                                                  {"line": 7}]})
    lines = [(b["verified"], b.get("line")) for b in placed["body"]["breakpoints"]]
    assert lines == [(True, 3), (True, 6), (False, 7)]
    msg_id = execute(dap.client, cell)
    thread_id = (await dap.wait_event("stopped", reason="breakpoint"))["body"]["threadId"]
    assert (await dap.frames(thread_id))[0]["line"] == 3  # leading blank lines are kept while debugging
    assert (await dap("continue", {"threadId": thread_id}))["success"]
    await dap.wait_event("stopped", reason="breakpoint", threadId=thread_id)
    assert (await dap.frames(thread_id))[0]["line"] == 6
    assert (await dap("continue", {"threadId": thread_id}))["success"]
    content, _ = await finish(dap.client, msg_id)
    assert content["status"] == "ok"
    assert os.path.isfile(path)


class PageKernel:
    """A kernel as the browser page drives it: the callback transport, JSON text in and out."""

    def __init__(self) -> None:
        import asyncio
        import json

        from concurrent_kernel import callback_transport

        self._json = json
        self._asyncio = asyncio
        self.sent: list[dict[str, Any]] = []
        self.handle = callback_transport.start(lambda text, buffers: self.sent.append(json.loads(text)),
                                               debugger=True)
        self._seq = 0

    def send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        self._seq += 1
        msg_id = f"m{self._seq}"
        header = {"msg_id": msg_id, "msg_type": msg_type, "session": "page", "username": "", "date": "",
                  "version": "5.4"}
        self.handle.receive(self._json.dumps({"channel": channel, "header": header, "parent_header": {},
                                              "metadata": {}, "content": content}))
        return msg_id

    async def reply(self, msg_id: str) -> dict[str, Any]:
        for _ in range(2000):
            for m in self.sent:
                if m.get("parent_header", {}).get("msg_id") == msg_id and m["channel"] in ("shell", "control"):
                    return m
            await self._asyncio.sleep(0.01)
        raise AssertionError(f"no reply to {msg_id}")

    async def dap(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        msg_id = self.send("control", "debug_request", {"type": "request", "seq": self._seq, "command": command,
                                                         "arguments": arguments or {}})
        return dict((await self.reply(msg_id))["content"])

    def states(self) -> list[dict[str, Any]]:
        return [m["state"] for m in self.sent if m.get("channel") == "ck-debugger-state"]


async def test_a_reloaded_page_gets_the_session_back() -> None:
    """The page keeps what the kernel says of its session (kernel.ts, in the browser's storage) and hands the last
    state to the next kernel of that notebook before its first debug request: debugInfo then shows the session
    and the breakpoints, as a CPython kernel that outlived the reload would."""
    first = PageKernel()
    try:
        assert (await first.dap("initialize", {"clientID": "test"}))["success"]
        assert (await first.dap("attach"))["success"]
        path = (await first.dap("dumpCell", {"code": CELL}))["body"]["sourcePath"]
        assert (await first.dap("setBreakpoints", {"source": {"path": path},
                                                   "breakpoints": [{"line": 2}]}))["success"]
        assert (await first.dap("setExceptionBreakpoints", {"filters": ["uncaught"]}))["success"]
        state = first.states()[-1]
        assert state["started"] is True and state["breakpoints"] == {path: [{"line": 2}]}
        assert state["sources"] == {path: CELL} and state["exceptionFilters"] == ["uncaught"]
    finally:
        await first.handle.shutdown()
    os.remove(path)  # the next page's worker starts with no cell files
    second = PageKernel()
    try:
        second.handle.receive(__import__("json").dumps({"channel": "ck-debugger-state", "state": state}))
        info = (await second.dap("debugInfo"))["body"]
        assert info["isStarted"] is True and info["breakpoints"] == [{"source": path, "breakpoints": [{"line": 2}]}]
        with open(path, encoding="utf-8") as f:
            assert f.read() == CELL  # the source the panel asks for is there again
        msg_id = second.send("shell", "execute_request", {"code": CELL, "silent": False})
        for _ in range(2000):
            if any(m["header"]["msg_type"] == "debug_event" and m["content"]["event"] == "stopped"
                   for m in second.sent):
                break
            await anyio.sleep(0.01)
        stopped = next(m["content"] for m in second.sent if m["header"]["msg_type"] == "debug_event"
                       and m["content"]["event"] == "stopped")
        assert stopped["body"]["reason"] == "breakpoint"
        frames = (await second.dap("stackTrace", {"threadId": stopped["body"]["threadId"]}))["body"]["stackFrames"]
        assert (frames[0]["name"], frames[0]["line"]) == ("add", 2)
        assert (await second.dap("continue", {"threadId": stopped["body"]["threadId"]}))["success"]
        assert (await second.reply(msg_id))["content"]["status"] == "ok"
        assert (await second.dap("disconnect"))["success"]
        assert second.states()[-1]["started"] is False  # the page forgets the session
    finally:
        await second.handle.shutdown()
    # A page that kept nothing: the kernel starts without a session, as before.
    third = PageKernel()
    try:
        assert (await third.dap("debugInfo"))["body"]["isStarted"] is False
    finally:
        await third.handle.shutdown()


async def test_stepping_over_awaits_in_a_cell(dap: Dap) -> None:
    """A cell with top-level await runs as a coroutine: a step over an await stops at the next line once the cell
    resumes, and other cells run while it awaits."""
    cell = "import asyncio\nbefore = 1\nawait asyncio.sleep(0.3)\nafter = 2\n"
    await dap.breakpoint_in_cell(cell, 3)
    msg_id = execute(dap.client, cell)
    thread_id = (await dap.wait_event("stopped", reason="breakpoint"))["body"]["threadId"]
    assert (await dap("next", {"threadId": thread_id}))["success"]
    task_id = execute(dap.client, "# task\nprint('ran during the await')")
    content, out = await finish(dap.client, task_id)
    assert out == "ran during the await\n"
    await dap.wait_event("stopped", reason="step", threadId=thread_id)
    top = (await dap.frames(thread_id))[0]
    assert top["line"] == 4 and (await dap.locals_of(top["id"]))["before"] == "1"
    assert (await dap("continue", {"threadId": thread_id}))["success"]
    content, _ = await finish(dap.client, msg_id)
    assert content["status"] == "ok"


async def test_breakpoints_in_code_defined_before_the_session(dclient: MemoryClient, tmp_path: Any) -> None:
    """A function an earlier cell defined, and a module imported earlier, both frozen out of the cyclic GC as
    start-up freezes its objects (services/shell.py): a breakpoint set once the panel is on still stops them."""
    import gc

    definition = "def earlier(x):\n    doubled = x * 2\n    return doubled\n"
    module = tmp_path / "dbg_early_mod.py"
    module.write_text("class Box:\n    def size(self):\n        inside = 7\n        return inside\n")
    reply, _ = await dclient.execute(definition)
    assert reply["content"]["status"] == "ok"
    reply, _ = await dclient.execute(f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import dbg_early_mod")
    assert reply["content"]["status"] == "ok"
    gc.freeze()
    try:
        dap = Dap(dclient)
        await dap.start()
        await dap.breakpoint_in_cell(definition, 2)
        placed = await dap("setBreakpoints", {"source": {"path": str(module)}, "breakpoints": [{"line": 3}]})
        assert placed["body"]["breakpoints"][0]["verified"]
        msg_id = execute(dclient, "print(earlier(21), dbg_early_mod.Box().size())")
        thread_id = (await dap.wait_event("stopped", reason="breakpoint"))["body"]["threadId"]
        assert (await dap.frames(thread_id))[0]["name"] == "earlier"
        assert (await dap("continue", {"threadId": thread_id}))["success"]
        await dap.wait_event("stopped", reason="breakpoint", threadId=thread_id)
        assert (await dap.frames(thread_id))[0]["name"] == "size"
        assert (await dap("continue", {"threadId": thread_id}))["success"]
        content, out = await finish(dclient, msg_id)
        assert content["status"] == "ok" and out == "42 7\n"
        assert (await dap("disconnect"))["success"]
    finally:
        gc.unfreeze()


async def test_the_pause_signal_stops_busy_code(dap: Dap) -> None:
    """A busy cell holds the worker, so the page also raises the pause signal through Pyodide's interrupt buffer
    (ts/src/kernel.ts); the cell stops where it is. Here the cell signals itself as the buffer does
    (PyErr_SetInterruptEx, which _thread.interrupt_main calls: a signal without a handler is ignored)."""
    from concurrent_kernel.services.debugger.monitoring import PAUSE_SIGNAL

    cell = (f"import _thread\ntotal = 0\nfor i in range(10):\n    total += i\n"
            f"    if i == 5:\n        _thread.interrupt_main({PAUSE_SIGNAL})\nprint(total)\n")
    msg_id = execute(dap.client, cell)
    stopped = await dap.wait_event("stopped", reason="pause")
    top = (await dap.frames(stopped["body"]["threadId"]))[0]
    assert top["name"] == "<module>" and (await dap.locals_of(top["id"]))["i"] == "5"
    assert (await dap("continue", {"threadId": stopped["body"]["threadId"]}))["success"]
    content, out = await finish(dap.client, msg_id)
    assert content["status"] == "ok" and out == "45\n"
    # Not attached: the signal does nothing (Python ignores a signal it has no handler for).
    assert (await dap("disconnect"))["success"]
    reply, outputs = await dap.client.execute(cell)
    assert reply["content"]["status"] == "ok" and stdout_of(outputs) == "45\n"
    await dap.start()
