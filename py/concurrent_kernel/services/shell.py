"""The IPython shell, adapted so displays, results, errors and payloads go to the cell of the current context."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
from IPython.core.autocall import ExitAutocall
from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.payload import PayloadManager
from traitlets import Any as AnyTrait
from traitlets import CBool, default, observe

from .._context import current_execution, current_parent
from .._protocol import DISPLAY_TRANSIENT_ID, MsgType
from . import debugging
from .debugging import KernelPdb

if TYPE_CHECKING:
    from .._kernel import Kernel

log = logging.getLogger("concurrent_kernel")


class KernelDisplayHook(DisplayHook):
    """Publishes `execute_result`; the execution count and result holder come from the cell's context."""

    @property  # type: ignore[override]
    def prompt_count(self) -> int:
        execution = current_execution.get()
        return execution.execution_count if execution else self.shell.execution_count

    @property  # type: ignore[override]
    def exec_result(self) -> Any:
        execution = current_execution.get()
        return execution.result if execution else None

    @exec_result.setter
    def exec_result(self, value: Any) -> None:
        execution = current_execution.get()
        if execution is not None:
            execution.result = value

    def __call__(self, result: Any = None) -> None:
        self.check_for_underscore()
        if result is None or self.quiet():
            return
        format_dict, md_dict = self.compute_format_data(result)
        self.update_user_ns(result)
        self.fill_exec_result(result)
        if format_dict:
            self.log_output(format_dict)
            self.shell.kernel.publish(
                MsgType.EXECUTE_RESULT,
                {"execution_count": self.prompt_count, "data": format_dict, "metadata": md_dict or {}},
            )


class KernelDisplayPublisher(DisplayPublisher):
    """Publishes `display_data`, `update_display_data` and `clear_output`.

    Also has ipykernel's `session`, `pub_socket` and `parent_header`: jupyter_client's `execute_interactive`, run in
    a cell to drive another kernel, sends that kernel's outputs into the cell through them."""

    @property
    def session(self) -> Any:
        return self.shell.kernel.session

    @property
    def pub_socket(self) -> Any:
        return self.shell.kernel.iopub_socket

    @property
    def parent_header(self) -> dict[str, Any]:
        return current_parent.get() or {}

    def publish(  # type: ignore[override]
        self,
        data: dict[str, Any],
        metadata: dict[str, Any] | None = None,
        source: Any = None,
        *,
        transient: dict[str, Any] | None = None,
        update: bool = False,
        **kwargs: Any,
    ) -> None:
        self._validate_data(data, metadata)
        transient = transient or {}
        msg_type = MsgType.UPDATE_DISPLAY_DATA if update else MsgType.DISPLAY_DATA
        if update and DISPLAY_TRANSIENT_ID not in transient:
            raise ValueError("update_display requires a display_id")
        self.shell.kernel.publish(msg_type, {"data": data, "metadata": metadata or {}, "transient": transient})

    def clear_output(self, wait: bool = False) -> None:
        self.shell.kernel.publish(MsgType.CLEAR_OUTPUT, {"wait": bool(wait)})


class ContextPayloadManager(PayloadManager):
    """Payloads (set_next_input, pager, exit) belong to the cell that wrote them, not to whichever cell ends next."""

    def write_payload(self, data: dict[str, Any], single: bool = True) -> None:
        if not isinstance(data, dict):
            raise TypeError(f"Each payload write must be a dict, got: {data!r}")
        execution = current_execution.get()
        payloads = execution.payloads if execution is not None else self._payload
        if single and "source" in data:
            for i, existing in enumerate(payloads):
                if existing.get("source") == data["source"]:
                    payloads[i] = data
                    return
        payloads.append(data)


class KernelExitAutocall(ExitAutocall):
    """`exit` / `quit` in a cell end the kernel (`exit(keep_kernel=True)` only asks the front end to close), as
    with ipykernel."""

    def __call__(self, keep_kernel: bool = False) -> None:
        self._ip.keepkernel_on_exit = keep_kernel
        self._ip.ask_exit()


def _page_as_payload(shell: InteractiveShell, data: Any, start: int = 0, screen_lines: int = 0) -> None:
    bundle = data if isinstance(data, dict) else {"text/plain": str(data)}
    shell.payload_manager.write_payload({"source": "page", "data": bundle, "start": start})


