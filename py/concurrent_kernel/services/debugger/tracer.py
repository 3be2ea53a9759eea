"""Breakpoints, steps and pauses on `sys.monitoring` *local* events (Python 3.12+; Pyodide is 3.14).

Why sys.monitoring and not bdb: `sys.settrace` traces one thread state, and Pyodide runs every callback of its
event loop on a thread state of its own (its stack switching gives each entry into Python one), so a trace
function set once would miss the cells; monitoring is per interpreter.

Why local events only: changing a tool's *global* events (`set_events`, `restart_events`, freeing the tool)
makes CPython walk the frames of every thread state, and in Pyodide the thread state of a suspended stack (a
stopped cell, a `time.sleep`) links frames that live on the part of the C stack Pyodide moves aside while it is
suspended: measured here, such a walk while a cell was stopped ended in "memory access out of bounds". So only
code objects are instrumented, one by one:

- a code object gets LINE events when a breakpoint falls in its lines (code objects are known from cells as
  IPython compiles them, kept by the shell's compiler from the kernel's start; from files as they are imported;
  and from the functions and classes of modules imported before);
- a step arms the frame it starts in and the user frames above it (LINE, and PY_RETURN to stop in the caller on
  return); a step in also watches the frame's calls (CALL) and arms the callee's code;
- a pause arms the user frames of the task's awaiting coroutines (and the next cells compiled);
- nothing else: attached with no breakpoint, no code object is instrumented and a cell runs as without a
  debugger. No callback ever answers DISABLE (re-enabling would need `restart_events`, a global walk).

The one global event, RAISE (the "raised" exception filter), is switched on once, at the first attach of the
process, when nothing of this debugger can be suspended yet; only its callback is added and removed after.
The "uncaught" filter needs no event: it stops where IPython reports the cell's exception (post mortem).

What is the user's code (where steps stop and stack traces show frames): the cells and any file outside the
standard library, site-packages and this package (debugpy's justMyCode). Breakpoints hit wherever they are set.
"""

from __future__ import annotations

import gc
import os
import sys
import sysconfig
import types
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

from .threads import DapThread, Step, Threads

#: What a stopped thread is resumed with.
CONTINUE, NEXT, STEP_IN, STEP_OUT, INTERRUPT = "continue", "next", "stepIn", "stepOut", "interrupt"
STEPS = {NEXT: "over", STEP_IN: "in", STEP_OUT: "out"}

#: The exception filters offered to the front end (the ones debugpy offers JupyterLab, by the same names).
EXCEPTION_FILTERS = [
    {"filter": "raised", "label": "Raised Exceptions", "default": False,
     "description": "Stop where an exception is raised in your code, even if it is caught."},
    {"filter": "uncaught", "label": "Uncaught Exceptions", "default": False,
     "description": "Stop where an exception ends a cell (the frames it passed through stay inspectable)."},
]

_BP = "breakpoints"
_PAUSE = "pause"


@dataclass(eq=False)
class Breakpoint:
    line: int
    condition: str | None = None
    hit_condition: str | None = None
    log_message: str | None = None


def _norm(path: str) -> str:
    """Normalised, with one leading slash (Pyodide's sysconfig says //lib/..., which normpath keeps)."""
    path = os.path.normpath(path)
    return "/" + path.lstrip("/") if path.startswith("//") else path


class UserCode:
    """Which files are the user's (cached per file name)."""

    def __init__(self, cell_prefix: str) -> None:
        self._cell_prefix = cell_prefix
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # concurrent_kernel/
        roots = {here}
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            path = sysconfig.get_paths().get(key)
            if path:
                roots.add(path)
        roots.update(p for p in sys.path if p.endswith(".zip"))
        self._library = tuple(sorted({_norm(r) + os.sep for r in roots if r and _norm(r) != os.sep}))
        self._cache: dict[str, bool] = {}

    def file(self, filename: str) -> bool:
        known = self._cache.get(filename)
        if known is None:
            if filename.startswith(self._cell_prefix):
                known = True
            elif filename.startswith("<") or not filename:
                known = False
            else:
                known = not _norm(filename).startswith(self._library)
            self._cache[filename] = known
        return known

    def frame(self, frame: FrameType) -> bool:
        return self.file(frame.f_code.co_filename)


def nested_codes(code: CodeType) -> Iterable[CodeType]:
    """A code object and every code object defined in it (functions, classes, comprehensions)."""
    stack = [code]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(c for c in current.co_consts if isinstance(c, CodeType))


