"""Build Jupyter messages as plain dicts; transports serialise and sign them."""

from __future__ import annotations

import getpass
import itertools
import os
import uuid
from datetime import UTC, datetime
from typing import Any

from ._protocol import HEADER_SUBSHELL_ID, PROTOCOL_VERSION

Message = dict[str, Any]


def _username() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers, Pyodide)
        return os.environ.get("USER", "kernel")


class MessageFactory:
    """Stamps outgoing messages with this kernel's session id, so clients can tell our messages apart."""

    def __init__(self, session: str | None = None, username: str | None = None) -> None:
        self.session = session or uuid.uuid4().hex
        self.username = username or _username()
        self._counter = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:8]

    def header(self, msg_type: str, subshell_id: str | None = None) -> dict[str, Any]:
        header = {
            "msg_id": f"{self._prefix}_{os.getpid()}_{next(self._counter)}",
            "msg_type": msg_type,
            "username": self.username,
            "session": self.session,
            "date": datetime.now(UTC).isoformat(),
            "version": PROTOCOL_VERSION,
        }
        if subshell_id is not None:
            header[HEADER_SUBSHELL_ID] = subshell_id
        return header

    def make(
        self,
        msg_type: str,
        content: dict[str, Any],
        parent: Message | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[Any] | None = None,
    ) -> Message:
        parent_header = parent.get("header", {}) if parent else {}
        subshell_id = parent_header.get(HEADER_SUBSHELL_ID) if isinstance(parent_header, dict) else None
        msg: Message = {
            "header": self.header(msg_type, subshell_id),
            "msg_id": None,
            "msg_type": msg_type,
            "parent_header": parent_header,
            "metadata": metadata or {},
            "content": content,
            "buffers": buffers or [],
        }
        msg["msg_id"] = msg["header"]["msg_id"]
        return msg


def header_of(msg: Message | None) -> dict[str, Any]:
    if not msg:
        return {}
    header = msg.get("header")
    return header if isinstance(header, dict) else {}