class ZMQInteractiveShell(InteractiveShell):
    """The kernel's IPython shell. Named as ipykernel's shell because that name is how libraries tell a Jupyter
    kernel from a terminal (`type(get_ipython()).__name__ == "ZMQInteractiveShell"`: rich, plotly, tqdm and many
    "am I in a notebook" helpers); what it offers is ipykernel's shell API (`parent_header`, `get_parent`,
    `set_parent`, `kernel`, `exit`), on CPython and in the browser alike."""

    kernel = AnyTrait(allow_none=True)

    displayhook_class = KernelDisplayHook
    display_pub_class = KernelDisplayPublisher
    #: %debug and %pdb: IPython's debugger that an interrupt leaves (services/debugging.py)
    debugger_cls = KernelPdb
    # A kernel has no readline and no terminal to indent in (as ipykernel's shell).
    readline_use = CBool(False)
    autoindent = CBool(False)
    #: The last traceback shown, as ANSI text lines (ipykernel's attribute; tools that report a cell's error read it).
    _last_traceback: list[str] | None = None

    @default("exiter")
    def _default_exiter(self) -> Any:
        return KernelExitAutocall(self)

    @observe("exit_now")
    def _exit_now_changed(self, change: dict[str, Any]) -> None:
        """`exit` in a cell (or `shell.exit_now = True`) ends the kernel once the cell's reply is out, as ipykernel's
        shell does. A front end's kernel manager then starts a new one (JupyterLab: "Kernel Restarting"), so in the
        browser, where no manager watches a process, the page is asked for a restart."""
        if change["new"] and self.kernel is not None:
            self.kernel.end_after_current_request(restart=True)

    def init_environment(self) -> None:
        """As ipykernel: colours for tools that check the terminal, and no pager (nothing can page a kernel's
        output: `git log` or `man` in `!` commands would wait for a key press that never comes)."""
        import os

        os.environ.update(
            TERM="xterm-color", CLICOLOR="1", FORCE_COLOR="1", CLICOLOR_FORCE="1", PAGER="cat", GIT_PAGER="cat"
        )

    def init_virtualenv(self) -> None:
        """A kernel runs in the environment it was installed in; IPython's virtualenv guessing is for terminals."""

    @property
    def parent_header(self) -> dict[str, Any]:
        """The request being handled here (the whole message, as ipykernel's attribute of that name holds)."""
        return current_parent.get() or {}

    @parent_header.setter
    def parent_header(self, value: dict[str, Any] | None) -> None:
        current_parent.set(value)

    def init_payload(self) -> None:
        self.payload_manager = ContextPayloadManager(parent=self)
        self.configurables.append(self.payload_manager)

    def init_display_formatter(self) -> None:
        """Note while a display formatter runs, so a traceback it shows fails the cell (services/shell.py
        _showtraceback) as with ipykernel, where code that shows a traceback and carries on does not."""
        super().init_display_formatter()
        formatter = self.display_formatter
        format_data = formatter.format

        def format(obj: Any, include: Any = None, exclude: Any = None) -> Any:
            token = _formatting.set(True)
            try:
                return format_data(obj, include=include, exclude=exclude)
            finally:
                _formatting.reset(token)

        formatter.format = format

    def init_hooks(self) -> None:
        super().init_hooks()
        self.set_hook("show_in_pager", _page_as_payload, 99)

    def init_io(self) -> None:
        """Streams are installed by the kernel."""

    # The kernel has no terminal: run shell commands through pipes so their output is captured.
    system = InteractiveShell.system_piped

    def get_parent(self) -> dict[str, Any] | None:
        """The request whose output this context produces (ipywidgets' Output widget asks for it)."""
        return current_parent.get()

    def set_parent(self, parent: dict[str, Any] | None) -> None:
        current_parent.set(parent)

    def set_thread_parent(self, parent: dict[str, Any] | None) -> Any:
        """ipykernel 7.4's name for `concurrent_kernel.set_parent`: returns the token for reset_thread_parent."""
        return current_parent.set(parent)

    def reset_thread_parent(self, token: Any) -> None:
        current_parent.reset(token)

    def set_next_input(self, text: str, replace: bool = False) -> None:
        self.payload_manager.write_payload({"source": "set_next_input", "text": text, "replace": replace})

    def ask_exit(self) -> None:
        self.exit_now = not self.keepkernel_on_exit
        self.payload_manager.write_payload({"source": "ask_exit", "keepkernel": self.keepkernel_on_exit})

    keepkernel_on_exit = False

    def showtraceback(self, exc_tuple: Any = None, *args: Any, **kwargs: Any) -> None:
        """An interrupted cell shows IPython's usual KeyboardInterrupt traceback (as ipykernel), also when the
        interrupt cancelled an await; the kernel's, anyio's and the event loop's frames are left out.

        Why leave them out: they say nothing about the user's code, and formatting them cost ~40 ms per interrupt
        of an awaiting cell here. Like any traceback, the first one of a process costs more (lazy imports, regex
        compilation): _warm_tracebacks prepares those pieces on the main loop at start-up. A whole throwaway
        traceback formatted on a thread instead was measured to slow the interrupt of a busy cell (GIL contention).
        """
        execution = current_execution.get()
        etype, evalue, tb = exc_tuple if exc_tuple is not None else sys.exc_info()
        if (
            execution is not None
            and etype is not None
            and (issubclass(etype, KeyboardInterrupt) or (execution.interrupted and _is_cancellation(etype)))
        ):
            value = evalue if isinstance(evalue, KeyboardInterrupt) else KeyboardInterrupt()
            super().showtraceback((KeyboardInterrupt, value, _without_kernel_frames(tb)), tb_offset=0)
            return
        if isinstance(evalue, RuntimeError) and str(evalue) in _LOOP_ALREADY_RUNNING:
            _add_note_once(evalue, _AWAIT_HINT)
        super().showtraceback(exc_tuple, *args, **kwargs)

    def _format_exception_for_storage(self, exception: BaseException, *args: Any, **kwargs: Any) -> Any:
        """History keeps the traceback the cell already showed instead of formatting it a second time
        (measured: ~100 ms for the first interrupt of a cell, all of it here)."""
        execution = current_execution.get()
        if execution is not None and execution.error is not None:
            return execution.error
        return super()._format_exception_for_storage(exception, *args, **kwargs)

    def _showtraceback(self, etype: type[BaseException], evalue: BaseException, stb: list[str]) -> None:
        self._last_traceback = stb
        content = {"ename": etype.__name__, "evalue": str(evalue), "traceback": stb}
        execution = current_execution.get()
        if execution is not None:
            execution.error = content
            if _formatting.get():
                execution.display_failed = True
        sys.stdout.flush()
        sys.stderr.flush()
        self.kernel.publish(MsgType.ERROR, content)

    def enable_gui(self, gui: str | None = None) -> None:
        """`%gui NAME` and `%matplotlib NAME`: pump that toolkit's events from the kernel's loop (services/gui.py);
        a name this kernel cannot run is a UsageError, as with ipykernel."""
        from IPython.core.error import UsageError

        try:
            self.kernel.gui.enable(gui)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        self.active_eventloop = gui

    @classmethod
    def create(cls, kernel: Kernel, app: Any = None) -> ZMQInteractiveShell:
        """The shell, configured by `app` (services/ipython_app.py: profile, config files, command line)."""
        if cls.initialized():
            cls.clear_instance()
        if InteractiveShell.initialized():
            InteractiveShell.clear_instance()
        where = {} if app is None else {"profile_dir": app.profile_dir, "ipython_dir": app.ipython_dir}
        try:
            shell = cls.instance(parent=app, kernel=kernel, **where)
        except Exception as exc:  # a bad --Class.trait=value or config file must not keep the kernel from starting
            log.error("the shell rejected its configuration (%r); starting with defaults", exc)
            cls.clear_instance()
            InteractiveShell.clear_instance()
            shell = cls.instance(kernel=kernel, **where)
        if "" not in sys.path:  # as ipykernel: imports follow the cwd, also after os.chdir
            sys.path.insert(0, "")
        debugging.install(kernel)
        if kernel is not None and kernel.use_threads:
            kernel.main_hub.spawn(partial(_warm_tracebacks, shell), name="traceback warm-up")
        return shell


