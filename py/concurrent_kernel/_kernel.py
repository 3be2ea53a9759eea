"""The kernel: receives raw messages from a transport, routes them to per-type lanes, and publishes results.

Message path: transport -> `Kernel.feed` (any thread) -> a Hub's inbox -> `Kernel._route` (in that hub's loop)
-> a Lane (or a task / thread for run modes) -> `Kernel.handle` -> the handler named after the msg_type -> reply.
"""

from __future__ import annotations

import builtins
import getpass
import itertools
import logging
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import aiologic
import anyio

from ._context import current_execution, current_parent
from ._dispatcher import Hub, Incoming, Lane
from ._execution import Execution
from ._handlers import Handlers, RequestError
from ._loops import IS_PYODIDE
from ._messages import Message, MessageFactory, header_of
from ._protocol import (
    COMM_MSG_TYPES,
    HEADER_SUBSHELL_ID,
    Channel,
    ExecutionState,
    MsgType,
    ReplyStatus,
    RunMode,
    reply_type,
)
from ._runmode import RunModeError, run_mode_of
from .services.streams import OutStream, StreamBuffer
from .transports.base import Transport

log = logging.getLogger("concurrent_kernel")

_CURRENT: Any = object()

# Besides execute_request, comm messages run where the user's code runs (the main loop): widget callbacks touch
# user state. Every other shell request is answered on the control loop, so it is served while a cell blocks.


