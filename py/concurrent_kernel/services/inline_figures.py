"""matplotlib-inline's figures, per cell.

matplotlib-inline keeps one global list of figures to draw and, at each cell's `post_execute`, shows (and by default
closes) every open figure. With cells that overlap (`# task`, `# thread`, subshells) that would show one cell's
half-drawn figure under another cell and close it under its feet. So each figure remembers the request it was made
for (the cell, or the cell that started the background task that made it), and:

- a cell's flush at its end, and `plt.show()`, show every open figure except those made by *other cells still
  running* (they show at their own end), under the current cell as with ipykernel;
- what matplotlib-inline does otherwise is unchanged: `InlineBackend.close_figures`, `figure_format(s)`, `rc`,
  `plt.ioff()`, `fig.show()`, the metadata of each figure;
- a figure made outside any running cell (by a background task, or a task a finished cell left behind) shows under
  the cell that started that work: when a background task ends, at the next cell's end, or at a `plt.show()`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from .._context import current_execution, current_parent
from .import_hooks import when_imported

if TYPE_CHECKING:
    from .._kernel import Kernel

BACKEND_MODULE = "matplotlib_inline.backend_inline"


def _msg_id(parent: dict[str, Any] | None) -> str | None:
    return parent.get("header", {}).get("msg_id") if parent else None


class InlineFigures:
    """The per-cell state matplotlib-inline keeps globally: which figures a request made and which await a flush."""

    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
        #: figure -> the request it was made for (its parent message; None before any request)
        self._owner: WeakKeyDictionary[Any, dict[str, Any] | None] = WeakKeyDictionary()
        #: figures made outside any running cell: shown under their request, not the one that happens to show them
        self._made_in_background: WeakKeyDictionary[Any, bool] = WeakKeyDictionary()
        #: msg_id -> figures made in interactive mode since that request's last flush, in order (matplotlib-inline's
        #: `show._to_draw` and `show._draw_called`, kept per request)
        self._to_draw: dict[str | None, list[Any]] = {}
        self.backend: ModuleType | None = None

    def install(self) -> None:
        """Adapt matplotlib-inline when it is imported. If an earlier kernel of this process (tests) already did,
        it is pointed at this kernel, and the flush registered with this kernel's shell as the import would have."""
        global _current
        _current = self
        backend = sys.modules.get(BACKEND_MODULE)
        if backend is None or not getattr(backend, "_concurrent_kernel", False):
            when_imported(BACKEND_MODULE, _adapt)
            return
        self.backend = backend
        import matplotlib
        from matplotlib_inline.config import InlineBackend

        InlineBackend.clear_instance()  # its settings were the earlier kernel's
        if matplotlib.rcParams._get("backend") in ("module://" + BACKEND_MODULE, "inline"):
            backend.configure_inline_support.current_backend = "unset"  # a new shell: its figure formatters too
            backend.configure_inline_support(self._kernel.shell, "inline")

    def made(self, figure: Any) -> None:
        """A figure manager was made for `figure` (plt.figure, plt.subplots, a first plot)."""
        import matplotlib

        parent = current_parent.get()
        self._owner[figure] = parent
        execution = current_execution.get()
        if execution is None or execution not in self._kernel.executions:
            self._made_in_background[figure] = True
        if matplotlib.is_interactive():
            queue = self._to_draw.setdefault(_msg_id(parent), [])
            if figure in queue:
                queue.remove(figure)
            queue.append(figure)

    # ------------------------------------------------------------------------------------------- show / flush

    def _running_elsewhere(self) -> set[str | None]:
        """The requests of the other cells running now: their figures are theirs to show."""
        mine = _msg_id(current_parent.get())
        running = {_msg_id(execution.request) for execution in list(self._kernel.executions)}
        running.discard(mine)
        return running

    def _shown_here(self, figures: Iterable[Any]) -> list[Any]:
        elsewhere = self._running_elsewhere()
        return [fig for fig in figures if _msg_id(self._owner.get(fig)) not in elsewhere]

    def _display(self, figure: Any) -> None:
        """Display `figure` in the current cell, or, if it was made in the background, under the request whose work
        made it."""
        from IPython.display import display

        assert self.backend is not None
        owner = self._owner.get(figure) if self._made_in_background.get(figure) else None
        token = current_parent.set(owner) if owner is not None else None
        try:
            display(figure, metadata=self.backend._fetch_figure_metadata(figure))
        finally:
            if token is not None:
                current_parent.reset(token)

    def show(self, close: bool | None = None, block: bool | None = None) -> None:
        """`plt.show()`: as matplotlib-inline's, for the figures that are not another running cell's."""
        import matplotlib.pyplot
        from matplotlib._pylab_helpers import Gcf
        from matplotlib_inline.config import InlineBackend

        if close is None:
            close = InlineBackend.instance().close_figures
        figures = self._shown_here(manager.canvas.figure for manager in Gcf.get_all_fig_managers())
        try:
            for figure in figures:
                self._display(figure)
        finally:
            self._forget_drawn(figures)
            if close:
                for figure in figures:
                    matplotlib.pyplot.close(figure)

    def flush_figures(self) -> None:
        """`post_execute`: show what this cell drew (and what finished cells or tasks left), as matplotlib-inline's
        flush_figures does for the whole kernel."""
        from IPython.core.getipython import get_ipython
        from matplotlib._pylab_helpers import Gcf
        from matplotlib_inline.config import InlineBackend

        elsewhere = self._running_elsewhere()
        pending = [key for key, figures in self._to_draw.items() if figures and key not in elsewhere]
        if not pending:
            return
        try:
            if InlineBackend.instance().close_figures:
                self.show(True)
                return
            active = {manager.canvas.figure for manager in Gcf.get_all_fig_managers()}
            for key in pending:
                for figure in self._to_draw.get(key, []):
                    if figure in active:
                        self._display(figure)
        except Exception:
            shell = get_ipython()
            if shell is None:
                raise
            shell.showtraceback()
        finally:
            for key in pending:
                self._to_draw.pop(key, None)

    def flush_request(self, parent: dict[str, Any] | None) -> None:
        """A background task started for `parent` ended: show its figures under that cell."""
        if self.backend is None or not self._to_draw.get(_msg_id(parent)):
            return
        token = current_parent.set(parent)
        try:
            self.flush_figures()
        finally:
            current_parent.reset(token)

    def _forget_drawn(self, figures: list[Any]) -> None:
        shown = set(map(id, figures))
        for key in list(self._to_draw):
            queue = [fig for fig in self._to_draw[key] if id(fig) not in shown]
            if queue:
                self._to_draw[key] = queue
            else:
                del self._to_draw[key]


