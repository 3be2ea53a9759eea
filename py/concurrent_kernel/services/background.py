"""Tasks that cells start and that outlive them: listed and stopped from any cell; output goes to the starter."""

from __future__ import annotations

import itertools
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup

from .._context import current_execution, current_parent
from .._loops import current_call_soon_threadsafe

if TYPE_CHECKING:
    from .._kernel import Kernel


@dataclass(eq=False)
class BackgroundTask:
    name: str
    started_by: int | None
    scope: anyio.CancelScope
    done: bool = False
    error: str | None = None
    #: Schedules on the loop it runs on when that is not the main loop (its own thread, debugger attached).
    call_soon: Any = None


class BackgroundTasks:
    """`get_kernel().background.start(coro_fn, *args, name=...)` runs it on the kernel's loop until stopped."""

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        self._task_group: TaskGroup | None = None
        self._tasks: dict[str, BackgroundTask] = {}
        self._ids = itertools.count(1)

    def start(self, task_group: TaskGroup) -> None:
        self._task_group = task_group

    def spawn(self, fn: Callable[..., Awaitable[Any]] | Awaitable[Any], *args: Any, name: str | None = None) -> str:
        """Start `fn(*args)` (or an awaitable) in the background; returns its name."""
        if self._task_group is None:
            raise RuntimeError("the kernel is not running")
        base = name or getattr(fn, "__name__", None) or type(fn).__name__
        task_name = base if base not in self._tasks else f"{base}-{next(self._ids)}"
        execution = current_execution.get()
        task = BackgroundTask(task_name, execution.execution_count if execution else None, anyio.CancelScope())
        self._tasks[task_name] = task
        parent = current_parent.get()

        async def run() -> None:
            current_parent.set(parent)
            current_execution.set(None)
            try:
                with task.scope:
                    await (fn(*args) if callable(fn) else fn)  # type: ignore[misc]
            except Exception as exc:
                task.error = f"{type(exc).__name__}: {exc}"
                print(f"Background task {task_name!r} failed:", file=sys.stderr)
                traceback.print_exception(exc, file=sys.stderr)
            finally:
                task.done = True
                self._tasks.pop(task_name, None)
                figures = self._kernel.inline_figures
                if figures is not None:
                    figures.flush_request(parent)  # what it plotted shows under the cell that started it

        hub = self._kernel.main_hub
        debugger = self._kernel.debugger
        if debugger is not None and debugger.attached and self._kernel.use_threads:
            # A breakpoint in it must not stop the main loop: with a debugger attached it gets a thread of its own.
            self._start_thread(task, run)
        elif self._kernel.running_in_main_thread():
            self._task_group.start_soon(run, name=task_name)
        else:  # from a thread-mode cell: start it on the main loop
            hub.put(lambda: self._task_group.start_soon(run, name=task_name))  # type: ignore[union-attr]
        return task_name

    def _start_thread(self, task: BackgroundTask, run: Callable[[], Awaitable[None]]) -> None:
        async def main() -> None:
            task.call_soon = current_call_soon_threadsafe()
            # Measured here: a breakpoint in a coroutine that starts at once in a new thread was missed about one
            # time in four; 50 ms later it was hit every time. Only while a debugger is attached.
            await anyio.sleep(0.05)
            await run()

        thread = threading.Thread(
            target=anyio.run, args=(main,), kwargs={"backend": self._kernel.backend},
            name=f"background {task.name}", daemon=True,
        )
        thread.start()

    def list(self) -> list[BackgroundTask]:
        return list(self._tasks.values())

    def stop(self, name: str) -> None:
        task = self._tasks.get(name)
        if task is None:
            raise KeyError(f"no background task named {name!r}; running: {', '.join(self._tasks) or 'none'}")
        if task.call_soon is not None:
            task.call_soon(task.scope.cancel)
            return
        call_soon = self._kernel.main_hub.call_soon
        if call_soon is None or self._kernel.running_in_main_thread():
            task.scope.cancel()
        else:
            call_soon(task.scope.cancel)


