"""CPython only: output reaches the cell that caused it, from threads, child processes and fd 1/2.

Three mechanisms, each as small as the platform allows:

- **Threads.** The parent message travels in a contextvar (`current_parent`). A `threading.Thread` starts with an
  empty context, so `Thread.start` is wrapped to hand the starting context's parent to the new thread (the thread
  keeps it for its life, after its cell ended too); `ThreadPoolExecutor.submit` is wrapped so each work item runs
  under the parent of the code that submitted it (pool threads outlive cells: the default executor of
  `loop.run_in_executor` serves every later cell). `asyncio.to_thread`, anyio's and trio's `to_thread` copy the
  caller's context themselves. Library code that runs work for a cell on a thread it did not start that way uses
  `concurrent_kernel.set_parent` / `reset_parent`.
- **fd 1 and 2** become pipes (the originals are kept as duplicates, for the kernel's own logs); a reader on the
  control thread's event loop (a task per pipe, no thread of its own) sends what arrives to the newest running
  cell (or the last one, once none runs). A print first drains what is already in the pipes (looked at every
  500 us at most, before every print while OS-level output flows), and every flush (before each message, and
  before a request's idle) does too, so a child's output lands in order with the cell's prints and before its
  idle. The one gap: a raw write to fd 1/2 by the kernel process itself within 500 us of a print, while no
  OS-level output came for half a second, may follow the print.
- **Forked children** (multiprocessing's fork start method) inherit the kernel's `sys.stdout`; after the fork it
  writes straight to fd 1/2, which the parent captures.
"""

from __future__ import annotations

import codecs
import concurrent.futures
import contextlib
import faulthandler
import io
import logging
import os
import select
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from .._context import current_parent
from .._loops import current_call_soon_threadsafe
from .streams import StreamBuffer

log = logging.getLogger("concurrent_kernel")

Message = dict[str, Any]

# ---------------------------------------------------------------------------------------------- thread parents

_patch_lock = threading.Lock()
_patch_users = 0
_original_start: Callable[[threading.Thread], None] | None = None
_original_submit: Callable[..., concurrent.futures.Future[Any]] | None = None


def _start_with_parent(self: threading.Thread) -> None:
    parent = current_parent.get()
    if parent is not None and "run" not in vars(self):
        run = self.run

        def run_with_parent() -> None:
            current_parent.set(parent)  # the thread's own (fresh) context
            try:
                run()
            finally:
                vars(self).pop("run", None)

        self.run = run_with_parent  # type: ignore[method-assign]
    assert _original_start is not None
    try:
        _original_start(self)
    except BaseException:  # not started (started twice, no thread left): leave the object as it was
        if parent is not None:
            vars(self).pop("run", None)
        raise


