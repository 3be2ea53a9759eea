"""Non-execute requests, stdin, subshells and bad input over the in-memory transport."""

import anyio
import pytest

from memory_client import of_type, stdout_of

pytestmark = pytest.mark.anyio


async def test_kernel_info(client):
    reply, outputs = await client.request("shell", "kernel_info_request")
    content = reply["content"]
    assert content["protocol_version"] == "5.5"
    assert content["language_info"]["name"] == "python"
    assert "kernel subshells" in content["supported_features"]
    assert [m["content"]["execution_state"] for m in of_type(outputs, "status")] == ["busy", "idle"]


async def test_complete_inspect_is_complete(client):
    await client.execute("import os\nlong_variable_name = 1")
    reply, _ = await client.request("shell", "complete_request", {"code": "long_var", "cursor_pos": 8})
    assert "long_variable_name" in reply["content"]["matches"]
    assert reply["content"]["cursor_start"] == 0 and reply["content"]["cursor_end"] == 8
    reply, _ = await client.request("shell", "inspect_request", {"code": "os.path", "cursor_pos": 7})
    assert reply["content"]["found"] and "text/plain" in reply["content"]["data"]
    reply, _ = await client.request("shell", "inspect_request", {"code": "os.path", "cursor_pos": 10})
    assert reply["content"]["found"], "a cursor past the end means the end of the code"
    reply, _ = await client.request("shell", "complete_request", {"code": "long_var", "cursor_pos": 11})
    assert "long_variable_name" in reply["content"]["matches"] and reply["content"]["cursor_end"] == 8
    reply, _ = await client.request("shell", "inspect_request", {"code": "no_such_name", "cursor_pos": 3})
    assert reply["content"]["status"] == "ok" and not reply["content"]["found"]
    reply, _ = await client.request("shell", "is_complete_request", {"code": "for i in x:"})
    assert reply["content"]["status"] == "incomplete" and reply["content"]["indent"] == "    "
    reply, _ = await client.request("shell", "is_complete_request", {"code": "1+1"})
    assert reply["content"]["status"] == "complete"
    reply, _ = await client.request("shell", "is_complete_request", {"code": "1+)"})
    assert reply["content"]["status"] == "invalid"


async def test_history(client):
    for code in ("a = 1", "b = 2", "a = 1"):
        await client.execute(code)
    reply, _ = await client.request("shell", "history_request", {"hist_access_type": "tail", "n": 2, "raw": True,
                                                                 "output": False, "include_latest": True})
    assert [item[2] for item in reply["content"]["history"]] == ["b = 2", "a = 1"]
    reply, _ = await client.request("shell", "history_request", {"hist_access_type": "tail", "n": 2, "raw": True,
                                                                 "output": False, "include_latest": False})
    assert [item[2] for item in reply["content"]["history"]] == ["a = 1", "b = 2"]
    reply, _ = await client.request("shell", "history_request", {"hist_access_type": "tail", "n": 1, "raw": True,
                                                                 "output": False})
    assert [item[2] for item in reply["content"]["history"]] == ["a = 1"]
    reply, _ = await client.request("shell", "history_request", {"hist_access_type": "range", "session": 0,
                                                                 "start": 1, "stop": 3, "raw": True,
                                                                 "output": False})
    assert [item[2] for item in reply["content"]["history"]] == ["a = 1", "b = 2"]
    reply, _ = await client.request("shell", "history_request", {"hist_access_type": "search", "pattern": "a*",
                                                                 "unique": True, "raw": True, "output": False})
    assert [item[2] for item in reply["content"]["history"]] == ["a = 1"]


@pytest.mark.threads
async def test_input_from_thread_cell(client):
    running = client.send("shell", "execute_request",
                          {"code": "# thread\nname = input('Name? ')\nprint('hello', name)", "allow_stdin": True})
    _, request = await client.wait_for(lambda c, m: c == "stdin" and m["msg_type"] == "input_request")
    assert request["content"] == {"prompt": "Name? ", "password": False}
    reply = client.make("input_reply", {"value": "Ada"})
    reply["parent_header"] = {}  # jupyter_client's kc.input() sends no parent header
    client.transport.deliver("stdin", reply)
    assert (await client.reply(running))["content"]["status"] == "ok"
    await client.idle(running)
    assert stdout_of(client.children(running)) == "hello Ada\n"


async def test_input_without_allow_stdin(client):
    reply, _ = await client.execute("input()", content={"allow_stdin": False})
    assert reply["content"]["ename"] == "StdinNotImplementedError"


async def test_subshells(client):
    created, _ = await client.request("control", "create_subshell_request")
    subshell_id = created["content"]["subshell_id"]
    listed, _ = await client.request("control", "list_subshell_request")
    assert listed["content"]["subshell_id"] == [subshell_id]
    blocker = client.send("shell", "execute_request", {"code": "import anyio\nawait anyio.sleep(3)"})
    await client.wait_for(lambda c, m: m["msg_type"] == "execute_input" and m["parent_header"]["msg_id"] == blocker)
    reply, _outputs = await client.execute("'in subshell'", header={"subshell_id": subshell_id}, timeout=2.5)
    assert reply["content"]["status"] == "ok"
    assert reply["header"]["subshell_id"] == subshell_id
    deleted, _ = await client.request("control", "delete_subshell_request", {"subshell_id": subshell_id})
    assert deleted["content"]["status"] == "ok"
    await client.reply(blocker)


