"""Output of threads goes to the cell that started them (services/capture.py), over the in-memory transport."""

import anyio
import pytest

from memory_client import of_type

pytestmark = [pytest.mark.anyio, pytest.mark.threads]


def streams_of(client, msg_id):  # type: ignore[no-untyped-def]
    return [(m["content"]["name"], m["content"]["text"]) for m in of_type(client.children(msg_id), "stream")]


async def wait_text(client, msg_id, text, timeout=10):  # type: ignore[no-untyped-def]
    """Wait until `msg_id`'s stream output (possibly after its idle) contains `text`."""
    await client.wait_for(
        lambda channel, m: channel == "iopub"
        and m["parent_header"].get("msg_id") == msg_id
        and m["msg_type"] == "stream"
        and text in "".join(t for _, t in streams_of(client, msg_id)),
        timeout,
    )


async def test_thread_output_goes_to_its_cell(client):
    code = (
        "import threading\n"
        "def inner(): print('nested')\n"
        "def outer():\n"
        "    print('thread')\n"
        "    t = threading.Thread(target=inner); t.start(); t.join()\n"
        "t = threading.Thread(target=outer); t.start(); t.join()\n"
    )
    reply, outputs = await client.execute(code)
    assert reply["content"]["status"] == "ok", reply
    assert "".join(m["content"]["text"] for m in of_type(outputs, "stream")) == "thread\nnested\n"


async def test_thread_prints_after_its_cell_ended(client):
    first, _ = await client.execute(
        "import threading\ngo = threading.Event()\n"
        "late = threading.Thread(target=lambda: (go.wait(10), print('late')))\nlate.start()"
    )
    first_id = first["parent_header"]["msg_id"]
    _, outputs = await client.execute("go.set(); late.join()")
    assert not of_type(outputs, "stream"), "the late line belongs to the first cell"
    await wait_text(client, first_id, "late\n")


SUBCLASS_AND_TIMER = (
    "class Worker(threading.Thread):\n"
    "    def run(self): print('subclass run')\n"
    "w = Worker(); w.start(); w.join()\n"
    "timer = threading.Timer(0.01, print, ('timer',)); timer.start(); timer.join()\n"
)


async def test_thread_subclasses_and_timers(client):
    _, outputs = await client.execute("import threading\n" + SUBCLASS_AND_TIMER)
    assert "".join(m["content"]["text"] for m in of_type(outputs, "stream")) == "subclass run\ntimer\n"


async def test_pool_threads_follow_the_cell_that_submits(client):
    first, _ = await client.execute(
        "import threading\nfrom concurrent.futures import ThreadPoolExecutor\npool = ThreadPoolExecutor(1)\n"
        "pool.submit(print, 'one').result()"
    )
    first_id = first["parent_header"]["msg_id"]
    assert streams_of(client, first_id) == [("stdout", "one\n")]
    # The pool's thread was started by the first cell; work the second cell submits prints in the second, even
    # when it prints after that cell ended, while a third one runs.
    second, _ = await client.execute("go = threading.Event()\nlater = pool.submit(lambda: (go.wait(10), print('two')))")
    _, outputs = await client.execute("go.set(); later.result()")
    assert not of_type(outputs, "stream")
    await wait_text(client, second["parent_header"]["msg_id"], "two\n")
    assert streams_of(client, first_id) == [("stdout", "one\n")]


async def test_to_thread_helpers(client, anyio_backend):
    code = "import anyio\nawait anyio.to_thread.run_sync(print, 'anyio')\n"
    if anyio_backend == "asyncio":
        code += (
            "import asyncio\nawait asyncio.get_running_loop().run_in_executor(None, print, 'executor')\n"
            "await asyncio.to_thread(print, 'to_thread')\n"
        )
        expected = "anyio\nexecutor\nto_thread\n"
    else:
        code += "import trio\nawait trio.to_thread.run_sync(print, 'trio')\n"
        expected = "anyio\ntrio\n"
    reply, outputs = await client.execute(code)
    assert reply["content"]["status"] == "ok", reply
    assert "".join(m["content"]["text"] for m in of_type(outputs, "stream")) == expected


