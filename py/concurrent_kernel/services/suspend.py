"""Blocking calls in the browser kernel: the Python stack is suspended (Pyodide + JSPI), the worker runs on.

Pyodide can suspend a running Python stack while JavaScript waits for a promise (JS Promise Integration, JSPI)
and resume it later; meanwhile the worker's event loop runs everything else (other cells' tasks, comm messages,
control requests). This module is the one place the kernel does that:

- `block_on(awaitable)`: wait for an awaitable from synchronous code; an interrupt of the kernel ends the wait with
  KeyboardInterrupt. `time.sleep` (`install`) and `input()` / `getpass()` (transports/callback.py) use it, and a
  debugger that stops a stack at a breakpoint can too.
- `can_suspend()`: whether the calling stack can be suspended.

When a stack can be suspended: Python must have been entered through a promising call, with no JavaScript frame
between that entry and the suspension. Where the browser has JSPI, Pyodide's WebLoop runs every handle that way,
so every task step qualifies: queue and task cells, comm callbacks, background tasks, the kernel's own handlers;
so does each message the worker hands to the kernel (ts/src/worker/kernelBridge.ts, `callPromising`). A memory
snapshot would carry the wasm call trampoline of the runtime that took it, a JavaScript function, into every call:
the worker puts this runtime's back (ts/src/worker/snapshot.ts). Python called synchronously from JavaScript (a
`create_proxy` callback, a finalizer, a PyProxy method JavaScript calls) cannot be suspended, nor can any stack in a
browser without JSPI: there `time.sleep` blocks the worker (on a cross-origin isolated page without using the CPU,
and an interrupt ends it), and `block_on`, `pyodide.ffi.run_sync` and `asyncio.run` raise SuspendUnavailable (a
RuntimeError) saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from .. import _execution
from .._loops import IS_PYODIDE

T = TypeVar("T")

#: CPython's own time.sleep (under Pyodide's wrapper, which suspends without an interrupt): in Pyodide it waits in
#: a busy loop.
_original_sleep: Callable[[float], None] = getattr(time.sleep, "__wrapped__", time.sleep)
#: The worker's blocking sleep for stacks that cannot be suspended (Atomics.wait on the interrupt buffer): returns
#: whether an interrupt ended it.
_blocking_sleep: Callable[[float], bool] | None = None
#: Pyodide's run_sync, once `install` has put this module's in its place.
_pyodide_run_sync: Callable[[Any], Any] | None = None
#: One future per suspended wait, resolved by an interrupt to end it.
_waiting: set[asyncio.Future[None]] = set()


class SuspendUnavailable(RuntimeError):
    """This Python stack cannot be suspended (no JSPI in the browser, or Python was called synchronously from JS)."""


def can_suspend() -> bool:
    """Whether the calling Python stack can be suspended (always False outside Pyodide)."""
    if not IS_PYODIDE:
        return False
    from pyodide.ffi import can_run_sync

    return bool(can_run_sync())


def block_on(awaitable: Awaitable[T], *, interruptible: bool = True) -> T:
    """Wait for `awaitable` from synchronous code, suspending this stack while the worker's event loop runs on.

    Interruptible (the default): an interrupt of the kernel (`interrupt_waiting`) cancels the awaitable and raises
    KeyboardInterrupt here. Raises SuspendUnavailable where the stack cannot be suspended.
    """
    if not can_suspend():
        raise SuspendUnavailable(_unavailable_reason())
    run = _pyodide_run_sync
    if run is None:
        from pyodide.ffi import run_sync as run
    with _off_cpu():
        if not interruptible:
            return run(awaitable)
        finished, result = run(_interruptible(awaitable))
    if not finished:
        raise KeyboardInterrupt  # here, in the suspended stack: raised in the waiting task, the loop would see it
    return result


@contextlib.contextmanager
def _off_cpu() -> Iterator[None]:
    """While this stack is suspended the worker is free: the page must take the soft path to interrupt it, so the
    busy flag (_execution.busy_flag) reads 0 meanwhile and is put back after. When the page had already escalated
    for the running step, the worker withdrew its pending signal (the flag returned 2): raise KeyboardInterrupt here,
    in the cell's code, rather than suspend."""
    flag = _execution.busy_flag
    if flag is None:
        yield
        return
    was = flag(0)
    try:
        if was == 2:
            raise KeyboardInterrupt
        yield
    finally:
        flag(1 if was else 0)