class Kernel:
    def __init__(
        self,
        transport: Transport,
        *,
        backend: str = "asyncio",
        config: Any = None,
        app: Any = None,
        use_threads: bool | None = None,
        session: str | None = None,
        debugger: bool = False,
        capture_fds: bool = False,
    ) -> None:
        self.transport = transport
        #: Capture fd 1/2 (child processes, C code) into the cells: for a kernel process, which owns its fds.
        self.capture_fds = capture_fds and not IS_PYODIDE
        #: services.capture.Capture while the streams are installed (CPython only).
        self.capture: Any = None
        self.backend = backend
        self.config = config
        #: services.ipython_app.IPKernelApp: profile, config files, startup code (made with the shell if not given)
        self.app = app
        self.use_threads = (not IS_PYODIDE) if use_threads is None else use_threads
        self.messages = MessageFactory(session=session)
        self.streams = StreamBuffer(self._publish_stream, self._schedule_flush)
        self.executions: set[Execution] = set()
        #: subshell_id -> the hub running its execute queue (its own thread under CPython; the main hub in Pyodide)
        self.subshells: dict[str, Hub] = {}
        self.closed = False
        self.main_hub = Hub("main", self._route)
        self.control_hub = Hub("control", self._route) if self.use_threads else self.main_hub
        self.handlers = Handlers(self)
        self.shell: Any = None
        self.comm_manager: Any = None
        self.background: Any = None
        self.gui: Any = None
        #: matplotlib-inline's figures kept per cell (services/inline_figures.py); adapts the backend when imported.
        self.inline_figures: Any = None
        #: Whether kernel_info offers the debugger; the Debugger itself is made with the shell (services.debugger).
        self.debugger_enabled = debugger
        self.debugger: Any = None
        self._cell_threads = itertools.count(1)  # names the debugger panel shows for cells on their own threads
        self._flush_requested: Any = None
        self._main_thread_id = threading.get_ident()
        self._sigint_installed = False
        self._saved_io: tuple[Any, ...] | None = None
        #: Set once IPython is up; handlers that need the shell wait for it.
        self.shell_ready = aiologic.Event()
        self._control_thread: threading.Thread | None = None
        #: Called (in the thread that stops the kernel) when shutdown begins; the process app adds an exit timer.
        self.on_stop: list[Callable[[], None]] = []
        #: (msg_id, restart): the kernel ends once that request's idle is out (do_shutdown, `exit` in a cell).
        self._end_after: tuple[str, bool] | None = None

    # ---------------------------------------------------------------- receive side

    def feed(self, channel: str, msg: Message, reply_to: Any = None) -> None:
        """Entry point for transports; thread-safe and never raises on bad input."""
        try:
            header = msg.get("header") if isinstance(msg, dict) else None
            msg_type = header.get("msg_type") if isinstance(header, dict) else None
            if not isinstance(msg_type, str) or not msg_type:
                log.error("dropping message on %s without a header.msg_type", channel)
                return
            if not isinstance(msg.get("content", {}), dict):
                msg["content"] = {"__invalid__": msg.get("content")}
            msg.setdefault("content", {})
            msg.setdefault("metadata", {})
            msg.setdefault("parent_header", {})
            msg.setdefault("buffers", [])
            if channel == Channel.STDIN:
                if msg_type == MsgType.INPUT_REPLY:
                    self.handlers.stdin.resolve(msg)
                else:
                    log.warning("ignoring %s on the stdin channel", msg_type)
                return
            if channel not in (Channel.SHELL, Channel.CONTROL):
                log.error("dropping %s received on unknown channel %r", msg_type, channel)
                return
            incoming = Incoming(channel, msg, reply_to)
            if channel == Channel.CONTROL and msg_type == MsgType.INTERRUPT_REQUEST:
                # Act at once, in the receiving thread: with a CPU-bound cell every hop to another thread
                # waits for the GIL. The control lane still sends the reply, inside busy/idle.
                self.request_interrupt()
            if channel == Channel.SHELL and msg_type == MsgType.EXECUTE_REQUEST:
                subshell_id = header.get(HEADER_SUBSHELL_ID)
                hub = self.subshells.get(subshell_id, self.main_hub) if isinstance(subshell_id, str) else self.main_hub
                hub.put(incoming)
            elif channel == Channel.SHELL and msg_type in COMM_MSG_TYPES:
                self.main_hub.put(incoming)
            else:
                self.control_hub.put(incoming)
        except Exception:
            log.exception("failed to accept a %s message", channel)

    def _route(self, incoming: Incoming, hub: Hub) -> None:
        """Runs in the hub's loop: pick the lane, task or thread for one message."""
        msg_type = incoming.msg_type
        if msg_type == MsgType.EXECUTE_REQUEST:
            subshell_id = header_of(incoming.msg).get(HEADER_SUBSHELL_ID)
            if subshell_id is not None and (not isinstance(subshell_id, str) or subshell_id not in self.subshells):
                error = RequestError("UnknownSubshellError", f"Unknown subshell_id {subshell_id!r}")
                hub.spawn(partial(self.handle, incoming, None, error))
                return
            try:
                mode = run_mode_of(incoming.msg)
            except RunModeError as exc:
                hub.spawn(partial(self.handle, incoming, None, RequestError("InvalidRunMode", str(exc))))
                return
            # While a debugger is attached, main-shell cells get threads of their own: a breakpoint then suspends
            # that cell only, never the main loop (see services/debugger).
            own_thread = hub is self.main_hub and self.use_threads and self.debugger is not None and \
                self.debugger.attached
            if mode is RunMode.TASK and not own_thread:
                hub.spawn(partial(self.handle, incoming, None, None, mode), name=f"task {incoming.msg_type}")
            elif mode is RunMode.THREAD or mode is RunMode.TASK:
                self._start_thread(incoming, hub, mode)
            else:
                lane = hub.lane((incoming.channel, msg_type, subshell_id))
                if own_thread:
                    lane.submit(partial(self._run_on_thread, incoming, lane, mode))
                else:
                    lane.submit(partial(self.handle, incoming, lane, None, mode))
        elif msg_type in COMM_MSG_TYPES:
            lane = hub.lane((incoming.channel, "comm"))
            lane.submit(partial(self.handle, incoming, lane))
        else:
            lane = hub.lane((incoming.channel, msg_type))
            lane.submit(partial(self.handle, incoming, lane))

    def _start_thread(self, incoming: Incoming, hub: Hub, mode: RunMode = RunMode.THREAD) -> None:
        if not self.use_threads:
            error = RequestError(
                "RunModeUnavailable", "run mode 'thread' needs threads, which this platform (Pyodide) does not have"
            )
            hub.spawn(partial(self.handle, incoming, None, error))
            return

        def thread_main() -> None:
            anyio.run(partial(self.handle, incoming, None, None, mode), backend=self.backend)

        msg_id = str(header_of(incoming.msg).get("msg_id", ""))[:8]
        name = f"cell-{msg_id}" if mode is RunMode.THREAD else f"cell-{next(self._cell_threads)} ({mode})"
        threading.Thread(target=thread_main, name=name, daemon=True).start()

    async def _run_on_thread(self, incoming: Incoming, lane: Lane, mode: RunMode) -> None:
        """A queue cell on a thread of its own (debugger attached); the lane waits for it, so order is kept."""
        done = aiologic.Event()

        def thread_main() -> None:
            try:
                anyio.run(partial(self.handle, incoming, lane, None, mode), backend=self.backend)
            finally:
                done.set()

        threading.Thread(target=thread_main, name=f"cell-{next(self._cell_threads)} ({mode})", daemon=True).start()
        await done

    # ---------------------------------------------------------------- handling

    async def handle(
        self,
        incoming: Incoming,
        lane: Lane | None = None,
        error: RequestError | None = None,
        mode: RunMode = RunMode.QUEUE,
    ) -> None:
        """Busy, the handler's reply (or an error reply), idle: for every request, whatever happens.

        Exactly one busy and one idle per request, parented to it, and no other status (ipykernel's contract):
        a front end that shows the last status it saw may show idle while a cell runs if another request ends
        meanwhile; it keeps the cell's own [*] until that cell's reply.
        """
        request = incoming.msg
        msg_type = incoming.msg_type
        # execute_reply's metadata says when the handler started (ipykernel; JupyterLab records it as timing)
        started = datetime.now(UTC).isoformat() if msg_type == MsgType.EXECUTE_REQUEST else None
        token = current_parent.set(request)
        try:
            self.publish(MsgType.STATUS, {"execution_state": ExecutionState.BUSY})
            if error is not None:
                raise error
            if lane is not None and lane.aborting and msg_type == MsgType.EXECUTE_REQUEST:
                content: dict[str, Any] | None = {"status": ReplyStatus.ABORTED}
            else:
                content = await self.handlers.dispatch(incoming, lane, mode)
            if content is not None:
                self.reply(incoming, reply_type(msg_type), content, started)
        except Exception as exc:  # refused or malformed (RequestError), or a handler bug: still one reply
            if isinstance(exc, RequestError):
                log.warning("%s: %s: %s", msg_type, exc.ename, exc.evalue)
            else:
                log.exception("error handling %s", msg_type)
            refusal = exc if isinstance(exc, RequestError) else RequestError.from_exception(exc)
            if msg_type == MsgType.EXECUTE_REQUEST:  # the cell shows why it did not run
                self.publish(MsgType.ERROR, refusal.output())
            if msg_type.endswith("_request"):
                self.reply(incoming, reply_type(msg_type), refusal.content(), started)
        finally:
            self.streams.flush_before(request)  # this request's text before its idle; others' prints stay whole
            self.publish(MsgType.STATUS, {"execution_state": ExecutionState.IDLE})
            current_parent.reset(token)
            if incoming.after_reply is not None:
                incoming.after_reply()
            ending = self._end_after
            if ending is not None and ending[0] == header_of(request).get("msg_id"):
                self._end(ending[1])

    # ---------------------------------------------------------------- send side

    def reply(self, incoming: Incoming, msg_type: str, content: dict[str, Any], started: str | None = None) -> None:
        metadata = None
        if msg_type == MsgType.EXECUTE_REPLY:
            metadata = {"status": content.get("status")}
            if started is not None:
                metadata["started"] = started
        msg = self.messages.make(msg_type, content, incoming.msg, metadata)
        self.transport.send(incoming.channel, msg, incoming.reply_to)

    def publish(
        self,
        msg_type: str,
        content: dict[str, Any],
        parent: Message | None = _CURRENT,
        metadata: dict[str, Any] | None = None,
        buffers: list[Any] | None = None,
    ) -> None:
        """Send on iopub, parented to the current request unless told otherwise; stream text goes first."""
        if parent is _CURRENT:
            parent = current_parent.get()
        self.streams.flush_before(parent)
        msg = self.messages.make(msg_type, content, parent, metadata, buffers)
        self.transport.send(Channel.IOPUB, msg)

    def _publish_stream(self, parent: Message | None, name: str, text: str) -> None:
        msg = self.messages.make(MsgType.STREAM, {"name": name, "text": text}, parent)
        self.transport.send(Channel.IOPUB, msg)

    def _schedule_flush(self) -> None:
        event = self._flush_requested
        if event is not None:
            event.set()

    async def _flush_periodically(self) -> None:
        """Sends buffered text that nobody else flushed (e.g. a print followed by a long computation)."""
        while True:
            event = self._flush_requested = aiologic.Event()
            if self.streams.pending:
                event.set()
            await event
            await anyio.sleep(self.streams.interval)
            self.streams.flush_lines()

    # ---------------------------------------------------------------- lifecycle

    async def serve(self, *, ready: Callable[[], None] | None = None) -> None:
        """Run the kernel on the current event loop until shutdown. Never calls anyio.run on this loop.

        The transport starts before IPython is imported, so kernel_info is answered while the shell is built;
        requests that need the shell wait for `shell_ready`.
        """
        self._main_thread_id = threading.get_ident()
        self._install_sigint()
        try:
            async with anyio.create_task_group() as tg:

                async def run_main_hub() -> None:
                    await self.main_hub.run()
                    tg.cancel_scope.cancel()  # background tasks end with the kernel

                tg.start_soon(run_main_hub, name="main hub")
                await self.main_hub.started
                if self.control_hub is not self.main_hub:
                    self._control_thread = threading.Thread(
                        target=self._run_control_thread, name="Control", daemon=True
                    )
                    self._control_thread.start()
                    await self.control_hub.started
                else:
                    tg.start_soon(self._flush_periodically, name="stream flusher")
                # `starting` goes out before any reply: before the transport delivers the first request. A transport
                # that answered kernel_info early (ZMQ's start_early) sent it then, and skips it here.
                starting = self.messages.make(MsgType.STATUS, {"execution_state": ExecutionState.STARTING}, None)
                send_starting = getattr(self.transport, "send_starting", None)
                if send_starting is not None:
                    send_starting(starting)
                else:
                    self.transport.send(Channel.IOPUB, starting)
                await self.transport.start(self.feed)
                self._start_shell()
                self.background.start(tg)
                self.shell_ready.set()
                if ready is not None:
                    ready()
        finally:
            self.closed = True
            self.streams.flush()
            self.control_hub.stop()
            self._restore_io()

    def _start_shell(self) -> None:
        from .services import comms, detection, tracebacks
        from .services.background import BackgroundTasks
        from .services.gui import GuiLoop
        from .services.inline_figures import InlineFigures
        from .services.ipython_app import make_app
        from .services.magics import register_magics
        from .services.shell import ZMQInteractiveShell

        if self.app is None:
            self.app = make_app(config=self.config)
        self.shell = ZMQInteractiveShell.create(self, self.app)
        self.comm_manager = comms.install(self)
        self.background = BackgroundTasks(self)
        self.gui = GuiLoop(self)
        self.inline_figures = InlineFigures(self)
        self.inline_figures.install()
        detection.install()
        tracebacks.install()
        register_magics(self.shell, self)
        if self.debugger_enabled:
            from .services import debugger

            self.debugger = debugger.create(self)
            if self.debugger is not None:
                self.debugger.install(self.shell)
            else:
                self.debugger_enabled = False
        if not self.debugger_enabled:
            # Cells compile under file names as ipykernel's do (not <ipython-input-N>): IPython's tracebacks then
            # show the same lines of a cell (a whole short cell, not two statements), the browser kernel included.
            from .services.debugger import CellFileCompiler

            self.shell.compile = CellFileCompiler()
        self._install_io()
        self.app.start_shell(self)  # --matplotlib, extensions, startup files: after the streams, as ipykernel

    async def create_subshell(self) -> str:
        """A subshell gets its own execute queue; under CPython on its own thread and loop, so it runs while the
        main shell is blocked."""
        subshell_id = uuid.uuid4().hex
        if not self.use_threads:
            self.subshells[subshell_id] = self.main_hub
            return subshell_id
        hub = Hub(f"subshell {subshell_id[:8]}", self._route)
        thread = threading.Thread(
            target=anyio.run, args=(hub.run,), kwargs={"backend": self.backend},
            name=f"subshell-{subshell_id[:8]}", daemon=True,
        )
        thread.start()
        await hub.started
        self.subshells[subshell_id] = hub
        return subshell_id

    def delete_subshell(self, subshell_id: str) -> bool:
        hub = self.subshells.pop(subshell_id, None)
        if hub is None:
            return False
        if hub is not self.main_hub:
            hub.stop()
        return True

    def _run_control_thread(self) -> None:
        async def control_main() -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._flush_periodically, name="stream flusher")
                await self.control_hub.run()
                tg.cancel_scope.cancel()

        anyio.run(control_main, backend=self.backend)

    def stop(self) -> None:
        """Thread-safe: end serve(). Cells still running are interrupted first."""
        self.closed = True
        for hook in self.on_stop:
            hook()
        if self.executions:
            self.request_interrupt()
        for subshell_id in list(self.subshells):
            self.delete_subshell(subshell_id)
        self.main_hub.stop()

    def _install_io(self) -> None:
        self._saved_io = (sys.stdout, sys.stderr, sys.displayhook, builtins.input, getpass.getpass)
        if not IS_PYODIDE:  # threads and fds exist: route their output to the cells (services/capture.py)
            from .services.capture import Capture

            self.capture = Capture(self, fds=self.capture_fds)
            self.capture.start()
        sys.stdout = OutStream("stdout", self.streams)
        sys.stderr = OutStream("stderr", self.streams)
        builtins.input = self.handlers.stdin.input
        getpass.getpass = self.handlers.stdin.getpass  # type: ignore[assignment]
        # Keep IPython's traps entered for the kernel's lifetime: cells overlap, so per-cell enter/exit would race.
        self.shell.builtin_trap.__enter__()
        self.shell.display_trap.__enter__()

    def _restore_io(self) -> None:
        if self._saved_io is None:
            return
        if self.shell is not None:
            self.shell.display_trap.__exit__(None, None, None)
            self.shell.builtin_trap.__exit__(None, None, None)
        sys.stdout, sys.stderr, sys.displayhook, builtins.input, getpass.getpass = self._saved_io
        self._saved_io = None
        if self.capture is not None:
            self.capture.stop()
            self.capture = None
        if self._sigint_installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._sigint_installed = False

    # ---------------------------------------------------------------- interrupt

    def _install_sigint(self) -> None:
        if IS_PYODIDE or threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGINT, self._on_sigint)
        self._sigint_installed = True

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.interrupt(in_main_thread=True):
            raise KeyboardInterrupt

    # ---------------------------------------------------------------- ending itself (ipykernel's do_shutdown)

    def do_shutdown(self, restart: bool) -> dict[str, Any]:
        """ipykernel's `kernel.do_shutdown(restart)`, which notebooks call to restart after installing packages:
        the kernel ends once the current request is answered. A ZMQ kernel's process then exits and the front end's
        kernel manager starts a new one, as with ipykernel; in the browser the page restarts the kernel."""
        self.end_after_current_request(restart)
        return {"status": "ok", "restart": restart}  # plain str: a cell may show this dict (as ipykernel's)

    def end_after_current_request(self, restart: bool) -> None:
        execution = current_execution.get()
        msg_id = header_of(execution.request).get("msg_id") if execution in self.executions else None
        if msg_id:  # from a running cell: after its reply and idle
            self._end_after = (msg_id, restart)
        else:  # a comm callback, a background task, a thread of no cell: soon, as ipykernel does (0.1 s later)

            async def end_soon() -> None:
                await anyio.sleep(0.1)
                self._end(restart)

            hub = self.main_hub
            hub.put(lambda: hub.spawn(end_soon, name="end the kernel"))  # no threads in Pyodide: on the loop

    def _end(self, restart: bool) -> None:
        log.warning("the kernel was asked to end itself (restart=%s)", restart)
        kernel_ended = getattr(self.transport, "kernel_ended", None)
        self.stop()
        if kernel_ended is not None:
            kernel_ended(restart)

    def interrupt(self, *, in_main_thread: bool = False) -> bool:
        """Interrupt every running cell. Returns True when the caller (the SIGINT handler) must raise."""
        raise_here = False
        for execution in list(self.executions):
            if in_main_thread and execution.in_step and execution.is_main_thread:
                execution.interrupted = True
                raise_here = True
            else:
                try:
                    execution.interrupt()
                except RuntimeError:  # its loop closed as it ended; raising here would end the main loop (SIGINT)
                    log.debug("interrupt: a cell's loop had already closed")
                if self.debugger is not None:
                    self.debugger.interrupt_execution(execution)  # resume it if stopped at a breakpoint
        return raise_here

    def request_interrupt(self) -> None:
        """From the control loop: a busy main thread only notices a real signal, so send one when we can."""
        if self._sigint_installed:
            signal.pthread_kill(self._main_thread_id, signal.SIGINT)
        else:
            self.interrupt()

    def get_parent(self, channel: str | None = None) -> Message | None:
        """The request being handled in this context (ipykernel's Kernel.get_parent). `channel` is accepted as
        ipykernel does; the answer is the same for every channel: each request has its own context here."""
        return current_parent.get()

    # ---------------------------------------------------------------- ipykernel compatibility (services/compat.py)

    @property
    def session(self) -> Any:
        """ipykernel's `kernel.session`: `msg(...)` and `send(kernel.iopub_socket, ...)`, through our publisher."""
        return self._compat()[0]

    @property
    def iopub_socket(self) -> Any:
        """What `kernel.session.send` takes to publish on iopub (there is no ZMQ socket to hand out)."""
        return self._compat()[1]

    def _compat(self) -> tuple[Any, Any]:
        compat = self.__dict__.get("_compat_objects")
        if compat is None:
            from .services.compat import IOPubSocket, KernelSession

            iopub = IOPubSocket()
            compat = self.__dict__.setdefault("_compat_objects", (KernelSession(self, iopub), iopub))
        return compat

    def running_in_main_thread(self) -> bool:
        return threading.get_ident() == self._main_thread_id
