"""input() and getpass() over the stdin channel, callable from any thread or task of a cell."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiologic

from .._context import current_execution, current_parent
from .._protocol import Channel, MsgType

if TYPE_CHECKING:
    from .._kernel import Kernel

log = logging.getLogger("concurrent_kernel")


@dataclass(eq=False)
class _PendingInput:
    msg_id: str
    event: aiologic.Event = field(default_factory=aiologic.Event)
    value: str = ""


class StdinBroker:
    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        self._lock = threading.Lock()
        self._pending: list[_PendingInput] = []

    def input(self, prompt: object = "") -> str:
        return self.request(str(prompt), password=False)

    def getpass(self, prompt: str = "Password: ", stream: Any = None) -> str:
        return self.request(prompt, password=True)

    def request(self, prompt: str, *, password: bool) -> str:
        execution = current_execution.get()
        parent = current_parent.get()
        if execution is None or parent is None or not (parent.get("content") or {}).get("allow_stdin", True):
            from IPython.core.error import StdinNotImplementedError

            raise StdinNotImplementedError("raw_input was called, but this frontend does not support input requests.")
        kernel = self._kernel
        kernel.streams.flush()
        msg = kernel.messages.make(MsgType.INPUT_REQUEST, {"prompt": prompt, "password": password}, parent)
        try:
            return self._wait_for_reply(msg, execution)
        except KeyboardInterrupt:  # as ipykernel says it (the debugger prints it when an interrupt leaves it)
            raise KeyboardInterrupt("Interrupted by user") from None

    def _wait_for_reply(self, msg: dict[str, Any], execution: Any) -> str:
        kernel = self._kernel
        if kernel.transport.blocking_input is not None:
            reply = kernel.transport.blocking_input(msg)
            return _value_of(reply)
        pending = _PendingInput(str(msg["header"]["msg_id"]))
        with self._lock:
            self._pending.append(pending)
        try:
            kernel.transport.send(Channel.STDIN, msg, execution.reply_to)
            # Wait in short slices so an interrupt (SIGINT) raises KeyboardInterrupt promptly.
            while not pending.event.wait(0.1):
                if kernel.closed:
                    raise EOFError("kernel is shutting down")
        finally:
            with self._lock:
                if pending in self._pending:
                    self._pending.remove(pending)
        return pending.value

    def resolve(self, reply: dict[str, Any]) -> None:
        """Match an input_reply to its request; a reply without parent header goes to the oldest waiter."""
        parent = reply.get("parent_header")
        parent_id = parent.get("msg_id") if isinstance(parent, dict) else None
        with self._lock:
            match = next((p for p in self._pending if p.msg_id == parent_id), None)
            if match is None and not parent_id and self._pending:
                match = self._pending[0]
            if match is not None:
                self._pending.remove(match)
        if match is None:
            log.warning("dropping input_reply with no matching input_request (parent msg_id %r)", parent_id)
            return
        match.value = _value_of(reply)
        match.event.set()


def _value_of(reply: dict[str, Any]) -> str:
    content = reply.get("content") if isinstance(reply, dict) else None
    value = content.get("value", "") if isinstance(content, dict) else ""
    return value if isinstance(value, str) else str(value)