async def test_display_from_a_thread_goes_to_its_cell(client):
    code = (
        "import threading\nfrom IPython.display import display\n"
        "t = threading.Thread(target=display, args=({'text/plain': 'shown'},), kwargs={'raw': True})\n"
        "t.start(); t.join()"
    )
    _, outputs = await client.execute(code)
    [shown] = of_type(outputs, "display_data")
    assert shown["content"]["data"]["text/plain"] == "shown"


async def test_explicit_parent_api(client):
    first, _ = await client.execute("import concurrent_kernel\nfirst = concurrent_kernel.get_parent()")
    first_id = first["parent_header"]["msg_id"]
    code = (
        "import threading\n"
        "def work():\n"
        "    token = concurrent_kernel.set_parent(first)\n"
        "    print('to first')\n"
        "    concurrent_kernel.reset_parent(token)\n"
        "    print('to second')\n"
        "    tokens = get_ipython().set_thread_parent(first)\n"
        "    print('first again')\n"
        "    get_ipython().reset_thread_parent(tokens)\n"
        "t = threading.Thread(target=work); t.start(); t.join()"
    )
    second, outputs = await client.execute(code)
    assert second["content"]["status"] == "ok", second
    assert "".join(m["content"]["text"] for m in of_type(outputs, "stream")) == "to second\n"
    await wait_text(client, first_id, "to first\nfirst again\n")


async def test_thread_started_outside_any_cell_prints_to_the_newest_cell(client):
    """A thread with no cell behind it (started by the kernel's own code, or before any cell) is not lost: its
    text goes to the newest cell, as ipykernel sends it to the latest request."""
    import threading

    from concurrent_kernel._context import current_parent

    assert current_parent.get() is None
    go = threading.Event()
    done = threading.Event()

    def orphan() -> None:
        go.wait(10)
        print("orphan")
        done.set()

    threading.Thread(target=orphan, daemon=True).start()
    reply, _ = await client.execute("import time\ntime.sleep(0.05)")
    go.set()
    await anyio.to_thread.run_sync(done.wait, 10)
    await wait_text(client, reply["parent_header"]["msg_id"], "orphan\n")


async def test_stream_compatibility_surface(client):
    code = (
        "import io, sys\n"
        "print(sys.stdout.encoding, sys.stdout.errors, sys.stdout.isatty(), sys.stdout.writable())\n"
        "sys.stdout.buffer.write('bytes é'.encode()[:-1]); sys.stdout.buffer.write('é\\n'.encode()[-2:])\n"
        "sys.stdout.reconfigure(encoding='utf-8')\n"
        "try:\n    sys.stdout.fileno()\nexcept io.UnsupportedOperation:\n    print('no fd in-process')\n"
        "token = sys.stdout.set_thread_parent({'header': {'msg_id': 'elsewhere'}})\n"
        "moved = sys.stdout.parent_header['header']['msg_id']\n"
        "sys.stdout.reset_thread_parent(token)\n"
        "print(moved, sys.stdout.parent_header['header']['msg_type'])\n"
    )
    reply, outputs = await client.execute(code)
    assert reply["content"]["status"] == "ok", reply
    text = "".join(m["content"]["text"] for m in of_type(outputs, "stream"))
    assert text == "utf-8 strict False True\nbytes é\nno fd in-process\nelsewhere execute_request\n"


def test_thread_start_wrapper_is_shared_and_leaves_threads_as_they_were():
    """Kernels in one process share the wrappers (the last one out removes them); a start that fails leaves the
    thread object untouched."""
    import threading

    from concurrent_kernel._context import current_parent
    from concurrent_kernel.services import capture

    original = threading.Thread.start
    capture.install_thread_parents()
    capture.install_thread_parents()
    try:
        token = current_parent.set({"header": {"msg_id": "cell"}})
        try:
            seen = []
            thread = threading.Thread(target=lambda: seen.append(current_parent.get()))
            thread.start()
            thread.join()
            assert seen == [{"header": {"msg_id": "cell"}}]
            with pytest.raises(RuntimeError):
                thread.start()
            assert "run" not in vars(thread)
        finally:
            current_parent.reset(token)
        capture.uninstall_thread_parents()
        assert threading.Thread.start is not original
    finally:
        capture.uninstall_thread_parents()
    assert threading.Thread.start is original
