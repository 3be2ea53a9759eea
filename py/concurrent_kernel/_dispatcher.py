"""Per-loop message queues: an inbox any thread can feed, and one ordered lane per (channel, msg_type, subshell).

Messages in one lane run in order; lanes run concurrently. Routing happens in the loop, so lanes need no locks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

import aiologic
import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from ._loops import CallSoon, current_call_soon_threadsafe

log = logging.getLogger("concurrent_kernel")

Job = Callable[[], Awaitable[None]]


@dataclass(eq=False)
class Incoming:
    """A received message, its channel, and the transport's opaque return address."""

    channel: str
    msg: dict[str, Any]
    reply_to: Any = None
    #: Called once the reply and the idle status are sent (shutdown uses it to stop after answering).
    after_reply: Callable[[], None] | None = None

    @property
    def msg_type(self) -> str:
        return str(self.msg["header"]["msg_type"])


class Lane:
    """An ordered queue with its worker task; `abort_pending` turns queued requests into aborted replies."""

    def __init__(self, key: Hashable, send: MemoryObjectSendStream[Job], hub: Hub) -> None:
        self.key = key
        self._send = send
        self._hub = hub
        self.aborting = False

    def submit(self, job: Job) -> None:
        self._send.send_nowait(job)

    def abort_pending(self) -> None:
        """Abort what is queued or already received; requests that arrive later run normally."""
        self.aborting = True

        async def stop_aborting() -> None:
            self.aborting = False

        # Through the inbox, so messages received but not yet routed are aborted too.
        self._hub.put(lambda: self._send.send_nowait(stop_aborting))


class Hub:
    """One event loop's share of the dispatcher."""

    def __init__(self, name: str, route: Callable[[Incoming, Hub], None]) -> None:
        self.name = name
        self._route = route
        self._inbox: aiologic.SimpleQueue[Any] = aiologic.SimpleQueue()
        self._lanes: dict[Hashable, Lane] = {}
        self._task_group: TaskGroup | None = None
        self.call_soon: CallSoon | None = None
        self.started = aiologic.Event()

    def put(self, item: Incoming | Callable[[], None]) -> None:
        """Thread-safe: hand a message (or an in-loop callback) to this hub's loop."""
        self._inbox.green_put(item)

    def lane(self, key: Hashable) -> Lane:
        lane = self._lanes.get(key)
        if lane is None:
            assert self._task_group is not None
            send, receive = anyio.create_memory_object_stream[Job](math.inf)
            lane = self._lanes[key] = Lane(key, send, self)
            self._task_group.start_soon(self._run_lane, receive, name=f"lane {key}")
        return lane

    def spawn(self, job: Job, name: str | None = None) -> None:
        assert self._task_group is not None
        self._task_group.start_soon(job, name=name)

    async def run(self) -> None:
        self.call_soon = current_call_soon_threadsafe()
        async with anyio.create_task_group() as task_group:
            self._task_group = task_group
            self.started.set()
            inbox = self._inbox
            while True:
                item = await inbox.async_get()
                if item is None:
                    break
                try:
                    if isinstance(item, Incoming):
                        self._route(item, self)
                    else:
                        item()
                except Exception:
                    log.exception("%s hub failed to route %r", self.name, item)
            task_group.cancel_scope.cancel()

    def stop(self) -> None:
        self._inbox.green_put(None)

    @staticmethod
    async def _run_lane(receive: Any) -> None:
        async with receive:
            async for job in receive:
                try:
                    await job()
                except Exception:
                    log.exception("unhandled error in message handler")
