"""The IPython shell, adapted so displays, results, errors and payloads go to the cell of the current context."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.payload import PayloadManager
from traitlets import Any as AnyTrait

from .._context import current_execution, current_parent
from .._protocol import DISPLAY_TRANSIENT_ID, MsgType
from . import debugging
from .debugging import KernelPdb

if TYPE_CHECKING:
    from .._kernel import Kernel


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
    """Publishes `display_data`, `update_display_data` and `clear_output`."""

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


def _page_as_payload(shell: InteractiveShell, data: Any, start: int = 0, screen_lines: int = 0) -> None:
    bundle = data if isinstance(data, dict) else {"text/plain": str(data)}
    shell.payload_manager.write_payload({"source": "page", "data": bundle, "start": start})


class KernelShell(InteractiveShell):
    kernel = AnyTrait(allow_none=True)

    displayhook_class = KernelDisplayHook
    display_pub_class = KernelDisplayPublisher
    #: %debug and %pdb: IPython's debugger that an interrupt leaves (services/debugging.py)
    debugger_cls = KernelPdb

    def init_payload(self) -> None:
        self.payload_manager = ContextPayloadManager(parent=self)
        self.configurables.append(self.payload_manager)

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
        self.payload_manager.write_payload({"source": "ask_exit", "keepkernel": self.keepkernel_on_exit})

    keepkernel_on_exit = False

    def showtraceback(self, exc_tuple: Any = None, *args: Any, **kwargs: Any) -> None:
        """An interrupted cell gets a short KeyboardInterrupt traceback of its own frames only.

        Formatting the full stack of a cancelled await (anyio and event loop frames) took ~40 ms here.
        """
        execution = current_execution.get()
        etype, _, tb = exc_tuple if exc_tuple is not None else sys.exc_info()
        if (
            execution is not None
            and etype is not None
            and (issubclass(etype, KeyboardInterrupt) or (execution.interrupted and _is_cancellation(etype)))
        ):
            self._showtraceback(KeyboardInterrupt, KeyboardInterrupt(), _interrupt_traceback(tb))
            return
        super().showtraceback(exc_tuple, *args, **kwargs)

    def _format_exception_for_storage(self, exception: BaseException, *args: Any, **kwargs: Any) -> Any:
        """History keeps the traceback the cell already showed instead of formatting it a second time
        (measured: ~100 ms for the first interrupt of a cell, all of it here)."""
        execution = current_execution.get()
        if execution is not None and execution.error is not None:
            return execution.error
        return super()._format_exception_for_storage(exception, *args, **kwargs)

    def _showtraceback(self, etype: type[BaseException], evalue: BaseException, stb: list[str]) -> None:
        content = {"ename": etype.__name__, "evalue": str(evalue), "traceback": stb}
        execution = current_execution.get()
        if execution is not None:
            execution.error = content
        sys.stdout.flush()
        sys.stderr.flush()
        self.kernel.publish(MsgType.ERROR, content)

    def enable_gui(self, gui: str | None = None) -> None:
        """`%gui NAME` and `%matplotlib NAME`: pump that toolkit's events from the kernel's loop."""
        self.kernel.gui.enable(gui)

    @classmethod
    def create(cls, kernel: Kernel, config: Any = None) -> KernelShell:
        if cls.initialized():
            cls.clear_instance()
        if InteractiveShell.initialized():
            InteractiveShell.clear_instance()
        shell = cls.instance(config=config, kernel=kernel)
        debugging.install(kernel)
        return shell


def _interrupt_traceback(tb: Any) -> list[str]:
    """Where the cell was when it was interrupted: its own frames, plainly formatted."""
    import traceback

    frames = [f for f in traceback.extract_tb(tb) if f.filename.startswith("<ipython-input-")] if tb else []
    lines = ["\x1b[31mKeyboardInterrupt\x1b[39m: interrupted\n"]
    if frames:
        where = "".join(traceback.format_list(frames))
        lines.insert(0, "Traceback (most recent call last):\n" + where)
    return lines


def _is_cancellation(etype: type[BaseException]) -> bool:
    import asyncio

    if issubclass(etype, asyncio.CancelledError):
        return True
    trio = sys.modules.get("trio")
    return bool(trio is not None and issubclass(etype, trio.Cancelled))
