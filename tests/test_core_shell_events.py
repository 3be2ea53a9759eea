"""IPython's shell events fire per cell as ipykernel fires them, in every run mode, in the cell's own context."""

import anyio
import pytest

from memory_client import of_type, stdout_of

pytestmark = pytest.mark.anyio

#: Each callback prints its event: the text shows which cell's output it landed in, and in what order.
RECORD = """\
ip = get_ipython()
def _record(name):
    def callback(*args):
        detail = ""
        if name == "pre_run_cell":
            detail = " " + args[0].raw_cell.splitlines()[-1]
        elif name == "post_run_cell":
            detail = f" {args[0].success}"
        print(f"<{name}{detail}>")
    return callback
_callbacks = {name: _record(name) for name in ("pre_execute", "pre_run_cell", "post_execute", "post_run_cell")}
for _name, _callback in _callbacks.items():
    ip.events.register(_name, _callback)
"""


async def record_events(client) -> None:
    reply, _ = await client.execute(RECORD)
    assert reply["content"]["status"] == "ok", reply


async def test_events_fire_around_each_cell_in_order(client):
    await record_events(client)
    reply, outputs = await client.execute("print('body')\n6 * 7")
    assert reply["content"]["status"] == "ok"
    assert stdout_of(outputs) == (
        "<pre_execute>\n<pre_run_cell 6 * 7>\nbody\n<post_execute>\n<post_run_cell True>\n"
    )
    assert of_type(outputs, "execute_result")[0]["content"]["data"]["text/plain"] == "42"


async def test_a_failing_cell_gets_post_run_cell_with_its_error(client):
    await record_events(client)
    reply, outputs = await client.execute("1 / 0")
    assert reply["content"]["status"] == "error"
    assert stdout_of(outputs).endswith("<post_execute>\n<post_run_cell False>\n")


async def test_silent_requests_fire_only_the_execute_events(client):
    """As IPython and ipykernel: pre/post_execute always, pre/post_run_cell not for silent requests."""
    await record_events(client)
    reply, outputs = await client.execute("print('quiet')", content={"silent": True})
    assert reply["content"]["status"] == "ok"
    assert stdout_of(outputs) == "<pre_execute>\nquiet\n<post_execute>\n"


async def test_an_interrupted_cell_still_fires_post_events(client):
    await record_events(client)
    running = client.send("shell", "execute_request", {"code": "import anyio\nawait anyio.sleep(30)"})
    await client.wait_for(lambda c, m: m["msg_type"] == "execute_input" and m["parent_header"]["msg_id"] == running)
    await anyio.sleep(0.2)
    client.send("control", "interrupt_request", {})
    reply = await client.reply(running)
    await client.idle(running)
    assert reply["content"]["status"] == "error"
    assert stdout_of(client.children(running)).endswith("<post_execute>\n<post_run_cell False>\n")


async def test_a_task_cell_fires_its_own_events_while_another_cell_runs(client):
    await record_events(client)
    slow = client.send("shell", "execute_request", {"code": "import anyio\nawait anyio.sleep(1.5)\n'slow'"})
    await client.wait_for(lambda c, m: m["msg_type"] == "execute_input" and m["parent_header"]["msg_id"] == slow)
    quick = client.send("shell", "execute_request", {"code": "# task\n'quick'"})
    await client.reply(quick, timeout=5)
    await client.idle(quick)
    assert stdout_of(client.children(quick)) == (
        "<pre_execute>\n<pre_run_cell 'quick'>\n<post_execute>\n<post_run_cell True>\n"
    )
    assert "<post_execute>" not in stdout_of(client.children(slow))  # the slow cell has not ended yet
    await client.reply(slow)
    await client.idle(slow)
    assert stdout_of(client.children(slow)).endswith("<post_execute>\n<post_run_cell True>\n")


@pytest.mark.threads
async def test_a_thread_cell_fires_its_events_in_its_own_output(client):
    await record_events(client)
    reply, outputs = await client.execute("# thread\nimport threading\nthreading.current_thread().name[:5]")
    assert reply["content"]["status"] == "ok", reply
    assert stdout_of(outputs) == "<pre_execute>\n<pre_run_cell threading.current_thread().name[:5]>\n" \
        "<post_execute>\n<post_run_cell True>\n"
    assert of_type(outputs, "execute_result")[0]["content"]["data"]["text/plain"] == "'cell-'"


async def test_a_failing_callback_shows_its_error_and_the_cell_stays_ok(client):
    """IPython's EventManager reports a callback's exception and carries on; the cell's own status is kept."""
    code = (
        "def broken():\n    raise RuntimeError('callback broke')\n"
        "get_ipython().events.register('post_execute', broken)"
    )
    reply, _ = await client.execute(code)
    assert reply["content"]["status"] == "ok"
    reply, outputs = await client.execute("'fine'")
    assert reply["content"]["status"] == "ok"
    assert [e["content"]["evalue"] for e in of_type(outputs, "error")] == ["callback broke"]
    await client.execute("get_ipython().events.unregister('post_execute', broken)")