#: The kernel's InlineFigures (one kernel per process, but tests start several in turn).
_current: InlineFigures | None = None


def _adapt(backend: ModuleType) -> None:
    """Swap the backend's module-level functions for per-cell ones. pyplot copies the backend's functions when it
    switches to it, which happens after this module body ran (or again on the next switch), so it gets these."""
    original_new = backend.new_figure_manager_given_figure
    original_flush = backend.flush_figures

    def new_figure_manager_given_figure(num: Any, figure: Any) -> Any:
        manager = original_new(num, figure)
        backend.show._to_draw.clear()  # matplotlib-inline's global queue: kept per request instead
        if _current is not None:
            _current.made(figure)
        return manager

    def show(close: bool | None = None, block: bool | None = None) -> None:
        if _current is not None:
            _current.show(close, block)

    def flush_figures() -> None:
        if _current is not None:
            _current.flush_figures()

    # matplotlib-inline's figure-manager factory (called above) queues into these; a function can carry them
    show._to_draw = []  # type: ignore[attr-defined]
    show._draw_called = False  # type: ignore[attr-defined]
    show.__doc__ = InlineFigures.show.__doc__
    flush_figures.__doc__ = InlineFigures.flush_figures.__doc__
    backend.new_figure_manager_given_figure = new_figure_manager_given_figure
    backend.show = show
    backend.flush_figures = flush_figures
    backend._concurrent_kernel = True
    if _current is None:
        return
    _current.backend = backend
    # The module body registered its own flush already (when matplotlib was set to this backend); use ours.
    shell = _current._kernel.shell
    if shell is not None:
        callbacks = shell.events.callbacks["post_execute"]
        if original_flush in callbacks:
            callbacks[callbacks.index(original_flush)] = flush_figures
