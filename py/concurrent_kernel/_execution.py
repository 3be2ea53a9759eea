"""State of one running cell: what to reply, and how to interrupt it wherever it runs."""

from __future__ import annotations

import signal
import threading
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import anyio

from ._loops import CallSoon
from ._protocol import RunMode


@dataclass(eq=False)
class Execution:
    request: dict[str, Any]
    execution_count: int
    run_mode: RunMode
    thread_id: int
    call_soon: CallSoon
    reply_to: Any = None
    cancel_scope: anyio.CancelScope | None = None
    error: dict[str, Any] | None = None
    payloads: list[dict[str, Any]] = field(default_factory=list)
    in_step: bool = False
    interrupted: bool = False
    #: Code this cell ran elsewhere (%thread, %trio, %asyncio) failed: the cell fails too.
    failed_elsewhere: bool = False
    #: A display formatter raised while formatting this cell's result or a display() (its traceback was shown).
    display_failed: bool = False
    result: Any = None

    @property
    def is_main_thread(self) -> bool:
        return self.thread_id == threading.main_thread().ident

    def interrupt(self) -> None:
        """Ask the cell to stop: an awaiting cell is cancelled on its own loop; a busy thread gets KeyboardInterrupt.

        A busy *main-thread* cell is handled by the SIGINT handler, which runs in that thread.
        """
        self.interrupted = True
        if self.in_step and not self.is_main_thread:
            _raise_in_thread(self.thread_id, KeyboardInterrupt)
        scope = self.cancel_scope
        if scope is not None:
            self.call_soon(scope.cancel)


def _raise_in_thread(thread_id: int, exc_type: type[BaseException]) -> None:
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))


class Stepper:
    """Drive a coroutine step by step, flagging when user code is on the CPU.

    The flag lets an interrupt choose between raising KeyboardInterrupt in busy code and cancelling an await.
    """

    __slots__ = ("_coro", "_execution")

    def __init__(self, coro: Awaitable[Any], execution: Execution) -> None:
        self._coro = coro.__await__()
        self._execution = execution

    def __await__(self) -> Generator[Any, Any, Any]:
        it = self._coro
        execution = self._execution
        value: Any = None
        error: BaseException | None = None
        while True:
            execution.in_step = True
            try:
                yielded = it.send(value) if error is None else it.throw(error)
            except StopIteration as stop:
                return stop.value
            finally:
                execution.in_step = False
            try:
                value, error = (yield yielded), None
            except BaseException as exc:  # delivered by the loop (cancellation); pass it to the coroutine
                value, error = None, exc


#: The browser worker's "a cell's step is on the CPU" flag, a slot of the page's interrupt SharedArrayBuffer
#: (ts/src/worker/interrupt.ts busyFlag): `busy_flag(value)` stores 0 or 1 and returns the old value; -1 only reads;
#: SIGNAL_TAKEN and PAUSE_TAKEN tell the page Python took the signal it set. None on CPython, which never pays for it:
#: it runs the plain Stepper.
busy_flag: Callable[[int], int] | None = None
#: busy_flag's argument from the SIGINT handler (ts/src/protocol.ts SIGNAL_TAKEN).
SIGNAL_TAKEN = -2
#: busy_flag's argument from the debugger's pause handler (ts/src/protocol.ts PAUSE_TAKEN).
PAUSE_TAKEN = -3
#: The Stepper the kernel runs cells with (_handlers.py): FlaggedStepper once the worker gives a flag.
stepper: type[Stepper] = Stepper


class FlaggedStepper(Stepper):
    """A Stepper that also publishes each step to the page, so it can raise KeyboardInterrupt in blocking code at
    once instead of first waiting for the worker to answer (ts/src/kernel.ts interrupt)."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, Any, Any]:
        flag = busy_flag
        inner = super().__await__()
        if flag is None:
            return (yield from inner)
        value: Any = None
        error: BaseException | None = None
        while True:
            was = flag(1)
            try:
                yielded = inner.send(value) if error is None else inner.throw(error)
            except StopIteration as stop:
                return stop.value
            finally:
                flag(1 if was == 1 else 0)  # a nested step leaves its outer one on the CPU
            try:
                value, error = (yield yielded), None
            except BaseException as exc:
                value, error = None, exc


def use_busy_flag(flag: Callable[[int], int] | None) -> None:
    """Run cells with FlaggedStepper publishing into `flag` (the browser worker), or the plain Stepper (None); with a
    flag, SIGINT is taken by `took_sigint`."""
    global busy_flag, stepper
    busy_flag = flag
    stepper = Stepper if flag is None else FlaggedStepper
    if threading.current_thread() is not threading.main_thread():
        return
    if flag is not None:
        signal.signal(signal.SIGINT, took_sigint)
    elif signal.getsignal(signal.SIGINT) is took_sigint:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def took_sigint(signum: int, frame: Any) -> None:
    """The browser's SIGINT handler. Pyodide's signal check can wipe a signal the page sets at the wrong moment, so
    the page sets it again unless Python shows it was taken (ts/src/kernel.ts _watchSignal): say so, then raise
    as Python's default handler does (interrupt tracebacks leave this frame out, services/shell.py)."""
    flag = busy_flag
    if flag is not None:
        flag(SIGNAL_TAKEN)
    raise KeyboardInterrupt
