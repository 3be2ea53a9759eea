"""The debugger: Jupyter's debug protocol (DAP over `debug_request` / `debug_reply`, `debug_event` on iopub).

This module is the platform-neutral part: the requests a front end answers from kernel state (`debugInfo`,
`dumpCell`, `source`, `inspectVariables`, `richInspectVariables`, `modules`, `copyToGlobals`, variable filtering,
the cell file names) and the bookkeeping JupyterLab restores a page from (breakpoints, stopped threads). Stepping,
stack traces and evaluation belong to a `DebugBackend`; under CPython that is debugpy (`debugpy_backend.py`);
a browser backend can follow behind the same interface.

Concurrency. A tracing debugger suspends the *OS thread* that hits a breakpoint. Queue and task cells normally
share the main thread's event loop, so one stopped cell would stop every other cell, comm and background task on
that loop. While a debugger session is attached, the kernel therefore runs each main-shell cell (queue or task)
on a thread of its own, with its own event loop of the kernel's backend, exactly as a `# thread` cell runs: a
stopped cell suspends only its thread, which the panel lists as its own thread (`cell-<msg id> (queue)`). Queue
cells still run one after another (the queue awaits the cell's thread). The kernel's own threads (control, ZMQ
I/O, heartbeat, the debug client's reader) are marked so that debugpy neither traces nor suspends them, and
breakpoints stop only the thread that hit them (`stopAllThreadsOnSuspend: false`), so control requests, other
cells, subshells and comms carry on. Interrupt ends a stopped cell: the kernel resumes its thread and raises
KeyboardInterrupt in it. Background tasks spawned while attached get a thread of their own as well (services/
background.py). With no session attached, cells run on the main loop and nothing is traced.

Cost (bench/bench_debugger.py, execute round trip): offered but not started, one hash per cell; attached with no
breakpoint, about 4x a kernel without the debugger, of which a thread per cell is ~1.4x and debugpy's tracing of
every call (Python 3.11 has no sys.monitoring) the rest.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import sys
import tempfile
import weakref
from collections.abc import Awaitable, Callable, Sequence
from itertools import count
from types import CodeType
from typing import TYPE_CHECKING, Any, Protocol

from ..._messages import EncodedList
from ..._protocol import DapCommand, DapEvent
from ..tracebacks import CellCompiler

if TYPE_CHECKING:
    from ..._kernel import Kernel

log = logging.getLogger("concurrent_kernel")

#: The seed JupyterLab is told to hash cell sources with (any 32-bit value works; both sides must agree).
HASH_SEED = 0xC70F6907
HASH_METHOD = "Murmur2"
CELL_FILE_SUFFIX = ".py"


def murmur2(data: bytes, seed: int) -> int:
    """MurmurHash2 (32-bit), the hash JupyterLab's debugger names cell files with."""
    m = 0x5BD1E995
    mask = 0xFFFFFFFF
    length = len(data)
    h = (seed ^ length) & mask
    end = length & ~3
    for i in range(0, end, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail = length & 3
    if tail:
        k = int.from_bytes(data[end:], "little")
        h = ((h ^ k) * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def cell_file_prefix() -> str:
    """Directory (with trailing separator) where cell sources are written; one per kernel process."""
    return os.path.join(tempfile.gettempdir(), f"concurrent_kernel_{os.getpid()}") + os.sep


def cell_file_name(code: str) -> str:
    """The file a cell's code is compiled under: the name JupyterLab computes from the same source."""
    return f"{cell_file_prefix()}{murmur2(code.encode('utf-8'), HASH_SEED)}{CELL_FILE_SUFFIX}"


def is_cell_file(filename: str) -> bool:
    return filename.startswith(cell_file_prefix()) and filename.endswith(CELL_FILE_SUFFIX)


class CellFileCompiler(CellCompiler):
    """Compile each cell under its hash-based file name, so a breakpoint set on the dumped cell file is hit.

    IPython still maps the name to `Cell In[n]` in tracebacks (its CachingCompiler keeps that map).
    `listener`, while set, sees each code object compiled (the browser's debugger instruments cells from it)."""

    listener: Callable[[Any], None] | None = None
    #: Cell file -> the code objects compiled for it (nested ones too), kept (weakly) when the debugger backend
    #: needs to find a cell's code to instrument it (the browser's: services/debugger/tracer.py).
    codes: dict[str, weakref.WeakValueDictionary[int, CodeType]] | None = None

    def get_code_name(self, raw_code: str, transformed_code: str, number: int) -> str:
        return cell_file_name(raw_code)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        code = super().__call__(*args, **kwargs)
        codes = self.codes
        if codes is not None and isinstance(code, CodeType):
            pending = [code]
            while pending:
                current = pending.pop()
                codes.setdefault(current.co_filename, weakref.WeakValueDictionary())[id(current)] = current
                pending.extend(c for c in current.co_consts if isinstance(c, CodeType))
        listener = self.listener
        if listener is not None:
            listener(code)
        return code

    def codes_of(self, path: str) -> list[CodeType]:
        return list((self.codes or {}).get(path, {}).values())


class DebugBackend(Protocol):
    """What the platform supplies: a DAP server the core forwards to."""

    started: bool

    async def start(self) -> None:
        """Make the DAP server ready (e.g. start debugpy); raise with a clear message when it cannot."""

    async def attach(self, request: dict[str, Any]) -> dict[str, Any]:
        """Attach (including the DAP configuration handshake) and return the attach response."""

    async def forward(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one DAP request and return its response."""

    async def stop(self) -> None:
        """Detach after `disconnect`; a later `initialize` starts over."""

    def interrupt_execution(self, execution: Any) -> bool:
        """The kernel interrupts a running cell (an `_execution.Execution`): if it is stopped, resume it so that
        the interrupt ends it (KeyboardInterrupt where it stopped). True when it was stopped."""


# Names the variables panel does not show: IPython's bookkeeping and the module dunders of the user namespace.
_HIDDEN = frozenset(
    {"__name__", "__doc__", "__package__", "__loader__", "__spec__", "__annotations__", "__builtins__",
     "__builtin__", "__display__", "get_ipython", "exit", "quit", "In", "Out", "_oh", "_dh", "_ih", "_", "__",
     "___", "debugpy"}
)
_HIDDEN_PATTERN = re.compile(r"^_i{1,3}\d*$|^_\d+$|^_ii?$")


def shown_variable(name: str) -> bool:
    return name not in _HIDDEN and not _HIDDEN_PATTERN.match(name)


#: Most items of a container listed, most characters of a value's repr shown (as debugpy's defaults).
MAX_ITEMS = 1000
MAX_REPR = 1000


def safe_repr(value: Any, limit: int | None = MAX_REPR) -> str:
    """The value's repr, cut at LIMIT characters; a repr that raises is described, not raised."""
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<repr failed: {type(exc).__name__}: {exc}>"
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    return text


class VariableExplorer:
    """Variables of the user namespace for the panel when no thread is stopped (DAP `variables` shape).

    References are handed out per inspection; children of dicts, sequences and objects with a `__dict__` can be
    expanded."""

    def __init__(self) -> None:
        self._refs: dict[int, Any] = {}
        self._ids = count(1)

    def reset(self) -> None:
        self._refs.clear()

    def root(self, namespace: dict[str, Any]) -> list[dict[str, Any]]:
        return [self._describe(name, value, name) for name, value in list(namespace.items()) if shown_variable(name)]

    def children(self, reference: int) -> list[dict[str, Any]] | None:
        if reference not in self._refs:
            return None
        parent, path = self._refs[reference]
        items: list[tuple[str, Any, str]] = []
        if isinstance(parent, dict):
            items = [(repr(k), v, f"{path}[{k!r}]") for k, v in list(parent.items())[:MAX_ITEMS]]
        elif isinstance(parent, (list, tuple)):
            items = [(str(i), v, f"{path}[{i}]") for i, v in enumerate(parent[:MAX_ITEMS])]
        else:
            attrs = getattr(parent, "__dict__", None)
            if isinstance(attrs, dict):
                items = [(k, v, f"{path}.{k}") for k, v in list(attrs.items())]
        return [self._describe(name, value, expr) for name, value, expr in items]

    def _describe(self, name: str, value: Any, expression: str) -> dict[str, Any]:
        expandable = isinstance(value, (dict, list, tuple)) and len(value) > 0
        if not expandable and not isinstance(value, type) and not callable(value):
            expandable = bool(getattr(value, "__dict__", None))
        reference = 0
        if expandable:
            reference = next(self._ids)
            self._refs[reference] = (value, expression)
        return {
            "name": name, "value": safe_repr(value), "type": type(value).__name__, "evaluateName": expression,
            "variablesReference": reference,
        }


class MonitoringBackendFactory:
    """The browser's backend (monitoring.py), imported at the panel's first `initialize`, not at the kernel's start
    (measured: 58 ms of imports in Pyodide). What the core needs to know of it beforehand is here."""

    #: The shell's compiler keeps each cell's code objects (CellFileCompiler.codes) from the kernel's start.
    needs_cell_codes = True
    #: A host that keeps the session across page reloads can hand it back (Debugger.restore_state).
    restores_sessions = True

    def __call__(self, debugger: Debugger) -> DebugBackend:
        from .monitoring import MonitoringBackend

        return MonitoringBackend(debugger)


def create(kernel: Kernel) -> Debugger | None:
    """The debugger for this platform, or None where there is none (debugpy missing on CPython; no
    sys.monitoring in Pyodide). In Pyodide the host decides whether to offer it (where the browser can suspend a
    stopped cell's stack: see monitoring.py)."""
    from ..._loops import IS_PYODIDE

    if IS_PYODIDE:
        if not hasattr(sys, "monitoring"):
            log.warning("this Python has no sys.monitoring: the debugger is off")
            return None
        return Debugger(kernel, MonitoringBackendFactory())
    from .debugpy_backend import DebugpyBackend, debugpy_available

    if not debugpy_available():
        log.warning("debugpy is not installed: the debugger is off")
        return None
    return Debugger(kernel, DebugpyBackend)


def _loader_source(path: str) -> str | None:
    """The source of an imported module whose file is not on disk as such (the kernel sources panel lists
    modules imported from a zip: Pyodide's standard library), from the module's loader."""
    for module in list(sys.modules.values()):
        spec = getattr(module, "__spec__", None)
        if getattr(spec, "origin", None) == path and spec is not None and spec.loader is not None:
            get_source = getattr(spec.loader, "get_source", None)
            try:
                return get_source(spec.name) if get_source is not None else None
            except Exception:
                return None
    return None


def _response(request: dict[str, Any], success: bool = True, body: dict[str, Any] | None = None,
              message: str | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "type": "response", "request_seq": request.get("seq", 0), "seq": 0, "success": success,
        "command": request.get("command"), "body": body if body is not None else {},
    }
    if message is not None:
        reply["message"] = message
    return reply


#: Requests after which a host that keeps the session across reloads is told its new state.
_STATE_COMMANDS = frozenset({"attach", "setBreakpoints", "setExceptionBreakpoints", "disconnect"})


class Debugger:
    """Answers `debug_request`s: kernel-side requests here, the rest forwarded to the backend."""

    def __init__(self, kernel: Kernel, backend_factory: Callable[[Debugger], DebugBackend]) -> None:
        self.kernel = kernel
        self._backend_factory = backend_factory
        self.backend: DebugBackend | None = None
        #: A session is attached (between `attach` and `disconnect`): cells run on their own threads.
        self.attached = False
        self.breakpoints: dict[str, list[dict[str, Any]]] = {}
        self.stopped_threads: set[int] = set()
        self.explorer = VariableExplorer()
        self._modules_cache: tuple[tuple[int, Any], EncodedList] | None = None
        #: The exception filters last set (kept with the breakpoints for a reloaded page).
        self.exception_filters: list[str] = []
        self._removed_transforms: list[tuple[int, Any]] = []
        self._event_parent: dict[str, Any] | None = None
        #: Where the session's state is kept for a reloaded page (the browser's host page), if anywhere.
        self._persist: Callable[[dict[str, Any]], None] | None = None
        kernel.on_stop.append(self._kernel_stopping)
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            DapCommand.INITIALIZE: self._initialize,
            DapCommand.ATTACH: self._attach,
            DapCommand.CONFIGURATION_DONE: self._configuration_done,
            DapCommand.DEBUG_INFO: self._debug_info,
            DapCommand.DUMP_CELL: self._dump_cell,
            DapCommand.SET_BREAKPOINTS: self._set_breakpoints,
            DapCommand.SOURCE: self._source,
            DapCommand.VARIABLES: self._variables,
            DapCommand.INSPECT_VARIABLES: self._inspect_variables,
            DapCommand.RICH_INSPECT_VARIABLES: self._rich_inspect_variables,
            DapCommand.COPY_TO_GLOBALS: self._copy_to_globals,
            DapCommand.MODULES: self._modules,
            DapCommand.DISCONNECT: self._disconnect,
        }

    # ------------------------------------------------------------ entry points

    def install(self, shell: Any) -> None:
        """Compile cells under their hash-based names (cheap: one hash per cell), so cells defined before the
        panel is opened can still be stopped in. A host that keeps the session across page reloads (the browser
        kernel's page: the kernel dies with the page) gets the state and may hand back the last one."""
        shell.compile = CellFileCompiler()
        if getattr(self._backend_factory, "needs_cell_codes", False):
            shell.compile.codes = {}
        transport = self.kernel.transport
        persist = getattr(transport, "persist_debugger_state", None)
        if persist is not None and getattr(self._backend_factory, "restores_sessions", False):
            self._persist = persist
            transport.on_debugger_state = self.restore_state
            saved = getattr(transport, "debugger_state", None)
            if saved:
                self.restore_state(saved)

    # ------------------------------------------------------------ a session across page reloads

    def export_state(self) -> dict[str, Any]:
        """What a reloaded page needs to go on: whether a session is attached, its breakpoints (with the sources
        of the cells they are in: the cell files live in the page's memory) and exception filters."""
        sources = {}
        for path in self.breakpoints:
            if is_cell_file(path):
                try:
                    with open(path, encoding="utf-8") as f:
                        sources[path] = f.read()
                except OSError:
                    pass
        return {"version": 1, "started": self.attached, "breakpoints": self.breakpoints, "sources": sources,
                "exceptionFilters": self.exception_filters}

    def restore_state(self, state: Any) -> None:
        """Attach as the state says, before the reloaded page's first request (its `debugInfo` then shows the
        session and its breakpoints, which JupyterLab puts back in the cells)."""
        if not isinstance(state, dict) or not state.get("started") or self.attached:
            return
        try:
            for path, code in (state.get("sources") or {}).items():
                if isinstance(path, str) and isinstance(code, str) and path == cell_file_name(code):
                    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(code)
            breakpoints = {path: [{"line": int(bp["line"])} for bp in bps if isinstance(bp, dict)]
                           for path, bps in (state.get("breakpoints") or {}).items() if isinstance(path, str)}
            filters = [f for f in state.get("exceptionFilters") or [] if isinstance(f, str)]
            if self.backend is None:
                self.backend = self._backend_factory(self)
            self.backend.restore(breakpoints, filters)  # type: ignore[attr-defined]
        except Exception:
            log.exception("the debugger session of the reloaded page could not be restored")
            return
        self.attached = True
        self.breakpoints = {path: bps for path, bps in breakpoints.items() if bps}
        self.exception_filters = filters
        self._keep_leading_blank_lines()

    def _kernel_stopping(self) -> None:
        """The kernel shuts down: a backend living in this process lets go of it (stopped cells resume, nothing
        stays instrumented); the state kept for a reload is left as it was."""
        close = getattr(self.backend, "close", None)
        if close is not None and self.attached:
            try:
                close()
            except Exception:
                log.exception("the debugger did not close cleanly")
        self.attached = False

    def _state_changed(self) -> None:
        if self._persist is not None:
            try:
                self._persist(self.export_state())
            except Exception:
                log.exception("the debugger state could not be kept for a reload")

    async def handle(self, request: dict[str, Any], parent: dict[str, Any] | None) -> dict[str, Any]:
        """One `debug_request` content (a DAP request) -> the `debug_reply` content (its DAP response)."""
        command = request.get("command")
        if request.get("type") != "request" or not isinstance(command, str):
            return _response(request, False, message="a debug_request must hold a DAP request with a command")
        self._event_parent = parent
        handler = self._handlers.get(command)
        try:
            if handler is not None:
                reply = await handler(request)
            elif not self.attached or self.backend is None:
                reply = _response(request, False, message=f"{command}: the debugger is not started")
            else:
                reply = await self.backend.forward(request)
            # Answers built from other requests (evaluate, setExpression) still answer the request sent.
            reply["command"] = command
            reply["request_seq"] = request.get("seq", 0)
            if command == "setExceptionBreakpoints" and reply.get("success"):
                filters = (request.get("arguments") or {}).get("filters")
                self.exception_filters = [f for f in filters if isinstance(f, str)] if isinstance(filters, list) \
                    else []
            if command in _STATE_COMMANDS:
                self._state_changed()
            return reply
        except Exception as exc:
            log.exception("debug request %s failed", command)
            return _response(request, False, message=f"{command} failed: {type(exc).__name__}: {exc}")

    def on_event(self, event: dict[str, Any]) -> None:
        """From the backend (any thread): keep the stopped threads and publish the event on iopub."""
        name = event.get("event")
        body = event.get("body") or {}
        if name == DapEvent.STOPPED and isinstance(body.get("threadId"), int):
            self.stopped_threads.add(body["threadId"])
        elif name == DapEvent.CONTINUED:
            if body.get("allThreadsContinued"):
                self.stopped_threads.clear()
            else:
                self.stopped_threads.discard(body.get("threadId"))  # type: ignore[arg-type]
        elif name == DapEvent.THREAD and body.get("reason") == "exited":
            self.stopped_threads.discard(body.get("threadId"))  # type: ignore[arg-type]
        from ..._protocol import MsgType

        self.kernel.publish(MsgType.DEBUG_EVENT, event, parent=self._event_parent)

    def interrupt_execution(self, execution: Any) -> bool:
        """Called by the kernel's interrupt for every running cell: end it if it is stopped. True when the
        debugger took care of it (a stopped cell resumes with KeyboardInterrupt raised where it stopped)."""
        if not self.attached or self.backend is None:
            return False
        return self.backend.interrupt_execution(execution)

    # ------------------------------------------------------------ requests

    async def _initialize(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.backend is None:
            self.backend = self._backend_factory(self)
        if not self.backend.started:
            await self.backend.start()
        return await self.backend.forward(request)

    async def _attach(self, request: dict[str, Any]) -> dict[str, Any]:
        if self.backend is None or not self.backend.started:
            return _response(request, False, message="attach: send initialize first")
        reply = await self.backend.attach(request)
        if reply.get("success"):
            self.attached = True
            self._keep_leading_blank_lines()
        return reply

    async def _configuration_done(self, request: dict[str, Any]) -> dict[str, Any]:
        # The backend completed the configuration handshake during attach.
        return _response(request, self.attached, message=None if self.attached else "not attached")

    async def _debug_info(self, request: dict[str, Any]) -> dict[str, Any]:
        return _response(request, body={
            "isStarted": self.attached,
            "hashMethod": HASH_METHOD,
            "hashSeed": HASH_SEED,
            "tmpFilePrefix": cell_file_prefix(),
            "tmpFileSuffix": CELL_FILE_SUFFIX,
            "breakpoints": [{"source": path, "breakpoints": bps} for path, bps in self.breakpoints.items()],
            "stoppedThreads": sorted(self.stopped_threads),
            "richRendering": True,
            "exceptionPaths": ["Python Exceptions"],
            "copyToGlobals": True,
        })

    async def _dump_cell(self, request: dict[str, Any]) -> dict[str, Any]:
        code = (request.get("arguments") or {}).get("code")
        if not isinstance(code, str):
            return _response(request, False, message="dumpCell needs arguments.code (a string)")
        path = cell_file_name(code)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(code)
        return _response(request, body={"sourcePath": path})

    async def _set_breakpoints(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = request.get("arguments") or {}
        path = (arguments.get("source") or {}).get("path")
        if not isinstance(path, str):
            return _response(request, False, message="setBreakpoints needs arguments.source.path")
        if not self.attached or self.backend is None:
            return _response(request, False, message="setBreakpoints: the debugger is not started")
        reply = await self.backend.forward(request)
        if reply.get("success"):
            # debugpy may move a breakpoint to the next line with code: remember where it really is.
            placed = [{"line": bp["line"]} for bp in (reply.get("body") or {}).get("breakpoints", []) if "line" in bp]
            if placed:
                self.breakpoints[path] = placed
            else:
                self.breakpoints.pop(path, None)
        return reply

    async def _source(self, request: dict[str, Any]) -> dict[str, Any]:
        path = ((request.get("arguments") or {}).get("source") or {}).get("path")
        if not isinstance(path, str):
            return _response(request, False, message="source unavailable")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return _response(request, body={"content": f.read()})
        content = _loader_source(path)
        if content is None:
            return _response(request, False, message="source unavailable")
        return _response(request, body={"content": content})

    async def _variables(self, request: dict[str, Any]) -> dict[str, Any]:
        reference = (request.get("arguments") or {}).get("variablesReference")
        local = self.explorer.children(reference) if isinstance(reference, int) else None
        if local is not None or not self.attached or self.backend is None:
            return _response(request, body={"variables": local or []})
        reply = await self.backend.forward(request)
        body = reply.get("body") or {}
        if isinstance(body.get("variables"), list):
            body["variables"] = [v for v in body["variables"] if shown_variable(str(v.get("name", "")))]
        return reply

    async def _inspect_variables(self, request: dict[str, Any]) -> dict[str, Any]:
        self.explorer.reset()
        return _response(request, body={"variables": self.explorer.root(self.kernel.shell.user_ns)})

    async def _rich_inspect_variables(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = request.get("arguments") or {}
        name = arguments.get("variableName")
        if not isinstance(name, str) or not name.isidentifier():
            return _response(request, name in ("special variables", "function variables"),
                             body={"data": {}, "metadata": {}},
                             message=None if name in ("special variables", "function variables") else
                             "variableName must be an identifier")
        frame_id = arguments.get("frameId")
        data: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        if self.stopped_threads and frame_id is not None and self.backend is not None:
            # In the stopped frame: let the shell's formatter produce the mime bundle there.
            reply = await self.backend.forward({
                "type": "request", "command": DapCommand.EVALUATE, "seq": request.get("seq", 0),
                "arguments": {"expression": f"get_ipython().display_formatter.format({name})",
                              "frameId": frame_id, "context": "clipboard"},
            })
            if reply.get("success"):
                try:
                    data, metadata = ast.literal_eval(reply["body"]["result"])
                except (ValueError, SyntaxError, KeyError, TypeError):
                    data = {"text/plain": str((reply.get("body") or {}).get("result", ""))}
        else:
            shell = self.kernel.shell
            if name in shell.user_ns:
                data, metadata = shell.display_formatter.format(shell.user_ns[name])
            else:
                return _response(request, False, body={"data": {}, "metadata": {}},
                                 message=f"no variable named {name!r}")
        metadata = {k: v for k, v in metadata.items() if k in data}
        return _response(request, body={"data": data, "metadata": metadata})

    async def _copy_to_globals(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = request.get("arguments") or {}
        dst = arguments.get("dstVariableName")
        src = arguments.get("srcVariableName")
        if not (isinstance(dst, str) and dst.isidentifier() and isinstance(src, str) and src.isidentifier()):
            return _response(request, False, message="dstVariableName and srcVariableName must be identifiers")
        if self.backend is None or not self.attached:
            return _response(request, False, message="copyToGlobals: the debugger is not started")
        # The stopped frame's globals are the user namespace for cell code; setExpression assigns there.
        return await self.backend.forward({
            "type": "request", "command": DapCommand.SET_EXPRESSION, "seq": request.get("seq", 0),
            "arguments": {"expression": f"globals()[{dst!r}]", "value": src, "frameId": arguments.get("srcFrameId")},
        })

    async def _modules(self, request: dict[str, Any]) -> dict[str, Any]:
        arguments = request.get("arguments") or {}
        listed = self._module_list()
        start = int(arguments.get("startModule") or 0)
        count = int(arguments.get("moduleCount") or len(sys.modules))
        found: Sequence[dict[str, Any]] = listed
        if start > 0 or start + count < len(sys.modules):
            found = [entry for entry in listed if start <= entry["id"] < start + count]
        return _response(request, body={"modules": found, "totalModules": len(sys.modules)})

    def _module_list(self) -> EncodedList:
        """The imported modules with a source file, kept (and their JSON written once) until sys.modules changes:
        JupyterLab's panel asks for them after every cell's execute_reply, even with no session started."""
        signature = (len(sys.modules), next(reversed(sys.modules), None))
        if self._modules_cache is None or self._modules_cache[0] != signature:
            listed = []
            for index, module in enumerate(list(sys.modules.values())):
                origin = getattr(getattr(module, "__spec__", None), "origin", None)
                if isinstance(origin, str) and origin.endswith(".py"):
                    listed.append({"id": index, "name": module.__name__, "path": origin})
            self._modules_cache = (signature, EncodedList(listed))
        return self._modules_cache[1]

    async def _disconnect(self, request: dict[str, Any]) -> dict[str, Any]:
        reply = _response(request)
        if self.backend is not None and self.attached:
            reply = await self.backend.forward(request)
        self.attached = False
        self.breakpoints.clear()
        self.exception_filters = []
        self.stopped_threads.clear()
        self._restore_leading_blank_lines()
        if self.backend is not None:
            await self.backend.stop()
        return reply

    # ------------------------------------------------------------ line numbers

    def _keep_leading_blank_lines(self) -> None:
        """IPython drops a cell's leading blank lines before compiling; while debugging, the compiled lines must
        match the dumped source's, so that transform is off."""
        from IPython.core.inputtransformer2 import leading_empty_lines

        transforms = self.kernel.shell.input_transformer_manager.cleanup_transforms
        while leading_empty_lines in transforms:
            index = transforms.index(leading_empty_lines)
            self._removed_transforms.append((index, transforms.pop(index)))

    def _restore_leading_blank_lines(self) -> None:
        transforms = self.kernel.shell.input_transformer_manager.cleanup_transforms
        while self._removed_transforms:
            index, transform = self._removed_transforms.pop()
            transforms.insert(index, transform)
