"""Concurrent message handling: lanes, run modes, comms while awaiting, interrupts, background tasks."""

import anyio
import pytest

from memory_client import of_type, stdout_of

pytestmark = pytest.mark.anyio

AWAIT_EVENT = (
    "import aiologic\n"
    "from comm import get_comm_manager\n"
    "clicked = aiologic.Event()\n"
    "def target(comm, msg):\n"
    "    comm.on_msg(lambda m: clicked.set())\n"
    "get_comm_manager().register_target('clicker', target)\n"
)


async def test_kernel_info_and_comm_info_while_cell_awaits(client):
    running = client.send("shell", "execute_request", {"code": "import anyio\nawait anyio.sleep(2)\n'done'"})
    await client.wait_for(lambda c, m: m["msg_type"] == "execute_input" and m["parent_header"]["msg_id"] == running)
    for channel in ("shell", "control"):
        reply, _ = await client.request(channel, "kernel_info_request", timeout=1.5)
        assert reply["content"]["protocol_version"] == "5.5"
    reply, _ = await client.request("shell", "comm_info_request", timeout=1.5)
    assert reply["content"]["status"] == "ok"
    assert not any(c == "shell" and m["parent_header"].get("msg_id") == running for c, m in client.received)
    assert (await client.reply(running))["content"]["status"] == "ok"


async def test_cell_awaiting_comm_message_completes(client):
    reply, _ = await client.execute(AWAIT_EVENT)
    assert reply["content"]["status"] == "ok", reply
    waiting = client.send("shell", "execute_request", {"code": "await clicked\n'clicked'"})
    await client.wait_for(lambda c, m: m["msg_type"] == "execute_input" and m["parent_header"]["msg_id"] == waiting)
    client.send("shell", "comm_open", {"comm_id": "c1", "target_name": "clicker", "data": {}})
    client.send("shell", "comm_msg", {"comm_id": "c1", "data": {"method": "click"}})
    reply = await client.reply(waiting, timeout=5)
    assert reply["content"]["status"] == "ok"
    info, _ = await client.request("shell", "comm_info_request", {"target_name": "clicker"})
    assert info["content"]["comms"] == {"c1": {"target_name": "clicker"}}
    info, _ = await client.request("shell", "comm_info_request", {"target_name": "other"})
    assert info["content"]["comms"] == {}


async def test_kernel_comm_open_carries_cell_parent(client):
    code = "from comm import create_comm\nc = create_comm(target_name='t', data={'a': 1})"
    reply, outputs = await client.execute(code)
    assert reply["content"]["status"] == "ok", reply
    [opened] = of_type(outputs, "comm_open")
    assert opened["content"]["target_name"] == "t" and opened["content"]["data"] == {"a": 1}
    assert opened["parent_header"]["msg_id"] == reply["parent_header"]["msg_id"]


@pytest.mark.parametrize(
    ("how", "kw"),
    [
        ("comment", {"content": {"code": "# task\nimport anyio\nawait anyio.sleep(0)\n'task ran'"}}),
        ("tag", {"metadata": {"tags": ["task"]}}),
        ("metadata", {"metadata": {"run_mode": "task"}}),
        ("header", {"header": {"run_mode": "task"}}),
    ],
)
async def test_task_mode_runs_beside_a_queued_cell(client, how, kw):
    blocker = client.send("shell", "execute_request", {"code": "import anyio\nawait anyio.sleep(3)"})
    await client.wait_for(lambda c, m: m["msg_type"] == "execute_input" and m["parent_header"]["msg_id"] == blocker)
    kw = dict(kw)
    content = kw.pop("content", {"code": "import anyio\nawait anyio.sleep(0)\n'task ran'"})
    task = client.send("shell", "execute_request", content, **kw)
    reply = await client.reply(task, timeout=2.5)
    assert reply["content"]["status"] == "ok"
    assert not any(c == "shell" and m["parent_header"].get("msg_id") == blocker for c, m in client.received)
    await client.reply(blocker)


@pytest.mark.threads
async def test_thread_mode_runs_in_a_worker_thread(client):
    reply, outputs = await client.execute("# thread\nimport threading\nprint(threading.current_thread().name)")
    assert reply["content"]["status"] == "ok", reply
    assert stdout_of(outputs).startswith("cell-")


async def test_invalid_run_mode_is_an_error_and_does_not_run(client):
    reply, outputs = await client.execute("print('ran')", metadata={"run_mode": "sideways"})
    assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "InvalidRunMode"
    assert stdout_of(outputs) == ""
    [error] = of_type(outputs, "error")  # the cell shows why it did not run
    assert error["content"]["ename"] == "InvalidRunMode" and "sideways" in error["content"]["evalue"]


async def test_one_busy_and_one_idle_per_request_while_requests_overlap(client):
    """ipykernel's status contract: one busy when a request starts, one idle when it ends, parented to it, and
    no other status, even when requests overlap a running cell."""
    running = client.send("shell", "execute_request", {"code": "import anyio\nawait anyio.sleep(1)"})
    await client.wait_for(lambda c, m: m["msg_type"] == "execute_input" and m["parent_header"]["msg_id"] == running)
    others = [
        client.send("shell", "kernel_info_request"),
        client.send("shell", "complete_request", {"code": "impo", "cursor_pos": 4}),
        client.send("shell", "comm_info_request"),
        client.send("control", "kernel_info_request"),
    ]
    for msg_id in others:
        await client.idle(msg_id, timeout=60)  # the first completion imports the completer (slow inside Pyodide)
    await client.idle(running)
    await anyio.sleep(0.2)  # anything published late would show now
    statuses = [m for c, m in client.received if c == "iopub" and m["msg_type"] == "status"]
    requests = [running, *others]
    per_request = {
        msg_id: [m["content"]["execution_state"] for m in statuses if m["parent_header"].get("msg_id") == msg_id]
        for msg_id in requests
    }
    assert per_request == {msg_id: ["busy", "idle"] for msg_id in requests}
    unparented = [m["content"]["execution_state"] for m in statuses if not m["parent_header"].get("msg_id")]
    assert unparented == ["starting"]
    assert len(statuses) == 2 * len(requests) + 1