def module_codes(path: str) -> list[CodeType]:
    """The code objects an imported module of file `path` defines: its functions, its classes' methods and
    properties (and what is nested in them)."""
    wanted = _norm(path)
    codes: list[CodeType] = []
    for module in list(sys.modules.values()):
        filename = getattr(module, "__file__", None)
        if not isinstance(filename, str) or _norm(filename) != wanted:
            continue
        pending: list[Any] = list(vars(module).values())
        seen_classes: set[int] = set()
        while pending:
            value = pending.pop()
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                pending.extend(f for f in (value.fget, value.fset, value.fdel) if f is not None)
            elif isinstance(value, types.FunctionType):
                codes.extend(nested_codes(value.__code__))
            elif isinstance(value, type) and id(value) not in seen_classes:
                seen_classes.add(id(value))
                pending.extend(vars(value).values())
    return codes


def code_of(target: Any) -> CodeType | None:
    """The Python code a call of `target` runs first (a function, a method, a class's __init__, a partial...)."""
    for _ in range(4):
        if isinstance(target, types.FunctionType):
            return target.__code__
        if isinstance(target, types.MethodType):
            target = target.__func__
        elif isinstance(target, type):
            init = target.__dict__.get("__init__") or getattr(target, "__init__", None)
            target = init if isinstance(init, types.FunctionType) else target.__dict__.get("__new__")
        elif hasattr(target, "func") and callable(getattr(target, "func", None)):  # functools.partial
            target = target.func
        else:
            call = next((k.__dict__["__call__"] for k in type(target).__mro__ if "__call__" in k.__dict__), None)
            if not isinstance(call, types.FunctionType):
                return None
            target = call
    return None


