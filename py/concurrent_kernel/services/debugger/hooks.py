"""Where the browser's debugger learns of new code and of a cell's uncaught exception, while a session is attached.

- cells: the shell's compiler (`CellFileCompiler.listener`) hands over each code object IPython compiles;
- files: `importlib`'s source loader hands over each module's code as it is loaded (`get_code`, wrapped while
  attached and put back at detach), so a breakpoint set in a file before it is imported is hit;
- the exception that ends a cell: IPython reports it through the shell's `showtraceback` (wrapped on the shell
  instance while attached), still inside the cell's task, where the cell can stop post mortem.

All three are undone by `remove()`; with no session attached none of this exists.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from importlib.machinery import SourceFileLoader
from types import CodeType, FrameType, TracebackType
from typing import Any

log = logging.getLogger("concurrent_kernel")


class CodeHooks:
    def __init__(self, shell: Any, on_code: Callable[[CodeType], None],
                 on_uncaught: Callable[[BaseException, list[FrameType]], None],
                 is_user_frame: Callable[[FrameType], bool]) -> None:
        self._shell = shell
        self._on_code = on_code
        self._on_uncaught = on_uncaught
        self._is_user_frame = is_user_frame
        self._loader_get_code: Any = None
        self._installed = False

    def install(self) -> None:
        if self._installed:
            return
        self._installed = True
        compiler = getattr(self._shell, "compile", None)
        if compiler is not None and hasattr(type(compiler), "listener"):
            compiler.listener = self._on_code
        original = SourceFileLoader.get_code
        on_code = self._on_code

        def get_code(loader: Any, fullname: str) -> Any:
            code = original(loader, fullname)
            if isinstance(code, CodeType):
                on_code(code)
            return code

        get_code.__wrapped__ = original  # type: ignore[attr-defined]
        self._loader_get_code = original
        SourceFileLoader.get_code = get_code  # type: ignore[method-assign]
        shell_showtraceback = self._shell.showtraceback

        def showtraceback(exc_tuple: Any = None, *args: Any, **kwargs: Any) -> Any:
            try:
                self._report(exc_tuple)
            except KeyboardInterrupt:
                pass  # interrupted while stopped post mortem: the cell ends with the error it already has
            except Exception:
                log.exception("debugger: the uncaught-exception stop failed")
            return shell_showtraceback(exc_tuple, *args, **kwargs)

        self._shell.showtraceback = showtraceback

    def remove(self) -> None:
        if not self._installed:
            return
        self._installed = False
        compiler = getattr(self._shell, "compile", None)
        if compiler is not None and getattr(compiler, "listener", None) is self._on_code:
            compiler.listener = None
        if self._loader_get_code is not None:
            SourceFileLoader.get_code = self._loader_get_code  # type: ignore[method-assign]
            self._loader_get_code = None
        self._shell.__dict__.pop("showtraceback", None)

    def _report(self, exc_tuple: Any) -> None:
        _, value, tb = exc_tuple if exc_tuple is not None else sys.exc_info()
        if not isinstance(value, Exception) or isinstance(value, SyntaxError):
            return
        frames = user_frames(tb, self._is_user_frame)
        if frames:
            self._on_uncaught(value, frames)


def user_frames(tb: TracebackType | None, is_user_frame: Callable[[FrameType], bool]) -> list[FrameType]:
    """The user's frames an exception passed through, innermost first."""
    frames = []
    while tb is not None:
        if is_user_frame(tb.tb_frame):
            frames.append(tb.tb_frame)
        tb = tb.tb_next
    frames.reverse()
    return frames
