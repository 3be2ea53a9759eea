"""Issue 11: under mixed load a printed line could come in two stream messages ('line', then ' 50\\n').

print() writes its pieces one call at a time; a flush from another thread (a control request's busy status, the
periodic flusher) landing between them sent half a line. A client that reads each stream message as lines lost
that line. These tests stop a print halfway on purpose; bench/soak.py measures the same under sustained load.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from concurrent_kernel._context import current_parent
from concurrent_kernel.services.streams import StreamBuffer
from memory_client import of_type

MID_PRINT = """
class Halfway:
    def __str__(self):
        ask_control_mid_print()
        return "1"

print("line", Halfway())
"""


@pytest.mark.anyio
async def test_control_request_during_a_print_does_not_cut_the_line(client):
    kernel = client.kernel
    kernel.streams.interval = 60  # the periodic flusher stays out of it: only the control request could cut
    handled = threading.Event()
    original = kernel.handlers.kernel_info_request

    async def kernel_info_request(incoming: Any) -> dict[str, Any]:
        handled.set()  # its busy status is out by now, from the control thread
        return await original(incoming)

    kernel.handlers.kernel_info_request = kernel_info_request

    def ask_control_mid_print() -> None:
        client.send("control", "kernel_info_request")
        assert handled.wait(10), "the control request was not handled while the cell printed"

    kernel.shell.user_ns["ask_control_mid_print"] = ask_control_mid_print
    reply, outputs = await client.execute(MID_PRINT)
    assert reply["content"]["status"] == "ok"
    assert [m["content"]["text"] for m in of_type(outputs, "stream")] == ["line 1\n"]


def _buffer(interval: float = 60) -> tuple[StreamBuffer, list[tuple[Any, str]]]:
    sent: list[tuple[Any, str]] = []
    buffer = StreamBuffer(lambda parent, name, text: sent.append((parent, text)), lambda: None, interval=interval)
    return buffer, sent


def test_periodic_flush_sends_whole_lines_and_holds_a_partial_line_briefly():
    buffer, sent = _buffer()
    buffer.partial_hold = 60  # a print stalled mid-line for a while (a loaded machine) still stays whole
    for piece in ("line 1\n", "line", " "):
        buffer.write("stdout", piece)
    buffer.flush_lines()
    buffer.flush_lines()
    assert [t for _, t in sent] == ["line 1\n"]
    buffer.write("stdout", "2\n")
    buffer.flush_lines()
    assert [t for _, t in sent] == ["line 1\n", "line 2\n"]
    buffer.write("stdout", "progress 50%")  # no newline coming: out once it has waited partial_hold
    buffer.flush_lines()
    assert len(sent) == 2
    buffer.partial_hold = 0
    buffer.flush_lines()
    assert [t for _, t in sent][2:] == ["progress 50%"]
    assert not buffer.pending


def test_output_of_another_request_does_not_flush_a_cells_partial_line():
    buffer, sent = _buffer()
    cell, control = {"header": {"msg_id": "cell"}}, {"header": {"msg_id": "control"}}
    token = current_parent.set(cell)
    try:
        buffer.write("stdout", "line")
    finally:
        current_parent.reset(token)
    buffer.flush_before(control)
    assert sent == []
    buffer.flush_before({"header": {"msg_id": "cell"}})  # the cell's own display or idle: its text goes first
    assert sent == [(cell, "line")]
