"""The magics ipykernel adds for a kernel, where IPython's own would wait on a terminal that a kernel does not have
(an editor, a pager) or would not know the kernel: %edit, %clear, %less / %more, %man, %connect_info, %autosave,
%subshell, %qtconsole. Their output is ipykernel's where a notebook could depend on it (%autosave's line)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core import page
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from .._loops import IS_PYODIDE

if TYPE_CHECKING:
    from .._kernel import Kernel


@magics_class
class KernelMagics(Magics):
    def __init__(self, shell: Any, kernel: Kernel) -> None:
        super().__init__(shell)
        self.kernel = kernel

    @line_magic
    def edit(self, parameter_s: str = "", last_call: Any = None) -> None:
        """Ask the front end to open a file (or the code of an object, or lines of history) in its editor:
        `%edit NAME`, options -n LINE, -p, -r as IPython's. A kernel cannot wait for an editor to close, so nothing is
        run afterwards."""
        from IPython.core.magics.code import CodeMagics, MacroToEdit

        opts, args = self.parse_options(parameter_s, "prn:")
        try:
            filename, line_number, _ = CodeMagics._find_edit_target(self.shell, args, opts, last_call or ["", ""])
        except MacroToEdit:
            print("Editing a macro needs an editor the kernel can wait for; this kernel has none.")
            return
        if filename is None:
            return
        self.shell.payload_manager.write_payload(
            {"source": "edit_magic", "filename": str(Path(filename).resolve()), "line_number": line_number}
        )

    @line_magic
    def clear(self, arg_s: str = "") -> None:
        """Clear the terminal (what a shell's `clear` prints)."""
        self.shell.system("clear" if os.name == "posix" else "cls")

    @line_magic
    def less(self, arg_s: str) -> None:
        """Show a file in the pager (Python files highlighted): `%less FILE`, also `%more FILE`."""
        from IPython.utils import openpy

        if not arg_s:
            raise UsageError("Missing filename.")
        if arg_s.endswith(".py"):
            text = self.shell.pycolorize(openpy.read_py_file(arg_s, skip_encoding_cookie=False))
        else:
            text = Path(arg_s).read_text()
        page.page(text)

    @line_magic
    def more(self, arg_s: str) -> None:
        """Show a file in the pager: the same as %less."""
        self.less(arg_s)

    @line_magic
    def man(self, arg_s: str) -> None:
        """Show a command's manual page in the pager: `%man COMMAND`."""
        page.page(self.shell.getoutput(f"man {arg_s} | col -b", split=False))

    @line_magic
    def connect_info(self, arg_s: str = "") -> None:
        """Print the kernel's connection information, to connect another client (jupyter console --existing)."""
        path = getattr(self.kernel.app, "connection_file", "") if self.kernel.app is not None else ""
        if IS_PYODIDE or not path or not Path(path).exists():
            print("This kernel has no connection file: it runs in the browser, or without a ZMQ transport.")
            return
        print(json.dumps(json.loads(Path(path).read_text()), indent=2) + "\n")
        name = Path(path).name
        try:
            from jupyter_core.paths import jupyter_runtime_dir

            shown = name if Path(jupyter_runtime_dir()) == Path(path).parent else path
        except ImportError:
            shown = path
        print(f"Another client can connect to this kernel with the file {path}, for example:\n"
              f"    $> jupyter console --existing {shown}")

    @line_magic
    def autosave(self, arg_s: str) -> None:
        """Set the notebook's autosave interval in seconds (0: off), for front ends that take the request."""
        from IPython.display import Javascript, display

        try:
            interval = int(arg_s)
        except ValueError as exc:
            raise UsageError(f"%autosave requires an integer, got {arg_s!r}") from exc
        display(
            Javascript(f"IPython.notebook.set_autosave_interval({1000 * interval})"),
            include=["application/javascript"],
        )
        print(f"Autosaving every {interval} seconds" if interval else "Autosave disabled")

    @line_magic
    def subshell(self, arg_s: str = "") -> None:
        """Where this cell runs: its subshell (if any), its thread, and the kernel's subshells."""
        from .._context import current_parent
        from .._messages import header_of
        from .._protocol import HEADER_SUBSHELL_ID

        subshell_id = header_of(current_parent.get()).get(HEADER_SUBSHELL_ID)
        print(f"subshell id: {subshell_id}")
        print(f"thread id: {threading.get_ident()}")
        print(f"main thread id: {threading.main_thread().ident}")
        print(f"pid: {os.getpid()}")
        print(f"thread count: {threading.active_count()}")
        print(f"subshell list: {list(self.kernel.subshells)}")

    @line_magic
    def qtconsole(self, arg_s: str = "") -> None:
        """ipykernel starts a Qt console on the same kernel; this kernel does not ship one."""
        print("%qtconsole is not available: connect a console with `jupyter console --existing` (see %connect_info).")
