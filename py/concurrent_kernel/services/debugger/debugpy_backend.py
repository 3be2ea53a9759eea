"""The CPython debug backend: debugpy in this process, its adapter in a subprocess, the kernel as the adapter's client.

`debugpy.listen` (run once, on first `initialize`) starts pydevd's tracing and the debugpy adapter; the kernel
connects to the adapter over TCP and forwards the front end's DAP requests, re-numbering them so that requests the
kernel makes itself (the configuration handshake, `threads`, `continue` for an interrupt) never collide with the
front end's. A reader thread turns the adapter's output into responses (matched by `request_seq`) and events.

Threads: debugpy traces every thread it is not told to skip. The kernel's own threads are marked
(`pydev_do_not_trace`, `is_pydev_daemon_thread`) before debugpy starts, and so are threads the kernel starts
later (`mark_kernel_thread`), so a breakpoint never suspends the control loop, the ZMQ I/O, the heartbeat or the
reader; `stopAllThreadsOnSuspend: false` makes a breakpoint stop only the thread that hit it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
from itertools import count
from typing import TYPE_CHECKING, Any

import aiologic

from ..._protocol import DapCommand, DapEvent

if TYPE_CHECKING:
    from . import Debugger

log = logging.getLogger("concurrent_kernel")

#: Threads the kernel starts for itself (by name); cell, subshell and user threads stay debuggable.
KERNEL_THREAD_NAMES = frozenset({"Control", "ZMQ I/O", "Heartbeat", "ParentWatch", "IPythonHistorySavingThread"})

_HEADER = b"Content-Length: "
_SEPARATOR = b"\r\n\r\n"
#: debugpy.listen draws a fresh endpoints port each time; a stray peer rarely wins twice.
_LISTEN_ATTEMPTS = 3


def mark_kernel_thread(thread: threading.Thread) -> None:
    """debugpy must neither trace nor suspend this thread, nor list it in the panel."""
    thread.pydev_do_not_trace = True  # type: ignore[attr-defined]
    thread.is_pydev_daemon_thread = True  # type: ignore[attr-defined]


def mark_kernel_threads() -> None:
    for thread in threading.enumerate():
        if thread.name in KERNEL_THREAD_NAMES:
            mark_kernel_thread(thread)


def debugpy_available() -> bool:
    """Without importing debugpy (importing it costs time the kernel does not spend unless asked)."""
    from importlib.util import find_spec

    return find_spec("debugpy") is not None


class DebugpyBackend:
    def __init__(self, debugger: Debugger) -> None:
        self._debugger = debugger
        self.started = False
        self._adapter: tuple[str, int] | None = None
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._seq = count(1)
        self._pending: dict[int, tuple[aiologic.Event, list[dict[str, Any]]]] = {}
        self._initialized: aiologic.Event = aiologic.Event()

    # ------------------------------------------------------------ start / stop

    async def start(self) -> None:
        if self._adapter is None:
            self._adapter = await _in_kernel_thread(self._listen)
        await _in_kernel_thread(self._connect)
        self.started = True

    def _listen(self) -> tuple[str, int]:
        mark_kernel_threads()
        # The kernel runs with frozen stdlib modules; pydevd would print a warning about them into a cell.
        os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        import debugpy

        # Child processes (subprocess, multiprocessing) are not debugged: the kernel's own helpers use them.
        debugpy.configure(subProcess=False)
        for attempt in range(1, _LISTEN_ATTEMPTS + 1):
            try:
                host, port = debugpy.listen(("127.0.0.1", 0))
                return str(host), int(port)
            except RuntimeError as exc:
                # debugpy reads its adapter's endpoints from the first connection to a fresh ephemeral port. A
                # ZeroMQ peer still reconnecting to a port some ended kernel used can be that first connection
                # (seen in CI: "can't decode byte 0xff", ZMTP's greeting). A new port is a new draw.
                adapter = getattr(sys.modules.get("debugpy.server.api"), "_adapter_process", None)
                if adapter is not None and adapter.poll() is None:
                    adapter.kill()  # else it outlives the kernel (seen: 40% CPU for hours)
                if "adapter endpoints" not in str(exc) or attempt == _LISTEN_ATTEMPTS:
                    raise
                log.warning("debugpy could not hear from its adapter (%s); trying again", exc)
        raise AssertionError("unreachable")

    def _connect(self) -> None:
        assert self._adapter is not None
        self._initialized = aiologic.Event()
        self._sock = socket.create_connection(self._adapter, timeout=30)
        self._sock.settimeout(None)
        reader = threading.Thread(target=self._read, args=(self._sock,), name="debugpy reader", daemon=True)
        mark_kernel_thread(reader)
        reader.start()

    async def stop(self) -> None:
        sock, self._sock = self._sock, None
        self.started = False
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for event, box in list(self._pending.values()):
            box.append({"success": False, "message": "the debugger was disconnected"})
            event.set()
        self._pending.clear()

    # ------------------------------------------------------------ requests

    async def forward(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send under our own seq; give the reply back under the front end's."""
        client_seq = request.get("seq", 0)
        reply = await self._request({**request})
        reply["request_seq"] = client_seq
        return reply

    async def attach(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._adapter is not None
        arguments = dict(request.get("arguments") or {})
        arguments["connect"] = {"host": self._adapter[0], "port": self._adapter[1]}
        # Step through and stop in the user's code only (cells, their own modules); the kernel's own package
        # is not the user's even when installed from a checkout. Listing every file loaded with the kernel as
        # excluded instead (as ipykernel does) made debugpy miss breakpoints in background tasks here.
        arguments.setdefault("justMyCode", True)
        rules = list(arguments.get("rules") or [])
        rules.append({"module": "concurrent_kernel", "include": False})
        arguments["rules"] = rules
        # Only the thread that hits a breakpoint stops, and stepping resumes only it: the kernel stays live.
        arguments["stopAllThreadsOnSuspend"] = False
        arguments["steppingResumesAllThreads"] = False
        client_seq = request.get("seq", 0)
        initialized = self._initialized
        attach_reply = _Pending(self, {**request, "arguments": arguments})
        # The adapter answers attach only after the configuration handshake: initialized -> configurationDone.
        await initialized
        done = await self._request({"type": "request", "command": DapCommand.CONFIGURATION_DONE})
        if not done.get("success"):
            log.warning("debugpy refused configurationDone: %s", done.get("message"))
        reply = await attach_reply.wait()
        reply["request_seq"] = client_seq
        return reply

    async def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        return await _Pending(self, request).wait()

    def _send(self, request: dict[str, Any]) -> tuple[aiologic.Event, list[dict[str, Any]]]:
        sock = self._sock
        seq = next(self._seq)
        request["seq"] = seq
        waiter: tuple[aiologic.Event, list[dict[str, Any]]] = (aiologic.Event(), [])
        if sock is None:
            waiter[1].append({"type": "response", "success": False, "command": request.get("command"),
                              "message": "the debugger is not connected"})
            waiter[0].set()
            return waiter
        self._pending[seq] = waiter
        body = json.dumps(request, ensure_ascii=False, default=str).encode("utf-8")
        with self._send_lock:
            sock.sendall(_HEADER + str(len(body)).encode("ascii") + _SEPARATOR + body)
        return waiter

    # ------------------------------------------------------------ interrupt

    def interrupt_execution(self, execution: Any) -> bool:
        # While attached every main-shell cell has a thread of its own; one on the main thread cannot be stopped.
        return not execution.is_main_thread and self.resume_and_interrupt(execution.thread_id)

    def resume_and_interrupt(self, thread_ident: int) -> bool:
        """Resume a cell's thread if debugpy holds it; the caller already raised KeyboardInterrupt in it (which
        takes effect as soon as the thread runs again)."""
        thread = next((t for t in threading.enumerate() if t.ident == thread_ident), None)
        info = getattr(thread, "additional_info", None)
        if thread is None or info is None or not getattr(info, "is_in_wait_loop", False):
            return False
        hub = self._debugger.kernel.control_hub
        name = thread.name

        async def resume() -> None:
            threads = await self._request({"type": "request", "command": DapCommand.THREADS})
            for entry in (threads.get("body") or {}).get("threads", []):
                if entry.get("name") == name:
                    await self._request({"type": "request", "command": DapCommand.CONTINUE,
                                         "arguments": {"threadId": entry["id"]}})

        hub.put(lambda: hub.spawn(resume, name="debugger resume"))
        return True

    # ------------------------------------------------------------ reading

    def _read(self, sock: socket.socket) -> None:
        buffer = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
                while True:
                    start = buffer.find(_HEADER)
                    end = buffer.find(_SEPARATOR, start) if start >= 0 else -1
                    if end < 0:
                        break
                    length = int(buffer[start + len(_HEADER) : end])
                    body_start = end + len(_SEPARATOR)
                    if len(buffer) < body_start + length:
                        break
                    body, buffer = buffer[body_start : body_start + length], buffer[body_start + length :]
                    self._dispatch(json.loads(body))
        except OSError:
            pass
        except Exception:
            log.exception("debugpy reader failed")

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "response":
            waiter = self._pending.pop(message.get("request_seq", -1), None)
            if waiter is not None:
                waiter[1].append(message)
                waiter[0].set()
        elif kind == "event":
            if message.get("event") == DapEvent.INITIALIZED:
                self._initialized.set()
            try:
                self._debugger.on_event(message)
            except Exception:
                log.exception("failed to publish a debug event")


class _Pending:
    """A request sent now whose response is awaited later."""

    def __init__(self, backend: DebugpyBackend, request: dict[str, Any]) -> None:
        self._event, self._box = backend._send(request)

    async def wait(self) -> dict[str, Any]:
        await self._event
        return self._box[0]


async def _in_kernel_thread(fn: Any) -> Any:
    """Run blocking start-up work on a marked thread (never traced), without blocking the control loop."""
    done = aiologic.Event()
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, fn()))
        except BaseException as exc:
            box.append((False, exc))
        finally:
            done.set()

    thread = threading.Thread(target=run, name="debugger start", daemon=True)
    mark_kernel_thread(thread)
    thread.start()
    await done
    ok, value = box[0]
    if not ok:
        raise value
    return value