#: True while a display formatter runs (KernelShell.init_display_formatter).
_formatting: ContextVar[bool] = ContextVar("concurrent_kernel_formatting", default=False)

#: asyncio's errors for asyncio.run() / loop.run_until_complete() called inside a running event loop (a cell's).
_LOOP_ALREADY_RUNNING = frozenset({
    "asyncio.run() cannot be called from a running event loop",
    "This event loop is already running",
    "Cannot run the event loop while another loop is running",
})
_AWAIT_HINT = (
    "A cell already runs inside the kernel's event loop: write `await main()` (top-level await works in a cell) "
    "instead of `asyncio.run(main())` or `loop.run_until_complete(main())`. To keep the kernel free while it runs, "
    "put `# thread` on the cell's first line: the cell then runs on a thread with an event loop of its own "
    "(still with `await`)."
)


def _add_note_once(exc: BaseException, note: str) -> None:
    if note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)


async def _warm_tracebacks(shell: InteractiveShell) -> None:
    """Do at start-up, on the main loop, the one-time work of a process's first traceback (error or interrupt),
    which otherwise made the first one cost ~40-90 ms instead of ~5-8 ms: inspect.getmodule's index of module
    files (a realpath per loaded module), importing stack_data and pygments' lexer table and Python lexer,
    compiling that lexer's regexes (into re's cache: stack_data makes a fresh lexer class per traceback), and
    the colour formatter. It starts once the start-up requests are answered (kernel_info, a front end's first
    requests), each step is short (<= ~20 ms) and the loop runs whatever arrived between two steps, so a request
    waits for one step at most. Not on a thread: there it competed for the GIL with the cell being interrupted and
    kept a malloc arena (~1 MB more). The traceback is unchanged: this only imports, compiles, builds throwaways."""
    await anyio.sleep(_WARM_AFTER)
    for step in _WARM_STEPS:
        await anyio.sleep(0.005)  # a handler spawned during the last step runs before the next one
        try:
            step(shell)
        except Exception:  # only a head start: the first traceback does whatever this could not
            log.debug("traceback warm-up step %s failed", step.__name__, exc_info=True)
    _freeze_startup_objects()


