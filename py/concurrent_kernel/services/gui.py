"""GUI event loops (`%gui tk`, `%matplotlib qt`): the kernel's main loop pumps the toolkit's events.

Pumping from a task keeps one loop in charge on both backends (asyncio and trio) and needs no guest mode;
windows stay live while cells await, and freeze (as in any kernel) while a cell blocks the main thread.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from .._loops import IS_PYODIDE

if TYPE_CHECKING:
    from .._kernel import Kernel

log = logging.getLogger("concurrent_kernel")

POLL_INTERVAL = 0.01
#: Names that need no event loop of their own: figures are shown by the front end (inline, or a widget/comm backend
#: such as ipympl), as ipykernel takes them.
INLINE = frozenset({None, "", "inline", "agg", "none", "nbagg", "webagg", "notebook", "ipympl", "widget"})
#: Toolkits ipykernel 7.4 knows and this kernel does not pump (no binding for them here).
_NOT_PUMPED = ("wx", "gtk", "gtk3", "gtk4", "osx", "macosx")


def _tk_pump() -> Callable[[], None]:
    import _tkinter
    import tkinter

    def pump() -> None:
        root = tkinter._default_root  # the first Tk() made, by the user or matplotlib; none yet: nothing to do
        if root is not None:
            while root.tk.dooneevent(_tkinter.DONT_WAIT):
                pass

    return pump


def _qt_pump() -> Callable[[], None]:
    for binding in ("PySide6", "PyQt6", "PyQt5", "PySide2"):
        try:
            widgets = importlib.import_module(f"{binding}.QtWidgets")
            break
        except ImportError:
            continue
    else:
        raise ImportError("no Qt binding is installed (PySide6, PyQt6, PyQt5 or PySide2)")
    app = widgets.QApplication.instance() or widgets.QApplication([])
    return app.processEvents


_PUMPS: dict[str, Callable[[], Callable[[], None]]] = {
    "tk": _tk_pump, "qt": _qt_pump, "qt5": _qt_pump, "qt6": _qt_pump,
}


class GuiLoop:
    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        self.active: str | None = None
        self._scope: anyio.CancelScope | None = None

    def enable(self, gui: str | None) -> None:
        """Start pumping `gui`'s events (replacing any other GUI), or stop for None/'inline'."""
        if gui == "asyncio":
            self._asyncio()
            return
        self.disable()
        if gui in INLINE:
            return
        if IS_PYODIDE:
            raise RuntimeError(f"GUI event loop {gui!r} is not available in the browser; use the inline backend")
        factory = _PUMPS.get(str(gui))
        if factory is None:
            known = ", ".join([*_PUMPS, "asyncio", "inline", "ipympl", "widget"])
            why = "this kernel does not run that toolkit's event loop" if gui in _NOT_PUMPED else "unknown name"
            raise ValueError(f"Invalid GUI request {gui!r} ({why}); valid ones are: {known}")
        pump = factory()
        scope = self._scope = anyio.CancelScope()

        async def run() -> None:
            with scope:
                while True:
                    try:
                        pump()
                    except Exception:
                        log.exception("the %s event loop failed; stopping it", gui)
                        return
                    await anyio.sleep(POLL_INTERVAL)

        hub = self._kernel.main_hub
        hub.put(lambda: hub.spawn(run, name=f"gui {gui}"))
        self.active = gui

    def _asyncio(self) -> None:
        """`%gui asyncio` (ipywidgets' asynchronous examples start with it): for ipykernel it starts an asyncio loop
        beside its own. Here cells already run on the kernel's asyncio loop, and widget messages are handled while a
        cell awaits, so there is nothing to start; on a trio kernel there is no asyncio loop to give."""
        if self._kernel.backend != "asyncio":
            raise ValueError(
                f"this kernel runs its cells on {self._kernel.backend}, not asyncio: `await` trio code directly, or "
                "run asyncio code in a cell that starts with `%%asyncio` (a worker thread with its own asyncio loop), "
                "or start the kernel with `--backend asyncio`"
            )

    def disable(self) -> None:
        scope, self._scope, self.active = self._scope, None, None
        if scope is not None:
            call_soon = self._kernel.main_hub.call_soon
            if call_soon is not None:
                call_soon(scope.cancel)