class Tracer:
    """The monitoring tool. `stop(thread, frame, reason, exception, text, frames)` is called where a thread must
    stop; it returns how the thread resumes (CONTINUE, a step, or INTERRUPT)."""

    def __init__(self, threads: Threads, user: UserCode, stop: Callable[..., str],
                 internal: Callable[[], bool], log_message: Callable[[str], None],
                 execution: Callable[[], Any], running: Callable[[Any], bool],
                 cell_codes: Callable[[str], Iterable[CodeType]] = lambda path: ()) -> None:
        self._cell_codes = cell_codes
        self._execution = execution
        self._running = running
        self._threads = threads
        self._user = user
        self._stop = stop
        self._internal = internal
        self._log_message = log_message
        self.tool: int | None = None
        self.attached = False
        #: path -> line -> Breakpoint
        self.breakpoints: dict[str, dict[int, Breakpoint]] = {}
        self.filters: set[str] = set()
        # Code objects are keyed by identity: equal code (the same cell run twice) is still another object.
        #: The user's code objects by file, as far as known (cells compiled, files imported, live functions).
        self._codes: dict[str, weakref.WeakValueDictionary[int, CodeType]] = {}
        #: id -> (code, why it is instrumented: reason -> event mask); what is set is the union.
        self._reasons: dict[int, tuple[CodeType, dict[str, int]]] = {}
        self._set: dict[int, tuple[CodeType, int]] = {}
        #: Whether any thread steps or has a pause pending (then lines without a breakpoint matter too).
        self._active = False

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Attach: take the tool (once per process, module docstring) and listen."""
        global _owner
        monitoring = sys.monitoring
        if _owner is not None and _owner() not in (None, self) and _owner().attached:  # type: ignore[union-attr]
            raise RuntimeError("another kernel in this process has a debugger session attached")
        _owner = weakref.ref(self)
        self.tool = _reserve_tool()
        events = monitoring.events
        for event, callback in ((events.LINE, self._on_line), (events.PY_RETURN, self._on_return),
                                (events.CALL, self._on_call)):
            monitoring.register_callback(self.tool, event, callback)
        self.attached = True

    def stop(self) -> None:
        """Detach: every code object uninstrumented, callbacks removed; the tool stays reserved (module docstring)."""
        self.attached = False
        self.breakpoints.clear()
        self.filters.clear()
        self._threads.forget_stepping()
        self._active = False
        if self.tool is None:
            return
        monitoring = sys.monitoring
        for code, mask in list(self._set.values()):
            if mask:
                monitoring.set_local_events(self.tool, code, 0)
        self._set.clear()
        self._reasons.clear()
        self._codes.clear()
        for event in (monitoring.events.LINE, monitoring.events.PY_RETURN, monitoring.events.CALL,
                      monitoring.events.RAISE):
            monitoring.register_callback(self.tool, event, None)

    # ------------------------------------------------------------ the user's code objects

    def add_code(self, code: CodeType) -> None:
        """A code object was compiled (a cell) or loaded (an imported file): known from now on, and armed at once
        when a breakpoint falls in it or a pause waits for the next code to run."""
        if not self.attached:
            return
        for nested in nested_codes(code):
            filename = nested.co_filename
            if not self._user.file(filename) and filename not in self.breakpoints:
                continue
            self._remember(nested)
            if filename in self.breakpoints:
                self._update(nested, _BP, sys.monitoring.events.LINE if self._has_breakpoint(nested) else 0)
            if self._user.file(filename) and any(t.pause for t in self._threads.all()):
                self._update(nested, _PAUSE, sys.monitoring.events.LINE)
            if self._user.file(filename):
                for thread in self._threads.all():
                    step = thread.step
                    if step is not None and step.frame is None:
                        if self._running(step.execution):
                            self._update(nested, f"step{thread.id}", sys.monitoring.events.LINE)
                        else:
                            self._end_step(thread)

    def _remember(self, code: CodeType) -> None:
        self._codes.setdefault(code.co_filename, weakref.WeakValueDictionary())[id(code)] = code

    def _codes_of(self, path: str) -> list[CodeType]:
        """The code objects of `path` there are: seen while attached, compiled from a cell (the shell's compiler
        keeps them by file, from before the session too), or defined by an imported module of that file. The
        cyclic GC's list is the last resort only: start-up freezes most objects out of it (services/shell.py)."""
        found = {id(c): c for c in self._codes.get(path, {}).values()}
        found.update((id(c), c) for c in self._cell_codes(path))
        if not found:
            found.update((id(c), c) for c in module_codes(path))
        if not found:
            for obj in gc.get_objects():
                code = _live_code(obj)
                if code is not None and code.co_filename == path:
                    found.update((id(c), c) for c in nested_codes(code))
        codes = [c for c in found.values() if c.co_filename == path]
        for code in codes:
            self._remember(code)
        return codes

    # ------------------------------------------------------------ configuration

    def set_breakpoints(self, path: str, breakpoints: list[Breakpoint]) -> None:
        if breakpoints:
            self.breakpoints[path] = {bp.line: bp for bp in breakpoints}
        else:
            self.breakpoints.pop(path, None)
        known = self._codes_of(path) if path in self.breakpoints else list(self._codes.get(path, {}).values())
        for thread in self._threads.all():  # frames stopped in this file are running code objects too
            frame = thread.stop.frame if thread.stop is not None else None
            while frame is not None:
                if frame.f_code.co_filename == path:
                    known.append(frame.f_code)
                frame = frame.f_back
        for code in known:
            self._update(code, _BP, sys.monitoring.events.LINE if self._has_breakpoint(code) else 0)

    def set_exception_filters(self, filters: list[str]) -> list[str]:
        known = {f["filter"] for f in EXCEPTION_FILTERS}
        self.filters = {f for f in filters if f in known}
        if self.tool is not None:
            callback = self._on_raise if "raised" in self.filters else None
            sys.monitoring.register_callback(self.tool, sys.monitoring.events.RAISE, callback)
        return sorted(self.filters)

    def pause(self, thread: DapThread) -> None:
        """Stop `thread` at the next line of the user's code it runs. What it runs next is either a coroutine or
        generator of the user's that is suspended now (a cell awaiting: found among the live objects, whichever
        task they belong to; the callback tells the tasks apart) or code compiled from now on (add_code)."""
        thread.pause = True
        self._active = True
        for obj in gc.get_objects():
            code = _live_code(obj) if not isinstance(obj, types.FunctionType) else None
            if code is not None and self._user.file(code.co_filename) and _suspended_frame(obj) is not None:
                self._update(code, _PAUSE, sys.monitoring.events.LINE)

    def pause_here(self, thread: DapThread, frame: FrameType) -> None:
        """Stop `thread` now, in `frame` (the page's pause signal reached busy code: monitoring.py)."""
        self._stopped(thread, frame, "pause")

    def instrumented(self) -> int:
        """How many code objects have events on (0 while attached with no breakpoint, no step, no pause)."""
        return sum(1 for _, mask in self._set.values() if mask)

    # ------------------------------------------------------------ local events bookkeeping

    def _has_breakpoint(self, code: CodeType) -> bool:
        lines = self.breakpoints.get(code.co_filename)
        return bool(lines) and any(line in lines for _, _, line in code.co_lines())

    def _update(self, code: CodeType, reason: str, mask: int) -> None:
        key = id(code)
        reasons = self._reasons.setdefault(key, (code, {}))[1]
        if mask:
            reasons[reason] = mask
        else:
            reasons.pop(reason, None)
        wanted = 0
        for value in reasons.values():
            wanted |= value
        if not reasons:
            del self._reasons[key]
        current = self._set.get(key)
        if (current[1] if current is not None else 0) != wanted and self.tool is not None:
            sys.monitoring.set_local_events(self.tool, code, wanted)
            if wanted:
                self._set[key] = (code, wanted)
            else:
                self._set.pop(key, None)

    def _drop_reason(self, reason: str) -> None:
        for code, _ in [entry for entry in self._reasons.values() if reason in entry[1]]:
            self._update(code, reason, 0)

    def _refresh_active(self) -> None:
        self._active = self._threads.stepping()
        if not any(t.pause for t in self._threads.all()):
            self._drop_reason(_PAUSE)

    # ------------------------------------------------------------ callbacks

    def _on_line(self, code: CodeType, line: int) -> Any:
        lines = self.breakpoints.get(code.co_filename)
        bp = lines.get(line) if lines else None
        if (bp is None and not self._active) or self._internal():
            return None
        frame = sys._getframe(1)
        thread = self._threads.current()
        if bp is not None and self._breakpoint_applies(bp, thread, code.co_filename, frame):
            self._stopped(thread, frame, "breakpoint")
            return None
        step = thread.step
        if thread.pause and self._user.frame(frame):
            self._stopped(thread, frame, "pause")
        elif step is not None and step.frame is None:
            if self._execution() is not step.execution:
                self._end_step(thread)  # that cell has ended: this is another one
            elif self._user.frame(frame):
                self._stopped(thread, frame, "step")
        elif step is not None and (
            (frame is step.frame and step.kind != "out")
            or any(frame is f for f in step.ancestors)
            or (step.kind == "in" and self._user.frame(frame))
        ):
            self._stopped(thread, frame, "step")
        return None

    def _on_return(self, code: CodeType, offset: int, value: Any) -> Any:
        if not self._active or self._internal():
            return None
        frame = sys._getframe(1)
        thread = next((t for t in self._threads.all() if t.step is not None and t.step.frame is frame), None)
        if thread is None or thread.step is None:
            return None
        caller = frame.f_back
        step = thread.step
        if caller is not None and self._user.frame(caller):
            self._stopped(thread, caller, "step")  # at the return, shown in the caller (as debugpy stops)
        elif not step.ancestors:
            # Out of the user's code, into the kernel's: the next line of this cell stops (if it has more code,
            # it is compiled next: add_code arms it); else the cell ends and the step with it.
            self._drop_reason(f"step{thread.id}")
            if step.execution is not None and self._running(step.execution):
                thread.step = Step(step.kind, None, [], step.execution)
            else:
                self._end_step(thread)
        return None

    def _on_call(self, code: CodeType, offset: int, target: Any, arg0: Any) -> Any:
        if not self._active or self._internal():
            return None
        frame = sys._getframe(1)
        thread = next((t for t in self._threads.all() if t.step is not None and t.step.frame is frame), None)
        if thread is None or thread.step is None or thread.step.kind != "in":
            return None
        callee = code_of(target)
        if callee is not None and self._user.file(callee.co_filename):
            self._update(callee, f"step{thread.id}", sys.monitoring.events.LINE)
        return None

    def _on_raise(self, code: CodeType, offset: int, exc: BaseException) -> Any:
        if "raised" not in self.filters or not isinstance(exc, Exception) or self._internal():
            return None
        frame = sys._getframe(1)
        if not self._user.frame(frame):
            return None
        thread = self._threads.current()
        if thread.reported is not exc:  # once per exception, not again in each frame it passes through
            thread.reported = exc
            self._stopped(thread, frame, "exception", exc)
        return None

    def uncaught(self, exc: BaseException, frames: list[FrameType]) -> None:
        """IPython is about to report the exception that ended a cell (`frames`: the user's frames it passed
        through, innermost first): stop there, post mortem, when the "uncaught" filter is on."""
        thread = self._threads.current()
        if thread.step is not None:
            self._end_step(thread)
        if "uncaught" not in self.filters or not frames or thread.reported is exc or self._internal():
            return
        thread.reported = exc
        action = self._stop(thread, frames[0], "exception", exc, f"{type(exc).__name__}: {exc}", frames)
        if action == INTERRUPT:
            raise KeyboardInterrupt

    # ------------------------------------------------------------ stops and steps

    def _breakpoint_applies(self, bp: Breakpoint, thread: DapThread, path: str, frame: FrameType) -> bool:
        if bp.condition:
            try:
                if not eval(bp.condition, frame.f_globals, frame.f_locals):
                    return False
            except Exception:
                return True  # a broken condition stops, as debugpy does, so the user sees it
        if bp.hit_condition:
            key = (path, bp.line)
            count = thread.hits[key] = thread.hits.get(key, 0) + 1
            if not _hit_matches(bp.hit_condition, count):
                return False
        if bp.log_message is not None:
            self._log_message(_interpolate(bp.log_message, frame))
            return False
        return True

    def _end_step(self, thread: DapThread) -> None:
        thread.step = None
        self._drop_reason(f"step{thread.id}")
        self._refresh_active()

    def _stopped(self, thread: DapThread, frame: FrameType, reason: str, exc: BaseException | None = None) -> None:
        self._end_step(thread)
        if thread.pause:
            thread.pause = False
            self._refresh_active()
        text = f"{type(exc).__name__}: {exc}" if exc is not None else None
        action = self._stop(thread, frame, reason, exc, text, None)
        if reason != "exception":
            thread.reported = None
        if action == INTERRUPT:
            raise KeyboardInterrupt
        kind = STEPS.get(action)
        if kind is not None and self.attached:
            self._begin_step(thread, kind, frame)

    def _begin_step(self, thread: DapThread, kind: str, frame: FrameType) -> None:
        ancestors = []
        caller = frame.f_back
        while caller is not None:
            if self._user.frame(caller):
                ancestors.append(caller)
            caller = caller.f_back
        thread.step = Step(kind, frame, ancestors, self._execution())
        events = sys.monitoring.events
        reason = f"step{thread.id}"
        mask = events.LINE | events.PY_RETURN | (events.CALL if kind == "in" else 0)
        self._update(frame.f_code, reason, mask)
        for ancestor in ancestors:
            self._update(ancestor.f_code, reason, events.LINE)
        self._active = True


