"""The small part of ipykernel's Kernel API that third-party packages reach for: `kernel.session.send(...)` to
`kernel.iopub_socket`, on every platform (no ZMQ socket is handed out: messages go through the kernel's own
publisher, which is thread-safe and keeps them in order with the cell's printed text).

    kernel = get_ipython().kernel
    kernel.session.send(kernel.iopub_socket, "display_data", {"data": {...}, "metadata": {}},
                        parent=kernel.get_parent())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._messages import Message
from .._protocol import Channel

if TYPE_CHECKING:
    from .._kernel import Kernel


class IOPubSocket:
    """Stands for the iopub channel in `kernel.session.send(kernel.iopub_socket, ...)`; it has no socket API."""

    channel = Channel.IOPUB

    def __repr__(self) -> str:
        return "<concurrent-kernel iopub channel: send with kernel.session.send(kernel.iopub_socket, ...)>"


class KernelSession:
    """What ipykernel's `kernel.session` (a jupyter_client Session) offers for building and sending messages,
    stamped with the kernel's own session id. Signing is the transport's business, so there is no key here."""

    def __init__(self, kernel: Kernel, iopub: IOPubSocket) -> None:
        self._kernel = kernel
        self._iopub = iopub

    @property
    def session(self) -> str:
        return self._kernel.messages.session

    @property
    def username(self) -> str:
        return self._kernel.messages.username

    def msg_header(self, msg_type: str) -> dict[str, Any]:
        return self._kernel.messages.header(msg_type)

    def msg(
        self,
        msg_type: str,
        content: dict[str, Any] | None = None,
        parent: dict[str, Any] | None = None,
        header: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        """A message dict as jupyter_client's Session.msg builds it; `parent` is a message or a header."""
        msg = self._kernel.messages.make(msg_type, content if content is not None else {}, _as_message(parent),
                                         metadata)
        if header:
            msg["header"].update(header)
            msg["msg_id"] = msg["header"]["msg_id"]
            msg["msg_type"] = msg["header"]["msg_type"]
        return msg

    def send(
        self,
        stream: Any,
        msg_or_type: Message | str,
        content: dict[str, Any] | None = None,
        parent: dict[str, Any] | None = None,
        ident: Any = None,
        buffers: list[Any] | None = None,
        track: bool = False,
        header: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        """Send on iopub (the only stream third-party code gets here); thread-safe. `ident` (the ZMQ topic) and
        `track` have no meaning without ZMQ sockets and are ignored. Returns the message sent."""
        if stream is not self._iopub:
            raise TypeError(
                f"concurrent-kernel's session sends only to kernel.iopub_socket, not to {stream!r}; "
                "replies on shell, control and stdin are the kernel's own"
            )
        if isinstance(msg_or_type, dict):
            msg = dict(msg_or_type)
            for key, default in (("parent_header", {}), ("metadata", {}), ("content", {})):
                msg.setdefault(key, default)
            if not isinstance(msg.get("header"), dict) or "msg_type" not in msg["header"]:
                raise ValueError("a message to send needs a header with a msg_type (build it with session.msg)")
        elif isinstance(msg_or_type, str):
            msg = self.msg(msg_or_type, content, parent, header, metadata)
        else:
            raise TypeError(f"msg_or_type must be a message dict or a msg_type string, not {type(msg_or_type)}")
        if buffers is not None:
            msg["buffers"] = list(buffers)
        msg.setdefault("buffers", [])
        kernel = self._kernel
        # That request's printed text first, as with the kernel's own messages; other cells' text may be mid-line.
        kernel.streams.flush_before({"header": msg["parent_header"]} if msg["parent_header"] else None)
        kernel.transport.send(Channel.IOPUB, msg)
        return msg


def _as_message(parent: dict[str, Any] | None) -> Message | None:
    """jupyter_client accepts a parent message or just its header."""
    if not parent:
        return None
    if isinstance(parent.get("header"), dict):
        return parent
    if "msg_id" in parent:
        return {"header": parent}
    return None