def _call_with_parent(parent: Message, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    token = current_parent.set(parent)
    try:
        return fn(*args, **kwargs)
    finally:
        current_parent.reset(token)


def _submit_with_parent(
    self: concurrent.futures.ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> concurrent.futures.Future[Any]:
    assert _original_submit is not None
    parent = current_parent.get()
    if parent is None:
        return _original_submit(self, fn, *args, **kwargs)
    return _original_submit(self, _call_with_parent, parent, fn, *args, **kwargs)


def install_thread_parents() -> None:
    """Wrap Thread.start and ThreadPoolExecutor.submit (once per process, however many kernels run in it)."""
    global _patch_users, _original_start, _original_submit
    with _patch_lock:
        _patch_users += 1
        if _patch_users > 1:
            return
        _original_start = threading.Thread.start
        _original_submit = concurrent.futures.ThreadPoolExecutor.submit
        threading.Thread.start = _start_with_parent  # type: ignore[method-assign]
        concurrent.futures.ThreadPoolExecutor.submit = _submit_with_parent  # type: ignore[method-assign,assignment]


def uninstall_thread_parents() -> None:
    global _patch_users
    with _patch_lock:
        if _patch_users == 0:
            return
        _patch_users -= 1
        if _patch_users:
            return
        threading.Thread.start = _original_start  # type: ignore[method-assign,assignment]
        concurrent.futures.ThreadPoolExecutor.submit = _original_submit  # type: ignore[method-assign,assignment]


# ---------------------------------------------------------------------------------------------- forked children

_buffers: weakref.WeakSet[StreamBuffer] = weakref.WeakSet()
_fork_hook_registered = False


def _after_fork_in_child() -> None:
    for buffer in list(_buffers):
        buffer.after_fork_in_child()


def _watch_forks(buffer: StreamBuffer) -> None:
    global _fork_hook_registered
    _buffers.add(buffer)
    if not _fork_hook_registered:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_registered = True


# ---------------------------------------------------------------------------------------------- which cell


class StartOrder(set):  # type: ignore[type-arg]
    """The kernel's set of running executions, remembering the request of the one started last."""

    latest: Message | None = None

    def add(self, execution: Any) -> None:
        self.latest = execution.request
        super().add(execution)


def newest_cell(executions: set[Any]) -> Message | None:
    """Where output with no context goes: the newest running cell, else the last one started."""
    running = list(executions)
    if running:
        return max(running, key=lambda ex: ex.execution_count).request  # type: ignore[no-any-return]
    return getattr(executions, "latest", None)


# ---------------------------------------------------------------------------------------------- fd capture

#: Between two prints, look at the pipes at most this often: each look is a system call that hands the GIL to
#: other threads (every 200 us cost a 200,000-line print loop 4% CPU); starting a child process and waiting for it
#: takes longer than this, so a child's output is never overtaken ...
DRAIN_EVERY = 500e-6
#: ... except while OS-level output keeps coming: then before every print.
HOT_FOR = 0.5
PIPE_SIZE = 1 << 20
#: The reader's pause after each read while output flows (seconds).
READ_PAUSE = 0.001


class FdCapture:
    """fd 1 and 2 as pipes read into the kernel's StreamBuffer."""

    def __init__(
        self,
        streams: StreamBuffer,
        parent_for: Callable[[], Message | None],
        spawn: Callable[[Callable[[], Awaitable[None]]], None],
    ) -> None:
        self._streams = streams
        self._parent_for = parent_for
        #: Runs the readers on the kernel's control loop (thread-safe).
        self._spawn = spawn
        self._reader_scope: anyio.CancelScope | None = None
        self._reader_call_soon: Callable[..., Any] | None = None
        self._readers_done = threading.Event()
        self._lock = threading.Lock()
        self._pipes: list[tuple[str, int, Any]] = []  # (stream name, read end, incremental decoder)
        # Reads land here (under _lock): no allocation per read. Made at the first read: 1 MiB of RSS that a kernel
        # whose cells never write to fd 1/2 does not need.
        self._chunk = bytearray()
        self._view = memoryview(self._chunk)
        self._saved: dict[int, int] = {}  # captured fd -> duplicate of the original
        # Drains (under _lock) share one poll object; the readers wait on the loop.
        self._drain_poll = select.poll()
        self._hot_until = 0.0
        self._started = False
        #: The original fds as text files, for the kernel's own logs.
        self.terminal: dict[int, io.TextIOWrapper] = {}

    def start(self) -> None:
        for stream in (sys.__stdout__, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.flush()  # type: ignore[union-attr]
        for fd in (1, 2):
            os.fstat(fd)  # OSError when closed: os.pipe() could then hand out 1 or 2 itself
        for name, fd in (("stdout", 1), ("stderr", 2)):
            saved = os.dup(fd)
            self._saved[fd] = saved
            read_end, write_end = os.pipe()
            with contextlib.suppress(OSError, AttributeError):
                import fcntl

                fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)  # fewer wake-ups under a flood
            os.dup2(write_end, fd)
            os.close(write_end)
            os.set_blocking(read_end, False)
            self._pipes.append((name, read_end, codecs.getincrementaldecoder("utf-8")("replace")))
            self._drain_poll.register(read_end, select.POLLIN)
            self.terminal[fd] = io.TextIOWrapper(
                io.FileIO(saved, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                line_buffering=True,
            )
        self._streams.fds_captured = True
        self._streams.set_drain(self.drain)
        # A fatal error's traceback (PYTHONFAULTHANDLER, -X faulthandler) must reach the terminal: the reader dies
        # with the process, so what goes into the pipes then is lost.
        if faulthandler.is_enabled():
            with contextlib.suppress(Exception):
                faulthandler.enable(file=self.terminal[2], all_threads=True)
        self._started = True
        self._spawn(self._read_forever)

    def drain(self) -> float:
        """Read what waits in the pipes into the buffer; the delay before the next check is worth it."""
        # Under the reader's lock: when the reader thread has just taken text out of a pipe, the pipe looks empty
        # until that text is in the buffer, and what the caller writes next must come after it.
        with self._lock:
            try:
                ready = self._drain_poll.poll(0)
            except (OSError, ValueError):
                return 1.0
            if ready:
                self._read_ready({fd for fd, _ in ready})
        now = time.monotonic()
        if ready:
            self._hot_until = now + HOT_FOR
        return 0.0 if now < self._hot_until else DRAIN_EVERY

    def _read_ready(self, ready: set[int]) -> set[int]:
        """One read from each pipe that poll found readable: the buffer holds a whole pipe, so that is all of
        it (no second read to learn the pipe is empty). Returns the pipes that reached their end."""
        if not self._chunk:
            self._chunk = bytearray(PIPE_SIZE)
            self._view = memoryview(self._chunk)
        ended = set()
        for name, fd, decoder in self._pipes:
            if fd in ready:
                try:
                    count = os.readv(fd, [self._chunk])
                except BlockingIOError:  # nothing there after all (a drain was first)
                    continue
                except OSError:  # closed at shutdown
                    ended.add(fd)
                    continue
                if count:
                    self._streams.write_to(self._parent_for(), name, decoder.decode(self._view[:count]))
                else:
                    ended.add(fd)
        return ended

    async def _read_forever(self) -> None:
        try:
            with anyio.CancelScope() as scope:
                self._reader_scope, self._reader_call_soon = scope, current_call_soon_threadsafe()
                async with anyio.create_task_group() as tg:
                    for _, fd, _ in self._pipes:
                        tg.start_soon(self._read_pipe, fd, name=f"fd capture {fd}")
        except Exception:  # never die silently: the kernel's output would stop
            log.exception("fd capture stopped")
        finally:
            self._readers_done.set()

    async def _read_pipe(self, fd: int) -> None:
        while True:
            await anyio.wait_readable(fd)
            with self._lock:
                ended = self._read_ready({fd})
            if ended:  # no writer left (fds given back at shutdown)
                return
            self._hot_until = time.monotonic() + HOT_FOR
            # Under a flood of small writes (a child printing unbuffered), let them gather: far fewer reads, and
            # text waits in the buffer for its flush interval anyway. Prints drain the pipes themselves, so this
            # costs no ordering.
            await anyio.sleep(READ_PAUSE)

    def _stop_readers(self) -> None:
        scope, call_soon = self._reader_scope, self._reader_call_soon
        if scope is None or call_soon is None or self._readers_done.is_set():
            return
        try:
            call_soon(scope.cancel)
        except RuntimeError:  # the control loop already closed: the readers ended with it
            return
        self._readers_done.wait(2)

    def stop(self) -> None:
        """Read what is left, give fd 1/2 back their originals, end the readers (also after a failed start)."""
        if not self._started and not self._saved:
            return
        self._stop_readers()
        for stream in (sys.__stdout__, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.flush()  # type: ignore[union-attr]
        self._streams.set_drain(None)
        with self._lock:
            self._read_ready({fd for _, fd, _ in self._pipes})
        self._streams.fds_captured = False
        self._streams.flush()
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)
        if faulthandler.is_enabled():
            with contextlib.suppress(Exception):
                faulthandler.enable(file=sys.__stderr__, all_threads=True)
        self._started = False
        for terminal in self.terminal.values():
            with contextlib.suppress(Exception):
                terminal.flush()
        for fd in (*(fd for _, fd, _ in self._pipes), *self._saved.values()):
            if fd >= 0:
                os.close(fd)
        self._pipes, self._saved, self.terminal = [], {}, {}


# ---------------------------------------------------------------------------------------------- the service


class Capture:
    """What `Kernel._install_io` starts on CPython: thread parents always, fd capture when asked (a kernel
    process; not a kernel embedded in a test run or another program, whose fds are not its own)."""

    def __init__(self, kernel: Any, *, fds: bool) -> None:
        self._kernel = kernel
        self._want_fds = fds
        self.fds: FdCapture | None = None
        self._handlers: list[tuple[logging.StreamHandler[Any], Any]] = []

    def start(self) -> None:
        kernel = self._kernel
        if not isinstance(kernel.executions, StartOrder):
            kernel.executions = StartOrder(kernel.executions)
        streams: StreamBuffer = kernel.streams
        streams.fallback_parent = self.newest_cell
        install_thread_parents()
        _watch_forks(streams)
        if self._want_fds:
            hub = kernel.control_hub
            fds = FdCapture(streams, self.newest_cell, lambda run: hub.put(lambda: hub.spawn(run, name="fd capture")))
            try:
                fds.start()
            except OSError as exc:  # e.g. started with fd 1 or 2 closed: run on, without fd capture
                fds.stop()
                log.warning("OS-level output is not captured into cells: %s", exc)
                return
            self.fds = fds
            self._keep_logs_on_terminal(fds.terminal)

    def newest_cell(self) -> Message | None:
        return newest_cell(self._kernel.executions)

    def _keep_logs_on_terminal(self, terminal: dict[int, io.TextIOWrapper]) -> None:
        """Handlers writing to the process's original stdout/stderr (the kernel's own log) keep the terminal."""
        originals = {id(sys.__stdout__): terminal[1], id(sys.__stderr__): terminal[2]}
        loggers = [logging.getLogger()] + [
            logger for logger in list(logging.Logger.manager.loggerDict.values()) if isinstance(logger, logging.Logger)
        ]
        for logger in loggers:
            for handler in logger.handlers:
                if isinstance(handler, logging.StreamHandler) and id(handler.stream) in originals:
                    self._handlers.append((handler, handler.stream))
                    handler.setStream(originals[id(handler.stream)])

    def stop(self) -> None:
        for handler, stream in self._handlers:
            handler.setStream(stream)
        self._handlers = []
        if self.fds is not None:
            self.fds.stop()
            self.fds = None
        self._kernel.streams.fallback_parent = None
        uninstall_thread_parents()