def _freeze_startup_objects() -> None:
    """Move what start-up made (modules, IPython's shell, the kernel: ~300k objects that live as long as the
    process) out of the cyclic GC's reach. Every full collection walked them all: measured as pauses that set the
    execute round trip's p99, and as more CPU per cell the fewer other objects the process had (a full collection
    runs when the objects that survived since the last one reach a quarter of the long-lived ones)."""
    import gc

    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()


def _warm_module_index(shell: InteractiveShell) -> None:
    import inspect

    inspect.getmodule(sys._getframe())


def _warm_imports(shell: InteractiveShell) -> None:
    import stack_data  # noqa: F401  (also executing, asttokens, pure_eval)
    from pygments.formatters import HtmlFormatter  # noqa: F401  (stack_data checks for it)
    from pygments.formatters.terminal256 import Terminal256Formatter  # noqa: F401


def _warm_lexer(shell: InteractiveShell) -> None:
    from pygments.lexers import get_lexer_by_name

    get_lexer_by_name("python3")  # the lexer table and the Python lexer's module, as stack_data asks


def _warm_highlight(shell: InteractiveShell) -> None:
    """Highlight a line as a traceback does: builds the lexer's regexes (once: services/tracebacks.py) and the
    theme's formatter."""
    import stack_data
    from IPython.utils.PyColorize import theme_table
    from pygments.formatters.terminal256 import Terminal256Formatter
    from pygments.token import Token

    from .tracebacks import pygmented_with_ranges

    tb = shell.InteractiveTB
    theme = theme_table[tb._theme_name]
    theme.format([(Token.Topline, "-")])
    style = stack_data.style_with_executing_node(
        theme.as_pygments_style(), theme.extra_style.get(Token.TbHighlight, tb.tb_highlight)
    )

    pygmented_with_ranges(Terminal256Formatter(style=style), "x = f(1)\n", [(4, 8)])


_WARM_STEPS = (_warm_module_index, _warm_imports, _warm_lexer, _warm_highlight)
#: Seconds after the shell is up before warming: the first requests of a starting kernel go first.
_WARM_AFTER = 0.1


def _kernel_dirs() -> tuple[str, ...]:
    """Where the frames an interrupt traceback leaves out live: this kernel, IPython, anyio and the loops."""
    import asyncio
    import os

    import anyio
    import IPython

    modules = [sys.modules[__name__.split(".")[0]], IPython, anyio, asyncio]
    modules += [sys.modules[name] for name in ("trio", "aiologic", "outcome", "sniffio") if name in sys.modules]
    return tuple(os.path.dirname(m.__file__ or "") + os.sep for m in modules)


def _without_kernel_frames(tb: Any) -> Any:
    """A copy of the traceback `tb` with only the user's frames (cells and the modules they called)."""
    from types import TracebackType

    dirs = _kernel_dirs()
    kept = []
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(dirs):
            kept.append(tb)
        tb = tb.tb_next
    rebuilt = None
    for entry in reversed(kept):
        rebuilt = TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rebuilt


def _is_cancellation(etype: type[BaseException]) -> bool:
    import asyncio

    if issubclass(etype, asyncio.CancelledError):
        return True
    trio = sys.modules.get("trio")
    return bool(trio is not None and issubclass(etype, trio.Cancelled))


#: The name this class had before it took ipykernel's (services.shell.KernelShell keeps working).
KernelShell = ZMQInteractiveShell
