"""A transport made of in-memory queues, so the dispatcher can be tested without sockets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiologic

from .._messages import Message


class MemoryTransport:
    """The client side reads `sent` (one aiologic queue for every channel), and calls `deliver` to send."""

    def __init__(self, blocking_input: Callable[[Message], Message] | None = None) -> None:
        self.connection_info: dict[str, Any] = {}
        self.blocking_input = blocking_input
        self.sent: aiologic.SimpleQueue[tuple[str, Message]] = aiologic.SimpleQueue()
        self._feed: Callable[[str, Message, Any], None] | None = None

    def send(self, channel: str, msg: Message, reply_to: Any = None) -> None:
        self.sent.green_put((channel, msg))

    async def start(self, feed: Callable[[str, Message, Any], None]) -> None:
        self._feed = feed

    def deliver(self, channel: str, msg: Message) -> None:
        assert self._feed is not None, "kernel not started"
        self._feed(channel, msg, None)

    def close(self) -> None:
        self._feed = None
