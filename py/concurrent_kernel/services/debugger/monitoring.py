"""The browser's debug backend: a Debug Adapter Protocol server inside the kernel, on sys.monitoring (Pyodide).

There is no debugpy in Pyodide (no threads, no sockets, no subprocess for its adapter), so the DAP requests the
core forwards are answered here: breakpoints, steps and exception stops come from `tracer.py`, the panel's
threads from `threads.py`, frames, scopes, variables and evaluation from `variables.py`.

How a cell stops without stopping the kernel: the monitoring callback that decides to stop suspends the cell's
WebAssembly stack with `pyodide.ffi.run_sync` (JSPI) until a `continue` or step request resolves the future it
waits on. Every entry into Python from the browser's event loop has a stack of its own, so while the cell is
suspended the worker keeps serving messages: control and shell requests, comm messages, other cells, interrupt.
Where the stack cannot be suspended (no JSPI, or Python entered from a JavaScript frame), the thread does not
stop; it goes on and the panel is told why in an `output` event (never a hang or a fatal error).
"""

from __future__ import annotations

import asyncio
import logging
import os
from contextvars import ContextVar
from types import FrameType
from typing import TYPE_CHECKING, Any

from ... import _execution
from ..._context import current_execution
from ..suspend import block_on, can_suspend
from .hooks import CodeHooks
from .threads import DapThread, Stop, Threads
from .tracer import CONTINUE, EXCEPTION_FILTERS, INTERRUPT, STEPS, Breakpoint, Tracer, UserCode
from .variables import EvaluationError, Presenter

if TYPE_CHECKING:
    from . import Debugger

log = logging.getLogger("concurrent_kernel")

#: Set while the debugger's own requests run (evaluate, conditions): their code never stops.
_internal: ContextVar[bool] = ContextVar("concurrent_kernel_debugger_internal", default=False)


#: The signal the page raises through Pyodide's interrupt buffer to pause busy code (SIGUSR1: 10 in Pyodide, as
#: ts/src/protocol.ts PAUSE_SIGNAL says).
PAUSE_SIGNAL = 10


def suspend(waiter: asyncio.Future[str]) -> str:
    """Wait for the resume request with this stack suspended (services/suspend.py). Not as an interruptible wait:
    the kernel's interrupt ends a stopped *cell* (interrupt_execution), as on CPython; a stopped background task or
    comm callback stays stopped until continued."""
    return str(block_on(waiter, interruptible=False))


def _response(request: dict[str, Any], success: bool = True, body: dict[str, Any] | None = None,
              message: str | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"type": "response", "request_seq": request.get("seq", 0), "seq": 0,
                             "success": success, "command": request.get("command"), "body": body or {}}
    if message is not None:
        reply["message"] = message
    return reply


