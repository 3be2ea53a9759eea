"""stdout/stderr that route text to the cell of the current context and batch it into few messages.

Batching matters: a cell printing 200,000 lines must not become 200,000 messages, yet a lone print should show
up at once. Text is flushed when the buffer is large, when it has waited `interval`, and before any other output
of the kernel, so order across streams and display messages is kept.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from typing import Any

from .._context import current_parent

PublishStream = Callable[[dict[str, Any] | None, str, str], None]


class StreamBuffer:
    def __init__(
        self,
        publish: PublishStream,
        schedule_flush: Callable[[], None],
        *,
        interval: float = 0.05,
        max_chars: int = 1 << 16,
    ) -> None:
        self._publish = publish
        self._schedule_flush = schedule_flush
        self.interval = interval
        self.max_chars = max_chars
        self._lock = threading.RLock()
        # [parent, name, pieces] segments in write order; consecutive writes to one (parent, name) share a segment.
        self._segments: list[list[Any]] = []
        self._chars = 0
        self._since = 0.0

    def write(self, name: str, text: str) -> None:
        if not text:
            return
        parent = current_parent.get()
        now = time.monotonic()
        with self._lock:
            segments = self._segments
            if segments and segments[-1][0] is parent and segments[-1][1] == name:
                segments[-1][2].append(text)
            else:
                segments.append([parent, name, [text]])
            first = self._chars == 0
            self._chars += len(text)
            if first:
                self._since = now
            due = self._chars >= self.max_chars or now - self._since >= self.interval
            if due:
                self._flush_locked()
        if first and not due:
            self._schedule_flush()

    @property
    def pending(self) -> bool:
        return self._chars > 0

    def flush(self) -> None:
        # Always through the lock: another thread may be mid-flush (counter already reset, messages not yet
        # queued), and what the caller sends next (an idle status, a display) must come after that text.
        with self._lock:
            if self._chars:
                self._flush_locked()

    def _flush_locked(self) -> None:
        segments, self._segments, self._chars = self._segments, [], 0
        for parent, name, pieces in segments:
            self._publish(parent, name, "".join(pieces))


class OutStream(io.TextIOBase):
    """File-like replacement for sys.stdout / sys.stderr."""

    def __init__(self, name: str, buffer: StreamBuffer) -> None:
        super().__init__()
        self._name = name
        self._buffer = buffer

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"<{self._name}>"

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:  # type: ignore[override]
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._buffer.write(self._name, text)
        return len(text)

    def writelines(self, lines: Any) -> None:  # type: ignore[override]
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._buffer.flush()
