"""The callback transport (what JupyterLite's worker drives) on CPython's asyncio loop: messages as JSON text in and
out, and the throwaway warm-up kernel a spare worker runs before a notebook takes it."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest

from concurrent_kernel import callback_transport
from concurrent_kernel._messages import EncodedList
from concurrent_kernel.transports.callback import _SPLICE, to_json


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the transport runs on the host's asyncio loop (Pyodide's WebLoop)


def _request(msg_type: str, content: dict[str, Any], msg_id: str) -> str:
    header = {"msg_id": msg_id, "msg_type": msg_type, "session": "test", "username": "", "date": "", "version": "5.4"}
    return json.dumps({"channel": "shell", "header": header, "parent_header": {}, "metadata": {}, "content": content})


def _execute(code: str, msg_id: str) -> str:
    return _request("execute_request", {"code": code, "silent": False, "store_history": True,
                                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}, msg_id)


async def _run(handle: callback_transport.Handle, sent: list[dict[str, Any]], raw: str, msg_id: str) -> dict[str, Any]:
    """Send one request; return its reply once the kernel is idle again."""
    handle.receive(raw)
    for _ in range(3000):
        mine = [m for m in sent if m["parent_header"].get("msg_id") == msg_id]
        replies = [m for m in mine if m["channel"] == "shell"]
        if replies and any(m["header"]["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                           for m in mine):
            return replies[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no reply to {msg_id} within 30 s: {sent}")


@pytest.mark.anyio
async def test_messages_cross_as_json_with_their_channel() -> None:
    sent: list[dict[str, Any]] = []
    handle = callback_transport.start(lambda text, buffers: sent.append(json.loads(text)))
    try:
        reply = await _run(handle, sent, _request("kernel_info_request", {}, "info"), "info")
        assert reply["header"]["msg_type"] == "kernel_info_reply" and reply["content"]["status"] == "ok"
        reply = await _run(handle, sent, _execute("1+1", "one"), "one")
        assert reply["content"]["status"] == "ok"
        results = [m for m in sent if m["header"]["msg_type"] == "execute_result"]
        assert results[0]["channel"] == "iopub" and results[0]["content"]["data"]["text/plain"] == "2"
        handle.receive("{not json")  # dropped with a log line; the kernel keeps serving
        reply = await _run(handle, sent, _execute("2+2", "two"), "two")
        assert reply["content"]["status"] == "ok"
    finally:
        await handle.shutdown()


@pytest.mark.anyio
async def test_kernel_info_is_answered_as_it_arrives_before_the_kernel_runs() -> None:
    """As the ZMQ transport does (start_early): the page sends its first cell once answered, and then does its part
    while the shell is built. `starting` comes first and only once; a cell sent meanwhile waits for the shell."""
    sent: list[dict[str, Any]] = []
    handle = callback_transport.start(lambda text, buffers: sent.append(json.loads(text)))
    try:
        handle.receive(_request("kernel_info_request", {}, "info"))
        # Answered synchronously in receive, before the kernel's task has run once.
        assert handle.kernel.shell is None
        kinds = [(m["header"]["msg_type"], m["content"].get("execution_state")) for m in sent]
        assert kinds == [("status", "starting"), ("status", "busy"), ("kernel_info_reply", None),
                         ("status", "idle")], kinds
        reply = sent[2]
        assert reply["channel"] == "shell" and reply["parent_header"]["msg_id"] == "info"
        assert reply["content"]["status"] == "ok" and reply["content"]["language_info"]["name"] == "python"
        assert reply["header"]["session"] == sent[0]["header"]["session"]  # the kernel's own session
        reply = await _run(handle, sent, _execute("1+1", "one"), "one")
        assert reply["content"]["status"] == "ok" and reply["header"]["session"] == sent[0]["header"]["session"]
        starting = [m for m in sent if m["header"]["msg_type"] == "status" and m["content"]["execution_state"]
                    == "starting"]
        assert len(starting) == 1, starting
        # Once the kernel runs, it answers kernel_info itself (the same content).
        again = await _run(handle, sent, _request("kernel_info_request", {}, "again"), "again")
        assert again["content"] == sent[2]["content"]
    finally:
        await handle.shutdown()


@pytest.mark.anyio
async def test_warm_up_runs_a_throwaway_kernel() -> None:
    assert await callback_transport.warm_up(4) == 4
    # Its first cell was interrupted (the first traceback's one-time work), and no trace of it stays.
    assert not any(hasattr(sys, name) for name in ("last_type", "last_value", "last_traceback", "last_exc"))
    # The kernel a notebook then gets starts fresh: its first cell is number 1 and sees no warm-up state.
    sent: list[dict[str, Any]] = []
    handle = callback_transport.start(lambda text, buffers: sent.append(json.loads(text)))
    try:
        reply = await _run(handle, sent, _execute("len(Out)", "fresh"), "fresh")
        assert reply["content"]["execution_count"] == 1
        results = [m for m in sent if m["header"]["msg_type"] == "execute_result"]
        assert results[0]["content"]["data"]["text/plain"] == "0"
    finally:
        await handle.shutdown()


@pytest.mark.anyio
async def test_warm_up_stops_when_a_kernel_is_wanted() -> None:
    answers = iter([True, True, False])
    assert await callback_transport.warm_up(10, keep_going=lambda: next(answers)) == 1
    assert await callback_transport.warm_up(10, keep_going=lambda: False) == 0


@pytest.mark.anyio
async def test_an_input_reply_goes_to_the_input_waiting_for_it() -> None:
    """In the browser a waiting input() suspends its stack on a future (services/suspend.py): its input_reply
    resolves that future and is not fed to the kernel; a reply nobody waits for goes to the kernel as before."""
    transport = callback_transport.CallbackTransport(lambda text, buffers: None)
    fed: list[tuple[str, dict[str, Any]]] = []
    await transport.start(lambda channel, msg, reply_to: fed.append((channel, msg)))
    waiting: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    transport._inputs["request-1"] = waiting

    def reply(parent_id: str, value: str) -> str:
        header = {"msg_id": f"reply-{value}", "msg_type": "input_reply", "session": "t", "username": "",
                  "date": "", "version": "5.4"}
        return json.dumps({"channel": "stdin", "header": header, "parent_header": {"msg_id": parent_id},
                           "metadata": {}, "content": {"status": "ok", "value": value}})

    transport.receive(reply("request-1", "Ada"))
    assert waiting.result()["content"]["value"] == "Ada"
    assert fed == []
    transport.receive(reply("request-2", "late"))
    assert [(channel, msg["content"]["value"]) for channel, msg in fed] == [("stdin", "late")]


@pytest.mark.anyio
async def test_busy_flag_is_set_only_while_a_cells_step_runs() -> None:
    """The browser page escalates an interrupt at once while the flag reads 1 (ts/src/kernel.ts interrupt): it must
    read 1 in the cell's synchronous code, 0 while the cell awaits and after it, and the plain Stepper must come back
    for a kernel started without a flag."""
    from concurrent_kernel import _execution

    flag = [0]
    writes: list[int] = []

    def busy(value: int) -> int:
        old = flag[0]
        if value >= 0:
            flag[0] = value
            writes.append(value)
        return old

    sent: list[dict[str, Any]] = []
    handle = callback_transport.start(lambda text, buffers: sent.append(json.loads(text)), busy_flag=busy)
    seen: list[tuple[str, int]] = []
    try:
        await _run(handle, sent, _request("kernel_info_request", {}, "info"), "info")
        await handle.kernel.shell_ready  # kernel_info is answered before the shell is built
        handle.kernel.shell.user_ns["seen"] = seen
        handle.kernel.shell.user_ns["flag"] = flag
        code = (
            "import asyncio\nseen.append(('before', flag[0]))\nawait asyncio.sleep(0.05)\n"
            "seen.append(('after', flag[0]))"
        )
        task = asyncio.ensure_future(_run(handle, sent, _execute(code, "flagged"), "flagged"))
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.005)
        assert flag[0] == 0, "the flag reads 1 while the cell awaits"
        reply = await task
        assert reply["content"]["status"] == "ok", reply
        assert seen == [("before", 1), ("after", 1)]
        assert flag[0] == 0 and writes.count(1) >= 2
    finally:
        await handle.shutdown()
    other = callback_transport.start(lambda text, buffers: None)
    try:
        assert _execution.stepper is _execution.Stepper and _execution.busy_flag is None
    finally:
        await other.shutdown()


def test_sigint_with_a_busy_flag_tells_the_page_it_was_taken() -> None:
    """With a busy flag (the browser), SIGINT is taken by a handler that tells the page so before it raises: the page
    sets the signal again when Pyodide's check wiped it unseen (ts/src/kernel.ts _watchSignal), and must not when
    Python took it. Without a flag the default handler comes back."""
    import signal

    from concurrent_kernel import _execution

    calls: list[int] = []
    _execution.use_busy_flag(lambda value: calls.append(value) or 0)
    try:
        assert signal.getsignal(signal.SIGINT) is _execution.took_sigint
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        assert calls == [_execution.SIGNAL_TAKEN]
    finally:
        _execution.use_busy_flag(None)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert _execution.busy_flag is None and _execution.stepper is _execution.Stepper


def test_an_encoded_list_is_spliced_in_and_nothing_else_changes() -> None:
    """The module list's JSON is written once and spliced into each reply; a user's string that reads like the
    placeholder, in a message without an encoded list, stays as it was."""
    listed = EncodedList([{"id": 0, "name": "json", "path": "/lib/json/__init__.py"}, {"id": 3, "name": "é\n"}])
    lookalike = f"\0{_SPLICE}0\0"
    body = {"first": [lookalike], "content": {"body": {"modules": listed, "total": 4}, "again": listed}, "n": 1.5}
    decoded = json.loads(to_json(body))
    assert decoded == {"first": [lookalike], "content": {"body": {"modules": list(listed), "total": 4},
                                                         "again": list(listed)}, "n": 1.5}
    assert listed.text == json.dumps(list(listed))
    plain = {"text": lookalike, "when": object}
    assert json.loads(to_json(plain)) == {"text": lookalike, "when": str(object)}


@pytest.mark.anyio
async def test_the_debugger_module_list_follows_imports() -> None:
    """JupyterLab asks for `modules` after every cell; the list is the same until a cell imports a module."""
    sent: list[dict[str, Any]] = []
    handle = callback_transport.start(lambda text, buffers: sent.append(json.loads(text)), debugger=True)
    try:
        def modules(seq: int) -> str:
            return json.dumps({**json.loads(_request("debug_request", {"type": "request", "seq": seq,
                                                                        "command": "modules", "arguments": {}},
                                                     f"m{seq}")), "channel": "control"})

        first = (await _run_control(handle, sent, modules(1), "m1"))["content"]
        again = (await _run_control(handle, sent, modules(2), "m2"))["content"]
        assert first["success"] and again["request_seq"] == 2 and again["body"] == first["body"]
        names = {m["name"] for m in first["body"]["modules"]}
        assert "json" in names and "colorsys" not in names
        await _run(handle, sent, _execute("import colorsys", "imp"), "imp")
        after = (await _run_control(handle, sent, modules(3), "m3"))["content"]
        assert "colorsys" in {m["name"] for m in after["body"]["modules"]}
        part = (await _run_control(handle, sent, json.dumps({**json.loads(_request(
            "debug_request", {"type": "request", "seq": 4, "command": "modules",
                              "arguments": {"startModule": 0, "moduleCount": 50}}, "m4")), "channel": "control"}),
            "m4"))["content"]
        assert part["body"]["modules"] and all(m["id"] < 50 for m in part["body"]["modules"])
    finally:
        await handle.shutdown()


async def _run_control(handle: callback_transport.Handle, sent: list[dict[str, Any]], raw: str,
                       msg_id: str) -> dict[str, Any]:
    handle.receive(raw)
    for _ in range(3000):
        replies = [m for m in sent if m["parent_header"].get("msg_id") == msg_id and m["channel"] == "control"]
        if replies:
            return replies[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no control reply to {msg_id} within 30 s")
