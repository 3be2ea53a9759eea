"""stdout/stderr that route text to the cell of the current context and batch it into few messages.

Batching matters: a cell printing 200,000 lines must not become 200,000 messages, yet a lone print should show
up at once. Text is flushed when the buffer is large, when it has waited `interval`, and before any other output
for the same request, so order across streams and display messages is kept. Flushes that are not the writer's own
(the timer, another thread) send whole lines, so a print() is never cut in two messages.
"""

from __future__ import annotations

import codecs
import io
import math
import os
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
        #: How long a flush that is not the writer's own keeps a partial last line back (a print() in progress, or
        #: a prompt / progress dots that will get no newline soon): as ipykernel's flush interval.
        self.partial_hold = 0.2
        #: When the partial last line now at the end of the buffer was first kept back (None: none is).
        self._tail_since: float | None = None
        #: Parent for text written where no request is current (a thread started outside any cell); set by the
        #: capture service to the newest cell, as ipykernel sends such output to the latest request.
        self.fallback_parent: Callable[[], dict[str, Any] | None] | None = None
        #: Reads OS-level output waiting in the captured fds into this buffer; returns seconds until the next
        #: check is worth it (0 while such output keeps coming). Set by the capture service when it captures fds.
        self.drain: Callable[[], float] | None = None
        self._drain_due = math.inf
        #: fd numbers by stream name once writes go straight to the OS (a forked child; see after_fork_in_child).
        self._direct: dict[str, int] | None = None
        #: True while fd 1/2 are captured into this buffer: OutStream.fileno() then names them.
        self.fds_captured = False

    def write(self, name: str, text: str) -> None:
        """Python-level text, parented to the current context (or the kernel's fallback for parentless threads)."""
        if not text:
            return
        if self._direct is not None:
            self._write_direct(name, text)
            return
        parent = current_parent.get()
        if parent is None and self.fallback_parent is not None:
            parent = self.fallback_parent()
        now = time.monotonic()
        if now >= self._drain_due:  # never true without a drain: one comparison per write either way
            drain = self.drain
            if drain is not None:
                # OS-level output already in the pipes was written before this text: take it first, in order.
                self._drain_due = now + drain()
        self._append(parent, name, text, now)

    def write_to(self, parent: dict[str, Any] | None, name: str, text: str) -> None:
        """Text with a known parent (OS-level output read from the captured fds)."""
        if text:
            self._append(parent, name, text, time.monotonic())

    def _append(self, parent: dict[str, Any] | None, name: str, text: str, now: float) -> None:
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
                # Whole lines only: print() writes its pieces ('line', ' ', '5', '\n') one call at a time.
                self._flush_locked(keep_tail=True)
        if first and not due:
            self._schedule_flush()

    def _write_direct(self, name: str, text: str) -> None:
        data = text.encode("utf-8", "replace")
        fd = self._direct[name] if self._direct is not None else 2
        while data:
            data = data[os.write(fd, data):]

    def set_drain(self, drain: Callable[[], float] | None) -> None:
        """Install (or remove, with None) the function that reads captured OS-level output into this buffer."""
        self.drain = drain
        self._drain_due = 0.0 if drain is not None else math.inf

    def after_fork_in_child(self) -> None:
        """In a forked child (multiprocessing): the kernel's sockets and threads are not ours. Write straight to
        fd 1/2 instead (captured by the parent kernel when it captures fds); text buffered at fork time belongs to
        the parent, which still sends it."""
        self._lock = threading.RLock()
        self._segments, self._chars = [], 0
        self.set_drain(None)
        self._direct = {"stdout": 1, "stderr": 2}

    @property
    def pending(self) -> bool:
        return self._chars > 0

    def flush(self) -> None:
        if self._direct is not None:
            return
        drain = self.drain
        if drain is not None:  # what child processes wrote so far belongs before whatever the caller sends next
            self._drain_due = time.monotonic() + drain()
        # Always through the lock: another thread may be mid-flush (counter already reset, messages not yet
        # queued), and what the caller sends next (an idle status, a display) must come after that text.
        with self._lock:
            if self._chars:
                self._flush_locked()

    def flush_lines(self) -> None:
        """The timer's flush, from another thread: whole lines only, so a print() that its writer is in the middle
        of is not cut across two messages (a client that reads each message as lines would lose that line).
        A partial line is kept back up to `partial_hold`, then goes out as it is (a prompt, progress dots)."""
        self._drain_now()
        with self._lock:
            if self._chars:
                self._flush_locked(keep_tail=True)

    def flush_before(self, parent: dict[str, Any] | None) -> None:
        """Before another message for `parent`: its own text must go first (a print, then a display), but text
        of other requests need not, and flushing it here (a control request's status, from the control thread)
        would cut a print that a running cell is in the middle of."""
        self._drain_now()
        with self._lock:
            if self._chars and (parent is None or any(_same_request(seg[0], parent) for seg in self._segments)):
                self._flush_locked()

    def _drain_now(self) -> None:
        drain = self.drain
        if drain is not None and self._direct is None:
            self._drain_due = time.monotonic() + drain()

    def _flush_locked(self, keep_tail: bool = False) -> None:
        segments, self._segments, self._chars = self._segments, [], 0
        held_since, self._tail_since = self._tail_since, None
        if keep_tail:
            tail = _cut_partial_line(segments)
            chars = sum(len(t) for seg in tail for t in seg[2])
            now = time.monotonic()
            # A newline going out now means the tail after it is new; otherwise it is the one kept before.
            since = now if segments or held_since is None else held_since
            if tail and now - since < self.partial_hold and chars < self.max_chars:
                self._segments, self._chars, self._tail_since = tail, chars, since
                self._since = now
            else:
                if segments and tail and segments[-1][0] is tail[0][0] and segments[-1][1] == tail[0][1]:
                    segments[-1][2].extend(tail.pop(0)[2])
                segments += tail
        for parent, name, pieces in segments:
            self._publish(parent, name, "".join(pieces))


