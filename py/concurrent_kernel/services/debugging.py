"""pdb in the cell: `pdb.set_trace()`, `breakpoint()`, `%debug` and `%pdb` use IPython's debugger, reading its
commands through the kernel's stdin (builtins.input is services/stdin.py's), as ipykernel 7.4 does.

Stdlib pdb catches KeyboardInterrupt at its prompt and asks again, so an interrupt could never end a cell stopped
in it. IPython's InterruptiblePdb leaves the debugger instead: the interrupt ends the cell like any other, and the
requests queued behind it get their replies. (The JupyterLab debugger panel is services/debugger, over DAP.)
"""

from __future__ import annotations

import pdb
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

from IPython.core import debugger as ipython_debugger
from IPython.core.debugger import InterruptiblePdb

if TYPE_CHECKING:
    from .._kernel import Kernel


class KernelPdb(InterruptiblePdb):
    """IPython's debugger; an interrupt at its prompt quits it and raises KeyboardInterrupt in the cell."""


def set_trace(frame: FrameType | None = None, header: str | None = None) -> None:
    """`pdb.set_trace()` / `breakpoint()`: stop in the caller's frame with the kernel's debugger."""
    debugger = KernelPdb()
    if header is not None:
        debugger.message(header)
    debugger.set_trace(frame or sys._getframe().f_back)


_lock = threading.Lock()
_saved: tuple[Any, Any, Any] | None = None
_users = 0


def install(kernel: Kernel) -> None:
    """Route pdb to KernelPdb for this process while the kernel runs (undone when it stops).

    `breakpoint()` goes through sys.breakpointhook, which looks `pdb.set_trace` up at each call (unless
    PYTHONBREAKPOINT names another hook, which is then respected)."""
    global _saved, _users
    with _lock:
        if _users == 0:
            _saved = (pdb.Pdb, pdb.set_trace, ipython_debugger.Pdb)
            pdb.Pdb = KernelPdb  # type: ignore[misc]
            pdb.set_trace = set_trace
            ipython_debugger.Pdb = KernelPdb  # type: ignore[misc]
        _users += 1
    released = threading.Event()

    def release() -> None:
        global _saved, _users
        with _lock:
            if released.is_set():
                return
            released.set()
            _users -= 1
            if _users == 0 and _saved is not None:
                pdb.Pdb, pdb.set_trace, ipython_debugger.Pdb = _saved  # type: ignore[misc]
                _saved = None

    kernel.on_stop.append(release)