async def test_unknown_subshell_is_an_error_and_code_does_not_run(client):
    reply, outputs = await client.execute("print('ran')", header={"subshell_id": "nope"})
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "UnknownSubshellError"
    assert reply["content"]["evalue"] == "Unknown subshell_id 'nope'"  # ipykernel's words
    assert stdout_of(outputs) == ""
    reply, _ = await client.request("control", "delete_subshell_request", {"subshell_id": "nope"})
    assert reply["content"]["ename"] == "UnknownSubshellError"


@pytest.mark.parametrize(
    ("msg_type", "content", "needle"),
    [
        ("execute_request", {}, "'code'"),
        ("execute_request", {"code": 5}, "'code' must be str"),
        ("execute_request", {"code": "1", "silent": "yes"}, "'silent' must be bool"),
        ("complete_request", {"code": "x"}, "'cursor_pos'"),
        ("complete_request", {"code": "x", "cursor_pos": "1"}, "'cursor_pos' must be int"),
        ("complete_request", {"code": "x", "cursor_pos": -1}, "outside the code"),
        ("inspect_request", {"code": "x", "cursor_pos": True}, "'cursor_pos' must be int"),
        ("history_request", {"hist_access_type": "sideways"}, "tail, range or search"),
        ("foo_request", {}, "'foo_request'"),
    ],
)
async def test_malformed_requests_get_error_replies(client, msg_type, content, needle):
    reply, outputs = await client.request("shell", msg_type, content)
    assert reply["content"]["status"] == "error"
    assert needle in reply["content"]["evalue"]
    assert reply["msg_type"] == msg_type.replace("_request", "_reply")
    assert [m["content"]["execution_state"] for m in of_type(outputs, "status")] == ["busy", "idle"]


async def test_garbage_is_dropped_and_kernel_survives(client):
    client.transport.deliver("shell", {"not": "a message"})
    client.transport.deliver("shell", {"header": "nope"})
    client.transport.deliver("bogus", client.make("kernel_info_request", {}))
    bad = client.make("execute_request", {})
    bad["content"] = ["not", "a", "dict"]
    client.transport.deliver("shell", bad)
    reply = await client.reply(bad["header"]["msg_id"])
    assert reply["content"]["ename"] == "InvalidMessage"
    client.send("shell", "status", {"execution_state": "busy"})  # not a request: logged, no reply
    await anyio.sleep(0.05)
    reply, _ = await client.execute("'still alive'")
    assert reply["content"]["status"] == "ok"


async def test_debug_request_is_an_error(client):
    reply, _ = await client.request("control", "debug_request", {"command": "initialize"})
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "DebuggerUnavailable"


async def test_shutdown_reply(client):
    reply, outputs = await client.request("control", "shutdown_request", {"restart": False})
    assert reply["content"] == {"status": "ok", "restart": False}
    assert of_type(outputs, "shutdown_reply")
    with anyio.fail_after(5):
        while not client.kernel.closed:
            await anyio.sleep(0.01)


@pytest.mark.threads
async def test_subshell_runs_while_main_shell_is_blocked(client):
    created, _ = await client.request("control", "create_subshell_request")
    subshell_id = created["content"]["subshell_id"]
    blocker = client.send("shell", "execute_request", {"code": "# thread\nimport time\ntime.sleep(0)"})
    await client.reply(blocker)
    reply, outputs = await client.execute(
        "import threading\nthreading.current_thread().name", header={"subshell_id": subshell_id}
    )
    assert reply["content"]["status"] == "ok"
    [result] = of_type(outputs, "execute_result")
    assert result["content"]["data"]["text/plain"] == f"'subshell-{subshell_id[:8]}'"
    await client.request("control", "delete_subshell_request", {"subshell_id": subshell_id})
    reply, outputs = await client.execute("'gone'", header={"subshell_id": subshell_id})
    assert reply["content"]["ename"] == "UnknownSubshellError"


async def test_non_string_subshell_id_is_an_error(client):
    reply, _ = await client.execute("'x'", header={"subshell_id": ["not", "a", "string"]})
    assert reply["content"]["ename"] == "UnknownSubshellError"


async def test_history_reports_real_session_numbers(client):
    await client.execute("c = 3")
    tail, _ = await client.request("shell", "history_request", {"hist_access_type": "tail", "n": 1, "output": False,
                                                                "raw": True})
    session = tail["content"]["history"][-1][0]
    assert session > 0
    rng, _ = await client.request("shell", "history_request", {"hist_access_type": "range", "session": 0,
                                                               "start": 1, "stop": None, "output": False,
                                                               "raw": True})
    assert {item[0] for item in rng["content"]["history"]} == {session}


async def test_comm_open_for_unknown_target_is_logged_not_printed(client):
    msg_id = client.send("shell", "comm_open", {"comm_id": "x1", "target_name": "jupyter.widget.control", "data": {}})
    await client.idle(msg_id)
    assert not of_type(client.children(msg_id), "stream")
    close = [m for m in of_type(client.children(msg_id), "comm_close") if m["content"]["comm_id"] == "x1"]
    assert close, "the kernel closes a comm it cannot open, so the front end knows"