_tool: int | None = None
_owner: weakref.ReferenceType[Tracer] | None = None


def _reserve_tool() -> int:
    """The process's tool id, taken at the first attach and kept (freeing it is a global change)."""
    global _tool
    monitoring = sys.monitoring
    if _tool is None:
        for tool in (monitoring.DEBUGGER_ID, 3, 4, monitoring.OPTIMIZER_ID):
            if monitoring.get_tool(tool) is None:
                monitoring.use_tool_id(tool, "concurrent-kernel debugger")
                break
        else:
            raise RuntimeError("sys.monitoring has no free tool id (another debugger or profiler holds them)")
        # The only global event, set once while nothing of this debugger can be suspended (module docstring).
        monitoring.set_events(tool, monitoring.events.RAISE)
        _tool = tool
    return _tool


def _live_code(obj: Any) -> CodeType | None:
    """The code of a function, coroutine or generator (what gc.get_objects() holds of running user code)."""
    if isinstance(obj, types.FunctionType):
        return obj.__code__
    if isinstance(obj, types.CoroutineType):
        return obj.cr_code
    if isinstance(obj, types.GeneratorType):
        return obj.gi_code
    if isinstance(obj, types.AsyncGeneratorType):
        return obj.ag_code
    return None


def _suspended_frame(obj: Any) -> FrameType | None:
    """The frame of a coroutine or generator that has started and not finished, and is not running now."""
    for frame_attr, running_attr in (("cr_frame", "cr_running"), ("gi_frame", "gi_running"),
                                     ("ag_frame", "ag_running")):
        frame = getattr(obj, frame_attr, None)
        if frame is not None:
            return None if getattr(obj, running_attr, False) or frame.f_lasti < 0 else frame
    return None


def _hit_matches(condition: str, count: int) -> bool:
    text = condition.strip()
    for op in (">=", "<=", "==", ">", "<", "%"):
        if text.startswith(op):
            try:
                n = int(text[len(op):].strip())
            except ValueError:
                return True
            return {">=": count >= n, "<=": count <= n, "==": count == n, ">": count > n, "<": count < n,
                    "%": n > 0 and count % n == 0}[op]
    try:
        return count == int(text)
    except ValueError:
        return True


def _interpolate(message: str, frame: FrameType) -> str:
    """A logpoint's message with each {expression} evaluated in the frame."""
    out, i = [], 0
    while i < len(message):
        start = message.find("{", i)
        end = message.find("}", start + 1) if start >= 0 else -1
        if start < 0 or end < 0:
            out.append(message[i:])
            break
        out.append(message[i:start])
        try:
            out.append(str(eval(message[start + 1 : end], frame.f_globals, frame.f_locals)))
        except Exception as exc:
            out.append(f"<{type(exc).__name__}: {exc}>")
        i = end + 1
    return "".join(out) + "\n"
