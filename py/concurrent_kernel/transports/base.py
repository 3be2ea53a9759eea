"""What the core needs from a transport. ZMQ, in-memory and JS-callback transports implement it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .._messages import Message


class Transport(Protocol):
    #: Ports and addresses for connect_request (empty where there are none).
    connection_info: dict[str, Any]
    #: Synchronous stdin for platforms where a reply cannot arrive while Python blocks (the browser); else None.
    blocking_input: Callable[[Message], Message] | None

    def send(self, channel: str, msg: Message, reply_to: Any = None) -> None:
        """Send one message; must be safe to call from any thread."""

    async def start(self, feed: Callable[[str, Message, Any], None]) -> None:
        """Begin delivering received messages to `feed(channel, msg, reply_to)`, from any thread."""

    def close(self) -> None:
        """Stop receiving and release resources."""