async def test_output_from_task_lands_in_its_own_cell(client):
    reply, _ = await client.execute(
        "import anyio\n"
        "async def later():\n"
        "    await anyio.sleep(0.3)\n"
        "    print('from background')\n"
        "name = get_ipython().kernel.background.spawn(later)"
    )
    starter = reply["parent_header"]["msg_id"]
    _other, outputs = await client.execute("import anyio\nawait anyio.sleep(0.6)\nprint('other')")
    assert stdout_of(outputs) == "other\n"
    await client.wait_for(lambda c, m: m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == starter)
    assert stdout_of(client.children(starter)) == "from background\n"


async def test_background_tasks_list_and_stop(client):
    reply, _ = await client.execute(
        "import anyio\n"
        "async def forever():\n"
        "    while True:\n"
        "        await anyio.sleep(0.05)\n"
        "get_ipython().kernel.background.spawn(forever, name='ticker')"
    )
    assert reply["content"]["status"] == "ok", reply
    _, outputs = await client.execute("%tasks")
    assert "ticker" in stdout_of(outputs)
    _, outputs = await client.execute("%stop ticker")
    assert "stopping 'ticker'" in stdout_of(outputs)
    await anyio.sleep(0.2)
    _, outputs = await client.execute("%tasks")
    assert "ticker" not in stdout_of(outputs)


async def test_background_exception_does_not_kill_the_loop(client):
    reply, _ = await client.execute(
        "async def boom():\n    raise ValueError('bad')\nget_ipython().kernel.background.spawn(boom)"
    )
    starter = reply["parent_header"]["msg_id"]
    await client.wait_for(lambda c, m: m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == starter)
    await anyio.sleep(0.1)
    assert "ValueError: bad" in stdout_of(client.children(starter), "stderr")
    reply, _ = await client.execute("'alive'")
    assert reply["content"]["status"] == "ok"


async def test_interrupt_awaiting_cell(client, anyio_backend):
    running = client.send("shell", "execute_request", {"code": "import anyio\nawait anyio.sleep(100)"})
    queued = client.send("shell", "execute_request", {"code": "'queued'"})
    await client.wait_for(lambda c, m: m["msg_type"] == "execute_input" and m["parent_header"]["msg_id"] == running)
    reply, _ = await client.request("control", "interrupt_request")
    assert reply["content"]["status"] == "ok"
    interrupted = await client.reply(running, timeout=5)
    assert interrupted["content"]["status"] == "error"
    assert interrupted["content"]["ename"] == "KeyboardInterrupt"
    assert (await client.reply(queued))["content"]["status"] == "aborted"
    reply, _ = await client.execute("'alive'")
    assert reply["content"]["status"] == "ok"


@pytest.mark.threads
async def test_interrupt_thread_cell(client):
    running = client.send("shell", "execute_request", {"code": "# thread\nwhile True:\n    pass"})
    await client.wait_for(lambda c, m: m["msg_type"] == "execute_input" and m["parent_header"]["msg_id"] == running)
    await anyio.sleep(0.2)
    await client.request("control", "interrupt_request")
    interrupted = await client.reply(running, timeout=5)
    assert interrupted["content"]["ename"] == "KeyboardInterrupt"


@pytest.mark.threads
async def test_callers_magic_lists_running_cells(client):
    running = client.send("shell", "execute_request", {"code": "import anyio\nawait anyio.sleep(1)"})
    await client.wait_for(lambda c, m: m["msg_type"] == "execute_input" and m["parent_header"]["msg_id"] == running)
    _, outputs = await client.execute("# task\n%callers")
    text = stdout_of(outputs)
    assert "Control" in text and "awaiting" in text and "running" in text
    await client.reply(running)


@pytest.mark.threads
async def test_thread_magic_runs_code_in_a_worker_thread(client):
    reply, outputs = await client.execute("%thread import threading; print(threading.current_thread().name)")
    assert reply["content"]["status"] == "ok", reply
    assert stdout_of(outputs) == "magic-" + client.kernel.backend + "\n"
    reply, outputs = await client.execute("%%thread\nimport threading\nprint('cell', threading.current_thread().name)")
    assert stdout_of(outputs).startswith("cell magic-")


@pytest.mark.threads
@pytest.mark.parametrize("other", ["asyncio", "trio"])
async def test_backend_magics(client, other):
    code = (
        f"%%{other}\n"
        "import sniffio, threading\n"
        f"import {other}\n"
        f"await {other}.sleep(0)\n"
        "print(sniffio.current_async_library(), threading.current_thread().name == 'MainThread')"
    )
    reply, outputs = await client.execute(code)
    assert reply["content"]["status"] == "ok", reply
    same_thread = other == client.kernel.backend
    assert stdout_of(outputs) == f"{other} {same_thread}\n"


@pytest.mark.threads
async def test_error_inside_thread_magic_fails_the_cell(client):
    reply, _ = await client.execute("%thread 1/0")
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "ZeroDivisionError"
