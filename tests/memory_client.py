"""A tiny Jupyter client over the in-memory transport, for dispatcher tests without sockets."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio

from concurrent_kernel.transports.memory import MemoryTransport

Msg = dict[str, Any]


@asynccontextmanager
async def serving_kernel(
    backend: str, blocking_input: Callable[[Msg], Msg] | None = None, **kernel_options: Any
) -> AsyncIterator[MemoryClient]:
    """A kernel served on the caller's event loop over an in-memory transport, and a client collecting its output."""
    from traitlets.config import Config

    from concurrent_kernel._kernel import Kernel

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    transport = MemoryTransport(blocking_input=blocking_input)
    kernel = Kernel(transport, backend=backend, config=config, **kernel_options)
    client = MemoryClient(transport)
    client.kernel = kernel  # type: ignore[attr-defined]
    async with anyio.create_task_group() as tg:
        ready = anyio.Event()
        tg.start_soon(partial(kernel.serve, ready=ready.set))
        with anyio.fail_after(30):
            await ready.wait()
        tg.start_soon(client.collect)
        try:
            yield client
        finally:
            kernel.stop()
            with anyio.move_on_after(5):
                while not kernel.closed:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()


class MemoryClient:
    def __init__(self, transport: MemoryTransport) -> None:
        self.transport = transport
        self.session = uuid.uuid4().hex
        self.received: list[tuple[str, Msg]] = []
        self._changed = anyio.Event()

    async def collect(self) -> None:
        while True:
            item = await self.transport.sent.async_get()
            self.received.append(item)
            self._changed.set()
            self._changed = anyio.Event()

    def make(self, msg_type: str, content: dict[str, Any], header: dict[str, Any] | None = None,
             metadata: dict[str, Any] | None = None) -> Msg:
        msg_id = uuid.uuid4().hex
        return {
            "header": {"msg_id": msg_id, "msg_type": msg_type, "session": self.session, "username": "test",
                       "date": "2026-01-01T00:00:00Z", "version": "5.5", **(header or {})},
            "parent_header": {},
            "metadata": metadata or {},
            "content": content,
            "buffers": [],
        }

    def send(self, channel: str, msg_type: str, content: dict[str, Any] | None = None, **kw: Any) -> str:
        msg = self.make(msg_type, content or {}, **kw)
        self.transport.deliver(channel, msg)
        return msg["header"]["msg_id"]

    async def wait_for(self, predicate: Callable[[str, Msg], bool], timeout: float = 10) -> tuple[str, Msg]:
        with anyio.fail_after(timeout):
            seen = 0
            while True:
                for channel, msg in self.received[seen:]:
                    if predicate(channel, msg):
                        return channel, msg
                seen = len(self.received)
                await self._changed.wait()

    def children(self, msg_id: str, channel: str = "iopub") -> list[Msg]:
        return [m for c, m in self.received if c == channel and m["parent_header"].get("msg_id") == msg_id]

    async def reply(self, msg_id: str, timeout: float = 10) -> Msg:
        _, msg = await self.wait_for(
            lambda c, m: c in ("shell", "control") and m["parent_header"].get("msg_id") == msg_id, timeout
        )
        return msg

    async def idle(self, msg_id: str, timeout: float = 10) -> None:
        await self.wait_for(
            lambda c, m: c == "iopub" and m["msg_type"] == "status"
            and m["parent_header"].get("msg_id") == msg_id and m["content"]["execution_state"] == "idle",
            timeout,
        )

    async def request(self, channel: str, msg_type: str, content: dict[str, Any] | None = None,
                      timeout: float = 10, **kw: Any) -> tuple[Msg, list[Msg]]:
        msg_id = self.send(channel, msg_type, content, **kw)
        reply = await self.reply(msg_id, timeout)
        await self.idle(msg_id, timeout)
        return reply, self.children(msg_id)

    async def execute(self, code: str, timeout: float = 10, **kw: Any) -> tuple[Msg, list[Msg]]:
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}
        content.update(kw.pop("content", {}))
        return await self.request("shell", "execute_request", content, timeout, **kw)


def stdout_of(outputs: list[Msg], name: str = "stdout") -> str:
    return "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream" and m["content"]["name"] == name)


def of_type(outputs: list[Msg], msg_type: str) -> list[Msg]:
    return [m for m in outputs if m["msg_type"] == msg_type]
