"""ipykernel drop-in behaviour of the shell side over the in-memory transport (also run inside Pyodide, so the
browser kernel has the same surface): kernel.session / iopub_socket / get_parent(channel), '' on sys.path,
display formatter errors, asyncio.run's hint, pdb over stdin."""

import sys

import anyio
import pytest

from memory_client import of_type, stdout_of

pytestmark = pytest.mark.anyio


async def test_session_send_to_iopub_socket_shows_in_the_cell(client):
    code = (
        "kernel = get_ipython().kernel\n"
        "sent = kernel.session.send(kernel.iopub_socket, 'display_data',\n"
        "    {'data': {'text/plain': 'by hand'}, 'metadata': {}}, parent=kernel.get_parent('shell'))\n"
        "sent['header']['msg_type']"
    )
    reply, outputs = await client.execute(code)
    assert reply["content"]["status"] == "ok", reply["content"]
    [shown] = of_type(outputs, "display_data")
    assert shown["content"]["data"] == {"text/plain": "by hand"}
    [result] = of_type(outputs, "execute_result")
    assert result["content"]["data"]["text/plain"] == "'display_data'"


async def test_session_msg_takes_a_parent_header_and_keeps_order_with_prints(client):
    code = (
        "kernel = get_ipython().kernel\n"
        "print('first')\n"
        "msg = kernel.session.msg('display_data', {'data': {'text/plain': 'second'}, 'metadata': {}},\n"
        "                         parent=kernel.get_parent()['header'])\n"
        "kernel.session.send(kernel.iopub_socket, msg)\n"
    )
    reply, outputs = await client.execute(code)
    assert reply["content"]["status"] == "ok", reply["content"]
    kinds = [m["msg_type"] for m in outputs if m["msg_type"] in ("stream", "display_data")]
    assert kinds == ["stream", "display_data"]
    assert reply["header"]["session"] == of_type(outputs, "display_data")[0]["header"]["session"]


async def test_get_parent_accepts_a_channel_as_ipykernel(client):
    _, outputs = await client.execute(
        "k = get_ipython().kernel\n(k.get_parent('shell') is k.get_parent()) and k.get_parent('control') is not None"
    )
    assert of_type(outputs, "execute_result")[0]["content"]["data"]["text/plain"] == "True"


async def test_empty_string_is_on_sys_path(client):
    _, outputs = await client.execute("import sys\n'' in sys.path")
    assert of_type(outputs, "execute_result")[0]["content"]["data"]["text/plain"] == "True"


async def test_result_whose_repr_raises_fails_the_cell(client):
    code = "class Bad:\n    def _repr_html_(self):\n        raise ValueError('no html')\nBad()"
    reply, outputs = await client.execute(code)
    assert reply["content"]["status"] == "error" and reply["content"]["evalue"] == "no html"
    [error] = of_type(outputs, "error")
    assert error["content"]["ename"] == "ValueError"


async def test_asyncio_run_says_to_await(client, anyio_backend):
    reply, _ = await client.execute("import asyncio\nasync def main():\n    return 1\nasyncio.run(main())")
    if anyio_backend == "trio" or sys.platform == "emscripten":
        # No asyncio loop runs under trio, and Pyodide's asyncio.run schedules on its WebLoop: both just work.
        assert reply["content"]["status"] == "ok", reply["content"]
        return
    assert reply["content"]["ename"] == "RuntimeError"
    assert "await main()" in "\n".join(reply["content"]["traceback"])


@pytest.mark.threads
async def test_breakpoint_reads_commands_from_stdin(client):
    cell = client.send("shell", "execute_request",
                       {"code": "# thread\nanswer = 40\nbreakpoint()\nprint('went on')", "allow_stdin": True})
    for command in ("p answer + 2", "c"):
        _, request = await client.wait_for(
            lambda c, m: c == "stdin" and m["msg_type"] == "input_request"
            and m["header"]["msg_id"] not in client.answered  # type: ignore[attr-defined]
        )
        assert request["content"]["prompt"].startswith("ipdb>")
        client.answered.add(request["header"]["msg_id"])  # type: ignore[attr-defined]
        reply = client.make("input_reply", {"value": command})
        reply["parent_header"] = request["header"]
        client.transport.deliver("stdin", reply)
    assert (await client.reply(cell))["content"]["status"] == "ok"
    await client.idle(cell)
    text = stdout_of(client.children(cell))
    assert "42" in text and text.rstrip().endswith("went on")


@pytest.fixture(autouse=True)
def _answered(client):
    client.answered = set()


@pytest.fixture
async def answering_client(anyio_backend):
    """A kernel whose stdin is answered synchronously from `client.answers` (as the browser kernel's is), so the
    debugger runs without threads, also inside Pyodide."""
    from memory_client import serving_kernel

    answers: list[str] = []
    prompts: list[str] = []

    def blocking_input(msg):
        prompts.append(msg["content"]["prompt"])
        return {"content": {"value": answers.pop(0) if answers else "c"}}

    async with serving_kernel(anyio_backend, blocking_input) as client:
        client.answers, client.prompts = answers, prompts
        yield client


async def test_set_trace_uses_ipythons_debugger_over_stdin(answering_client):
    client = answering_client
    client.answers.extend(["p answer + 2", "c"])
    reply, outputs = await client.execute("answer = 40\nimport pdb; pdb.set_trace()\nprint('went on')",
                                          content={"allow_stdin": True})
    assert reply["content"]["status"] == "ok", reply["content"]
    assert client.prompts and all(p.startswith("ipdb>") for p in client.prompts)
    text = stdout_of(outputs)
    assert "42" in text and text.rstrip().endswith("went on")


async def test_debug_magic_after_an_error(answering_client):
    client = answering_client
    await client.execute("def broken():\n    local = 41\n    return 1 / 0\nbroken()")
    client.answers.extend(["p local + 1", "q"])
    reply, outputs = await client.execute("%debug", content={"allow_stdin": True})
    assert reply["content"]["status"] == "ok", reply["content"]
    assert "42" in stdout_of(outputs)


async def test_do_shutdown_ends_the_kernel_after_the_cells_reply(client):
    """ipykernel's `kernel.do_shutdown(restart)`: the reply and idle go out, then the kernel ends (its transport is
    told, so a browser page can restart it; a ZMQ kernel's process exits)."""
    reply, outputs = await client.execute("get_ipython().kernel.do_shutdown(True)")
    assert reply["content"]["status"] == "ok"
    assert of_type(outputs, "execute_result")[0]["content"]["data"]["text/plain"] == "{'status': 'ok', 'restart': True}"
    await client.idle(reply["parent_header"]["msg_id"])
    with anyio.fail_after(5):
        while not client.kernel.closed:
            await anyio.sleep(0.01)


async def test_do_shutdown_from_a_background_task_ends_the_kernel(client):
    code = (
        "import anyio\n"
        "async def later():\n"
        "    await anyio.sleep(0.2)\n"
        "    get_ipython().kernel.do_shutdown(False)\n"
        "get_ipython().kernel.background.spawn(later)"
    )
    reply, _ = await client.execute(code)
    assert reply["content"]["status"] == "ok"
    with anyio.fail_after(5):
        while not client.kernel.closed:
            await anyio.sleep(0.01)
