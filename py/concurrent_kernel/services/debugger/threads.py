"""The panel's threads where there are no OS threads (Pyodide): each asyncio task that runs user code is one.

The main shell's queue cells all run in one task (their lane's), which is thread 1, as the main thread is where
ipykernel runs cells: a front end that asks for thread 1 (ipykernel's own tests do) gets the queue cell. A `# task`
cell, a subshell's queue, a background task and the comm handlers each get a thread of their own, numbered from 2
in the order they first run user code while a session is attached. Code run outside any task (a plain loop
callback) shares one more thread.
"""

from __future__ import annotations

import asyncio
import itertools
import weakref
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from ..._context import current_execution
from ..._protocol import HEADER_SUBSHELL_ID, RunMode

MAIN_THREAD_ID = 1


@dataclass(eq=False)
class Stop:
    """A thread suspended at a stop: where, why, and the future its resumption waits on."""

    frame: FrameType
    reason: str
    waiter: asyncio.Future[str]
    exception: BaseException | None = None
    description: str | None = None
    #: The cell the thread was running (interrupt ends that cell's stop).
    execution: Any = None
    #: The frames to show, innermost first, when they are not `frame` and its callers (a post-mortem stop).
    frames: list[FrameType] | None = None


@dataclass(eq=False)
class Step:
    """A step in progress: `kind` is in / over / out, from `frame`; `ancestors` are the user's frames above it
    (a line run in one of them means the frame has returned or unwound). `frame` is None once the step has left
    the cell's code for the kernel's: it then stops at the next line the same cell runs (IPython runs a cell's
    last expression as a code object of its own), and ends with the cell."""

    kind: str
    frame: FrameType | None
    ancestors: list[FrameType] = field(default_factory=list)
    execution: Any = None


@dataclass(eq=False)
class DapThread:
    id: int
    name: str
    stop: Stop | None = None
    step: Step | None = None
    #: A pause was asked for: stop at the next line of user code this thread runs.
    pause: bool = False
    #: The exception last stopped on, so one raise stops once and not again in every frame it passes.
    reported: BaseException | None = None
    #: Breakpoint hit counts (hitCondition), per (path, line).
    hits: dict[tuple[str, int], int] = field(default_factory=dict)


class Threads:
    """Task -> DapThread, named from what the task runs (a cell and its run mode, a background task, comms)."""

    def __init__(self, background_names: Any = None) -> None:
        self._by_task: weakref.WeakKeyDictionary[asyncio.Task[Any], DapThread] = weakref.WeakKeyDictionary()
        self._by_id: dict[int, DapThread] = {}
        self._ids = itertools.count(MAIN_THREAD_ID + 1)
        self._background_names = background_names
        self._loose: DapThread | None = None
        self.main = self._add(MAIN_THREAD_ID, "MainThread (queue)")

    def _add(self, thread_id: int, name: str) -> DapThread:
        thread = self._by_id[thread_id] = DapThread(thread_id, name)
        return thread

    def get(self, thread_id: Any) -> DapThread | None:
        return self._by_id.get(thread_id) if isinstance(thread_id, int) else None

    def all(self) -> list[DapThread]:
        return sorted(self._by_id.values(), key=lambda t: t.id)

    def current(self) -> DapThread:
        """The thread of the code running now (called from a monitoring callback)."""
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        if task is None:
            if self._loose is None:
                self._loose = self._add(next(self._ids), "loop callbacks")
            return self._loose
        thread = self._by_task.get(task)
        execution = current_execution.get()
        if thread is None:
            main_queue = execution is not None and execution.run_mode is RunMode.QUEUE and \
                not (execution.request.get("header") or {}).get(HEADER_SUBSHELL_ID)
            thread = self.main if main_queue else self._add(next(self._ids), "")
            self._by_task[task] = thread
        thread.name = self._name(task, execution, thread)
        return thread

    def _name(self, task: asyncio.Task[Any], execution: Any, thread: DapThread) -> str:
        if execution is not None:
            subshell = (execution.request.get("header") or {}).get(HEADER_SUBSHELL_ID)
            where = f"subshell-{str(subshell)[:8]} " if subshell else ""
            return f"{where}cell-{execution.execution_count} ({execution.run_mode})"
        name = task.get_name()
        if self._background_names is not None and name in self._background_names():
            return f"background {name}"
        if "comm" in name:
            return "comms"
        return thread.name or name

    def forget_stepping(self) -> None:
        for thread in self._by_id.values():
            thread.step = None
            thread.pause = False
            thread.reported = None
            thread.hits.clear()

    def stepping(self) -> bool:
        return any(t.step is not None or t.pause for t in self._by_id.values())

