"""What the core needs from a transport. ZMQ, in-memory and JS-callback transports implement it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .._messages import Message, MessageFactory
from .._protocol import Channel, ExecutionState, MsgType


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


def early_kernel_info(
    messages: MessageFactory, request: Message, kernel_info: Callable[[], dict[str, Any]], starting: bool
) -> list[tuple[str, Message]]:
    """What a transport sends, in order, for a kernel_info_request it answers before the kernel runs (so a client
    sees a live kernel while the shell is built): `status: starting` unless already sent, busy, the reply, idle."""
    def status(state: ExecutionState, parent: Message | None) -> tuple[str, Message]:
        return Channel.IOPUB, messages.make(MsgType.STATUS, {"execution_state": state}, parent)

    return [
        *([status(ExecutionState.STARTING, None)] if starting else []),
        status(ExecutionState.BUSY, request),
        (Channel.SHELL, messages.make(MsgType.KERNEL_INFO_REPLY, kernel_info(), request)),
        status(ExecutionState.IDLE, request),
    ]