def waiting() -> int:
    """How many stacks are suspended in an interruptible wait."""
    return len(_waiting)


def interrupt_waiting() -> int:
    """End every interruptible wait with KeyboardInterrupt; returns how many there were."""
    woken = 0
    for future in list(_waiting):
        if not future.done():
            future.set_result(None)
            woken += 1
    return woken


async def _interruptible(awaitable: Awaitable[T]) -> tuple[bool, T | None]:
    """(True, the result), or (False, None) when an interrupt came first (the awaitable is then cancelled)."""
    work = asyncio.ensure_future(awaitable)
    interrupted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    _waiting.add(interrupted)
    try:
        await asyncio.wait((work, interrupted), return_when=asyncio.FIRST_COMPLETED)
    finally:
        _waiting.discard(interrupted)
    if work.done():
        return True, work.result()
    work.cancel()
    return False, None


def _unavailable_reason() -> str:
    import js

    if not hasattr(js.WebAssembly, "Suspending"):
        return (
            "this browser cannot suspend Python (it has no WebAssembly JSPI), so this call cannot wait here; in a "
            "cell, await the coroutine instead (`await main()` rather than `asyncio.run(main())`)"
        )
    return (
        "this Python code was called synchronously from JavaScript, where its stack cannot be suspended: the call "
        "cannot wait here (run it from a cell, a task or a comm callback instead)"
    )


#: Longer waits go to CPython's time.sleep, for its own errors (OverflowError) or its own wait.
_LONGEST_SLEEP = 2.0**31


def sleep(seconds: float) -> None:
    """time.sleep for the browser kernel: suspends where it can (interruptible), else blocks the worker."""
    if type(seconds) not in (int, float) or not 0 <= seconds < _LONGEST_SLEEP:
        _original_sleep(seconds)  # CPython's own errors (TypeError, ValueError for negative or NaN, OverflowError)
        return
    if can_suspend():
        block_on(asyncio.sleep(seconds))
    elif _blocking_sleep is not None:
        if _blocking_sleep(seconds):
            raise KeyboardInterrupt
    else:
        _original_sleep(seconds)


def install(blocking_sleep: Callable[[float], bool] | None = None) -> None:
    """Make `time.sleep` this module's `sleep` (Pyodide only). `blocking_sleep`: the worker's wait for stacks that
    cannot be suspended (None: Pyodide's, a busy loop)."""
    global _blocking_sleep
    if not IS_PYODIDE:
        return
    _blocking_sleep = blocking_sleep
    if time.sleep is not sleep:
        sleep.__doc__ = _original_sleep.__doc__
        time.sleep = sleep
    import pyodide.ffi
    import pyodide.webloop

    global _pyodide_run_sync
    if _pyodide_run_sync is None:
        _pyodide_run_sync = pyodide.ffi.run_sync
        # WebLoop's run_until_complete (asyncio.run too) calls the name it imported.
        pyodide.ffi.run_sync = pyodide.webloop.run_sync = run_sync  # type: ignore[attr-defined]


def run_sync(awaitable: Awaitable[T]) -> T:
    """pyodide.ffi.run_sync, with this kernel's error where the stack cannot be suspended (Pyodide's asks the reader
    to call `callPromising` from JavaScript)."""
    assert _pyodide_run_sync is not None
    if not can_suspend():
        if inspect.iscoroutine(awaitable):
            awaitable.close()  # not "never awaited" on top of the error
        raise SuspendUnavailable(_unavailable_reason())
    with _off_cpu():
        return _pyodide_run_sync(awaitable)

