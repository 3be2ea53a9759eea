"""Execution over the in-memory transport, on asyncio and trio."""

import pytest

from memory_client import of_type, stdout_of

pytestmark = pytest.mark.anyio


async def test_stream_and_result(client):
    reply, outputs = await client.execute("print('hi')\n1+1")
    assert reply["content"]["status"] == "ok", reply
    assert stdout_of(outputs) == "hi\n"
    [result] = of_type(outputs, "execute_result")
    assert result["content"]["data"]["text/plain"] == "2"
    assert result["content"]["execution_count"] == reply["content"]["execution_count"]
    states = [m["content"]["execution_state"] for m in of_type(outputs, "status")]
    assert states == ["busy", "idle"]
    assert of_type(outputs, "execute_input")[0]["content"]["code"] == "print('hi')\n1+1"


async def test_execution_count_increments_and_silent(client):
    first, _ = await client.execute("1")
    second, _ = await client.execute("2")
    assert second["content"]["execution_count"] == first["content"]["execution_count"] + 1
    silent, outputs = await client.execute("3", content={"silent": True, "store_history": False})
    assert silent["content"]["status"] == "ok"
    assert not of_type(outputs, "execute_input") and not of_type(outputs, "execute_result")
    after, _ = await client.execute("4")
    assert after["content"]["execution_count"] == second["content"]["execution_count"] + 1


async def test_error_reply_and_traceback(client):
    reply, outputs = await client.execute("1/0")
    content = reply["content"]
    assert content["status"] == "error"
    assert content["ename"] == "ZeroDivisionError"
    [error] = of_type(outputs, "error")
    assert error["content"]["ename"] == "ZeroDivisionError" and error["content"]["traceback"]


async def test_stderr_and_order(client):
    code = "import sys\nprint('a')\nprint('b', file=sys.stderr)\nprint('c')"
    _, outputs = await client.execute(code)
    streams = [(m["content"]["name"], m["content"]["text"]) for m in of_type(outputs, "stream")]
    assert streams == [("stdout", "a\n"), ("stderr", "b\n"), ("stdout", "c\n")]


async def test_display_update_and_clear(client):
    code = (
        "from IPython.display import display, HTML, clear_output\n"
        "h = display(HTML('<b>x</b>'), display_id=True)\n"
        "h.update(HTML('<b>y</b>'))\n"
        "print('before clear')\n"
        "clear_output(wait=True)\n"
    )
    reply, outputs = await client.execute(code)
    assert reply["content"]["status"] == "ok", reply
    types = [m["msg_type"] for m in outputs if m["msg_type"] not in ("status", "execute_input")]
    assert types == ["display_data", "update_display_data", "stream", "clear_output"]
    shown = of_type(outputs, "display_data")[0]["content"]
    updated = of_type(outputs, "update_display_data")[0]["content"]
    assert shown["data"]["text/html"] == "<b>x</b>" and updated["data"]["text/html"] == "<b>y</b>"
    assert shown["transient"]["display_id"] == updated["transient"]["display_id"]
    assert of_type(outputs, "clear_output")[0]["content"] == {"wait": True}


async def test_user_expressions_and_payload(client):
    reply, _ = await client.execute(
        "x = 21\nget_ipython().set_next_input('next cell')", content={"user_expressions": {"double": "x*2"}}
    )
    content = reply["content"]
    assert content["user_expressions"]["double"]["data"]["text/plain"] == "42"
    assert content["payload"] == [{"source": "set_next_input", "text": "next cell", "replace": False}]


async def test_pager_payload(client):
    reply, _ = await client.execute("len?")
    [payload] = reply["content"]["payload"]
    assert payload["source"] == "page" and "text/plain" in payload["data"]


async def test_top_level_await(client, anyio_backend):
    code = "import anyio\nawait anyio.sleep(0.01)\n'awaited'"
    reply, outputs = await client.execute(code)
    assert reply["content"]["status"] == "ok", reply
    assert of_type(outputs, "execute_result")[0]["content"]["data"]["text/plain"] == "'awaited'"


async def test_stop_on_error_aborts_queued(client):
    first = client.send("shell", "execute_request", {"code": "import anyio\nawait anyio.sleep(0.2)\n1/0"})
    second = client.send("shell", "execute_request", {"code": "print('must not run')"})
    third = client.send("shell", "execute_request", {"code": "print('neither')"})
    assert (await client.reply(first))["content"]["status"] == "error"
    assert (await client.reply(second))["content"]["status"] == "aborted"
    assert (await client.reply(third))["content"]["status"] == "aborted"
    await client.idle(third)
    assert "must not run" not in stdout_of(client.children(second))
    reply, _ = await client.execute("'runs again'")
    assert reply["content"]["status"] == "ok"


async def test_stop_on_error_false_keeps_going(client):
    first = client.send("shell", "execute_request", {"code": "1/0", "stop_on_error": False})
    second = client.send("shell", "execute_request", {"code": "'fine'"})
    assert (await client.reply(first))["content"]["status"] == "error"
    assert (await client.reply(second))["content"]["status"] == "ok"


async def test_large_output_is_batched_and_complete(client):
    reply, outputs = await client.execute("for i in range(20000): print(i)", timeout=60)
    assert reply["content"]["status"] == "ok"
    text = stdout_of(outputs)
    assert text.splitlines() == [str(i) for i in range(20000)]
    assert len(of_type(outputs, "stream")) < 200


async def test_shown_traceback_that_is_handled_does_not_fail_the_cell(client):
    code = "try:\n    1/0\nexcept ZeroDivisionError:\n    get_ipython().showtraceback()\n'carried on'"
    reply, outputs = await client.execute(code)
    assert reply["content"]["status"] == "ok"
    assert of_type(outputs, "error") and of_type(outputs, "execute_result")


async def test_get_parent_is_the_cell_request(client):
    reply, outputs = await client.execute("get_ipython().get_parent()['header']['msg_id']")
    [result] = of_type(outputs, "execute_result")
    assert result["content"]["data"]["text/plain"] == repr(reply["parent_header"]["msg_id"])