def _same_request(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    if a is b:
        return True
    try:
        return bool(a["header"]["msg_id"] == b["header"]["msg_id"])  # type: ignore[index]
    except (KeyError, TypeError):
        return False


def _cut_partial_line(segments: list[list[Any]]) -> list[list[Any]]:
    """Remove the text after the last newline from `segments` (in place) and return it as segments."""
    for i in range(len(segments) - 1, -1, -1):
        parent, name, pieces = segments[i]
        text = "".join(pieces)
        cut = text.rfind("\n") + 1
        if cut:
            tail = segments[i + 1:]
            del segments[i + 1:]
            segments[i] = [parent, name, [text[:cut]]]
            if cut < len(text):
                tail.insert(0, [parent, name, [text[cut:]]])
            return tail
    tail = segments[:]
    segments.clear()
    return tail


class OutStream(io.TextIOBase):
    """File-like replacement for sys.stdout / sys.stderr.

    Besides write/flush it answers what libraries probe on the standard streams: `encoding`, `errors`,
    `isatty()`, `fileno()` (fd 1/2 while the kernel captures them, so `faulthandler`, `subprocess.run(...,
    stdout=sys.stdout)` and C code reach the cell; `io.UnsupportedOperation` otherwise, as for any stream without
    a descriptor), `buffer` (bytes, decoded as UTF-8) and `reconfigure()` (accepted: text is always sent as is).
    """

    def __init__(self, name: str, buffer: StreamBuffer) -> None:
        super().__init__()
        self._name = name
        self._buffer = buffer
        self._binary = _BinaryWriter(self)

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"<{self._name}>"

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "strict"

    @property
    def buffer(self) -> _BinaryWriter:
        return self._binary

    @property
    def line_buffering(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        if self._buffer.fds_captured or self._buffer._direct is not None:
            return 1 if self._name == "stdout" else 2
        raise io.UnsupportedOperation(f"{self.name} has no file descriptor: the kernel does not capture fd output")

    # ipykernel 7.4's OutStream names for the parent of what this thread (or task) writes.
    @property
    def parent_header(self) -> dict[str, Any]:
        return current_parent.get() or {}

    def set_thread_parent(self, parent: dict[str, Any] | None) -> Any:
        return current_parent.set(parent)

    def reset_thread_parent(self, token: Any) -> None:
        current_parent.reset(token)

    def _is_master_process(self) -> bool:
        """ipykernel's (private) probe, used by its test suite: False in a forked child writing to the fds."""
        return self._buffer._direct is None

    def reconfigure(self, **options: Any) -> None:
        """Accepts TextIOWrapper's options; text reaches the front end as str whatever they say."""
        unknown = set(options) - {"encoding", "errors", "newline", "line_buffering", "write_through"}
        if unknown:
            raise TypeError(f"reconfigure() got unexpected keyword arguments {sorted(unknown)}")

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


class _BinaryWriter(io.BufferedIOBase):
    """`sys.stdout.buffer`: bytes written here are decoded as UTF-8 (split characters wait for their rest)."""

    def __init__(self, stream: OutStream) -> None:
        super().__init__()
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._lock = threading.Lock()

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._stream.name

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._stream.fileno()

    def write(self, data: Any) -> int:  # type: ignore[override]
        view = memoryview(data).cast("B")
        with self._lock:
            text = self._decoder.decode(view)
        self._stream.write(text)
        return view.nbytes

    def flush(self) -> None:
        self._stream.flush()