class MonitoringBackend:
    """DebugBackend for Pyodide: see the module docstring."""

    def __init__(self, debugger: Debugger) -> None:
        from . import cell_file_prefix

        self._debugger = debugger
        kernel = debugger.kernel
        self.started = False
        background = getattr(kernel, "background", None)
        self.threads = Threads((lambda: {t.name for t in background.list()}) if background is not None else None)
        self.user = UserCode(cell_file_prefix())
        self.presenter = Presenter(self.user.frame, lambda: kernel.shell.user_ns)
        self.tracer = Tracer(self.threads, self.user, self._stop_here, _internal.get, self._output,
                             current_execution.get, lambda execution: execution in kernel.executions,
                             lambda path: getattr(kernel.shell.compile, "codes_of", lambda _: [])(path))
        self.hooks = CodeHooks(kernel.shell, self.tracer.add_code, self.tracer.uncaught, self.user.frame)
        self._cannot_stop_said = False
        self._previous_handler: Any = None
        self._handlers = {
            "initialize": self._initialize, "setBreakpoints": self._set_breakpoints,
            "setExceptionBreakpoints": self._set_exception_breakpoints, "configurationDone": self._ok,
            "threads": self._threads, "stackTrace": self._stack_trace, "scopes": self._scopes,
            "variables": self._variables, "evaluate": self._evaluate, "setVariable": self._set_variable,
            "setExpression": self._set_expression, "continue": self._resume, "next": self._resume,
            "stepIn": self._resume, "stepOut": self._resume, "pause": self._pause,
            "exceptionInfo": self._exception_info, "disconnect": self._disconnect, "terminate": self._disconnect,
        }

    # ------------------------------------------------------------ DebugBackend

    async def start(self) -> None:
        import sys

        if not hasattr(sys, "monitoring"):
            raise RuntimeError("this Python has no sys.monitoring (3.12+ is needed)")
        self.started = True

    async def attach(self, request: dict[str, Any]) -> dict[str, Any]:
        self.tracer.start()
        self.hooks.install()
        self._listen_for_pause()
        self._emit("initialized", {})
        return _response(request)

    def restore(self, breakpoints: dict[str, list[dict[str, Any]]], filters: list[str]) -> None:
        """A session of a reloaded page, attached without initialize/attach (core's restore_state)."""
        self.started = True
        self.tracer.start()
        self.hooks.install()
        self._listen_for_pause()
        for path, specs in breakpoints.items():
            self.tracer.set_breakpoints(path, [Breakpoint(int(spec["line"])) for spec in specs])
        self.tracer.set_exception_filters(filters)

    async def forward(self, request: dict[str, Any]) -> dict[str, Any]:
        command = request.get("command")
        handler = self._handlers.get(command) if isinstance(command, str) else None
        if handler is None:
            return _response(request, False, message=f"{command}: not supported by this kernel's debugger")
        token = _internal.set(True)
        try:
            return handler(request, request.get("arguments") or {})
        except EvaluationError as exc:
            return _response(request, False, body={"result": str(exc), "variablesReference": 0}, message=str(exc))
        finally:
            _internal.reset(token)

    async def stop(self) -> None:
        self.close()

    def close(self) -> None:
        """Detach: stopped threads resume, the hooks and every code object's events are removed."""
        self._resume_all()
        self.hooks.remove()
        self._stop_listening_for_pause()
        self.tracer.stop()
        self.presenter.forget_all()
        self.started = False

    def interrupt_execution(self, execution: Any) -> bool:
        """End a stopped cell: resume it with KeyboardInterrupt raised where it stopped."""
        for thread in self.threads.all():
            stop = thread.stop
            if stop is not None and stop.execution is execution and not stop.waiter.done():
                stop.waiter.set_result(INTERRUPT)
                return True
        return False

    # ------------------------------------------------------------ pausing busy code

    def _listen_for_pause(self) -> None:
        """A busy cell holds the worker, so the panel's pause request waits behind it: the page also sends
        PAUSE_SIGNAL through Pyodide's interrupt buffer (cross-origin isolated pages; ts/src/kernel.ts), which Python
        checks as it runs, and the cell stops where it is."""
        import signal

        if self._previous_handler is None:
            self._previous_handler = signal.signal(PAUSE_SIGNAL, self._on_pause_signal)

    def _stop_listening_for_pause(self) -> None:
        import signal

        if self._previous_handler is not None:
            signal.signal(PAUSE_SIGNAL, self._previous_handler)
            self._previous_handler = None

    def _on_pause_signal(self, signum: int, frame: FrameType | None) -> None:
        flag = _execution.busy_flag
        if flag is not None:
            flag(_execution.PAUSE_TAKEN)  # the page sets the signal again if Pyodide lost it (ts/src/kernel.ts)
        if _internal.get() or not self.tracer.attached:
            return
        while frame is not None and not self.user.frame(frame):
            frame = frame.f_back  # where the user's code is, below the library code it called
        if frame is not None:
            self.tracer.pause_here(self.threads.current(), frame)

    # ------------------------------------------------------------ stopping (called in the monitored code)

    def _stop_here(self, thread: DapThread, frame: FrameType, reason: str, exc: BaseException | None,
                   text: str | None, frames: list[FrameType] | None = None) -> str:
        if not can_suspend():
            if not self._cannot_stop_said:
                self._cannot_stop_said = True
                self._output(f"The debugger cannot stop {thread.name} here ({reason} at "
                             f"{frame.f_code.co_filename}:{frame.f_lineno}): this code was not entered in a way "
                             "the browser can suspend. It runs on.\n", "important")
            return CONTINUE
        waiter: asyncio.Future[str] = asyncio.get_event_loop().create_future()
        thread.stop = Stop(frame, reason, waiter, exc, text, current_execution.get(), frames)
        body: dict[str, Any] = {"reason": reason, "threadId": thread.id, "allThreadsStopped": False,
                                "preserveFocusHint": False}
        if text is not None:
            body["description"] = body["text"] = text
        self._emit("stopped", body)
        try:
            action = suspend(waiter)
        except BaseException as exc:  # the wait itself failed: run on rather than lose the cell
            log.warning("debugger: a stopped thread could not wait (%s); it continues", exc)
            action = CONTINUE
        finally:
            thread.stop = None
            self.presenter.forget_thread(thread.id)
        self._emit("continued", {"threadId": thread.id, "allThreadsContinued": False})
        return action

    def _resume_all(self) -> None:
        for thread in self.threads.all():
            if thread.stop is not None and not thread.stop.waiter.done():
                thread.stop.waiter.set_result(CONTINUE)

    # ------------------------------------------------------------ events

    def _emit(self, event: str, body: dict[str, Any]) -> None:
        try:
            self._debugger.on_event({"type": "event", "seq": 0, "event": event, "body": body})
        except Exception:
            log.exception("failed to publish a debug event")

    def _output(self, text: str, category: str = "console") -> None:
        self._emit("output", {"category": category, "output": text})

    # ------------------------------------------------------------ requests

    def _ok(self, request: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        return _response(request)

    def _initialize(self, request: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        return _response(request, body={
            "supportsConfigurationDoneRequest": True,
            "supportsConditionalBreakpoints": True,
            "supportsHitConditionalBreakpoints": True,
            "supportsLogPoints": True,
            "supportsEvaluateForHovers": True,
            "supportsSetVariable": True,
            "supportsSetExpression": True,
            "supportsExceptionInfoRequest": True,
            "supportsClipboardContext": True,
            "supportsModulesRequest": True,
            "supportsTerminateRequest": True,
            "supportsDelayedStackTraceLoading": True,
            "exceptionBreakpointFilters": EXCEPTION_FILTERS,
        })

    def _set_breakpoints(self, request: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        source = arguments.get("source") or {}
        path = source.get("path")
        wanted = arguments.get("breakpoints")
        if wanted is None:
            wanted = [{"line": line} for line in arguments.get("lines") or []]
        if not isinstance(path, str) or not isinstance(wanted, list):
            return _response(request, False, message="setBreakpoints needs arguments.source.path and breakpoints")
        lines = executable_lines(path, self._debugger)
        placed: list[dict[str, Any]] = []
        breakpoints: list[Breakpoint] = []
        for index, spec in enumerate(wanted):
            line = spec.get("line") if isinstance(spec, dict) else None
            if not isinstance(line, int) or isinstance(line, bool):
                placed.append({"verified": False, "message": "a breakpoint needs a line number"})
                continue
            real = _next_line(lines, line)
            if real is None:
                placed.append({"id": index, "verified": False, "line": line, "source": {"path": path},
                               "message": "no code at or after this line"})
                continue
            breakpoints.append(Breakpoint(real, _text(spec, "condition"), _text(spec, "hitCondition"),
                                          _text(spec, "logMessage")))
            placed.append({"id": index, "verified": True, "line": real, "source": {"path": path}})
        self.tracer.set_breakpoints(path, breakpoints)
        return _response(request, body={"breakpoints": placed})

    def _set_exception_breakpoints(self, request: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        filters = arguments.get("filters") or []
        if not isinstance(filters, list):
            return _response(request, False, message="setExceptionBreakpoints needs a list of filters")
        active = self.tracer.set_exception_filters([f for f in filters if isinstance(f, str)])
        return _response(request, body={"breakpoints": [{"verified": f in active} for f in filters]})

    def _threads(self, request: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        return _response(request, body={"threads": [{"id": t.id, "name": t.name} for t in self.threads.all()]})

    def _stopped(self, request: dict[str, Any], thread_id: Any) -> tuple[DapThread | None, dict[str, Any] | None]:
        thread = self.threads.get(thread_id)
        if thread is None:
            return None, _response(request, False, message=f"no thread {thread_id!r}")
        if thread.stop is None:
            return None, _response(request, False, message=f"thread {thread_id} is not stopped")
        return thread, None

    def _stack_trace(self, request: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        thread, error = self._stopped(request, arguments.get("threadId"))
        if thread is None or thread.stop is None:
            return error or _response(request, False)
        frames, total = self.presenter.stack(thread.id, thread.stop.frames or thread.stop.frame,
                                             int(arguments.get("startFrame") or 0), int(arguments.get("levels") or 0))
        return _response(request, body={"stackFrames": frames, "totalFrames": total})

    def _scopes(self, request: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        scopes = self.presenter.scopes(arguments.get("frameId"))
        if scopes is None:
            return _response(request, False, message="no such frame (its thread has resumed?)")
        return _response(request, body={"scopes": scopes})

    def _variables(self, request: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        variables = self.presenter.variables(arguments.get("variablesReference"),
                                             int(arguments.get("start") or 0), int(arguments.get("count") or 0))
        if variables is None:
            return _response(request, False, message="no such variablesReference (its thread has resumed?)")
        return _response(request, body={"variables": variables})

    def _frame_argument(self, arguments: dict[str, Any]) -> tuple[FrameType | None, int, str | None]:
        frame_id = arguments.get("frameId")
        if frame_id is None:
            return None, 0, None
        frame = self.presenter.frame(frame_id)
        if frame is None:
            return None, 0, f"no frame {frame_id!r} (its thread has resumed?)"
        return frame, self.presenter.owner(frame_id) or 0, None

    def _evaluate(self, request: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        expression = arguments.get("expression")
        if not isinstance(expression, str):
            return _response(request, False, message="evaluate needs arguments.expression (a string)")
        frame, owner, error = self._frame_argument(arguments)
        if error:
            return _response(request, False, message=error)
        body = self.presenter.evaluate(expression, frame, arguments.get("context"), owner)
        return _response(request, body=body)

    def _set_expression(self, request: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        expression, value = arguments.get("expression"), arguments.get("value")
        if not isinstance(expression, str) or not isinstance(value, str):
            return _response(request, False, message="setExpression needs arguments.expression and value")
        frame, _, error = self._frame_argument(arguments)
        if error:
            return _response(request, False, message=error)
        result = self.presenter.assign(expression, value, frame)
        return _response(request, body={"value": repr(result), "type": type(result).__name__})

    def _set_variable(self, request: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        name, value = arguments.get("name"), arguments.get("value")
        if not isinstance(name, str) or not isinstance(value, str):
            return _response(request, False, message="setVariable needs arguments.name and value")
        body = self.presenter.set_variable(arguments.get("variablesReference"), name, value)
        return _response(request, body=body)

    def _resume(self, request: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        command = str(request.get("command"))
        thread, error = self._stopped(request, arguments.get("threadId"))
        if thread is None or thread.stop is None:
            return error or _response(request, False)
        action = command if command in STEPS else CONTINUE
        if not thread.stop.waiter.done():
            thread.stop.waiter.set_result(action)
        return _response(request, body={"allThreadsContinued": False} if command == "continue" else {})

    def _pause(self, request: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        thread = self.threads.get(arguments.get("threadId"))
        if thread is None:
            return _response(request, False, message=f"no thread {arguments.get('threadId')!r}")
        paused = any(t.stop is not None and t.stop.reason == "pause" for t in self.threads.all())
        if thread.stop is None and not paused:
            # It stops at the next line of the user's code it runs (a busy cell was already stopped by the page's
            # signal, which came before this request): the frames it awaits in, or the next cell compiled.
            self.tracer.pause(thread)
        return _response(request)

    def _exception_info(self, request: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        thread, error = self._stopped(request, arguments.get("threadId"))
        if thread is None or thread.stop is None:
            return error or _response(request, False)
        exc = thread.stop.exception
        if exc is None:
            return _response(request, False, message="the thread did not stop on an exception")
        import traceback

        return _response(request, body={
            "exceptionId": type(exc).__qualname__, "description": str(exc),
            "breakMode": "unhandled" if thread.stop.reason == "exception" and "uncaught" in self.tracer.filters
            else "always",
            "details": {"message": str(exc), "typeName": type(exc).__qualname__,
                        "fullTypeName": f"{type(exc).__module__}.{type(exc).__qualname__}",
                        "stackTrace": "".join(traceback.format_exception(exc))},
        })

    def _disconnect(self, request: dict[str, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        # Stopped threads run on; the core then calls stop(), which turns every event off.
        self._resume_all()
        return _response(request)


def _text(spec: dict[str, Any], key: str) -> str | None:
    value = spec.get(key)
    return value if isinstance(value, str) and value else None


def _next_line(lines: set[int] | None, line: int) -> int | None:
    """The line a breakpoint lands on: that line if it has code, else the next one that has (debugpy moves it
    the same way); any line when the source is unknown (the file is not there yet)."""
    if lines is None:
        return line
    if line in lines:
        return line
    later = [n for n in lines if n > line]
    return min(later) if later else None


def executable_lines(path: str, debugger: Debugger) -> set[int] | None:
    """Lines with code in `path` (a cell's file is transformed as IPython runs it), or None if it cannot be read."""
    from . import is_cell_file

    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except OSError:
        return None
    if is_cell_file(path):
        try:
            source = debugger.kernel.shell.transform_cell(source)
        except Exception:
            return None
    try:
        code = compile(source, path, "exec", flags=_top_level_await_flag(), dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    lines: set[int] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        lines.update(line for _, _, line in current.co_lines() if line is not None)
        stack.extend(c for c in current.co_consts if hasattr(c, "co_lines"))
    if os.path.basename(path) and not lines:
        return None
    return lines


def _top_level_await_flag() -> int:
    import ast

    return int(getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0))
