"""Magics to inspect and steer the kernel's concurrency from a cell."""

from __future__ import annotations

import ast
import threading
from typing import TYPE_CHECKING, Any

import aiologic
import anyio
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class

from .._context import current_execution, current_parent
from .._loops import IS_PYODIDE, backend_name

if TYPE_CHECKING:
    from .._kernel import Kernel


@magics_class
class ConcurrencyMagics(Magics):
    def __init__(self, shell: Any, kernel: Kernel) -> None:
        super().__init__(shell)
        self.kernel = kernel

    @line_magic
    def callers(self, line: str = "") -> None:
        """List the kernel's threads and the cells running now (run mode, thread, state)."""
        current = threading.get_ident()
        rows = [("Thread", "Role", "Cell", "Mode", "State")]
        for thread in threading.enumerate():
            role = {"MainThread": "shell", "Control": "control"}.get(thread.name, "worker")
            mark = " <- current" if thread.ident == current else ""
            rows.append((thread.name + mark, role, "", "", "alive"))
        for ex in sorted(self.kernel.executions, key=lambda e: e.execution_count):
            state = "running" if ex.in_step else "awaiting"
            name = next((t.name for t in threading.enumerate() if t.ident == ex.thread_id), str(ex.thread_id))
            rows.append((name, "cell", f"[{ex.execution_count}]", ex.run_mode.value, state))
        _print_table(rows)

    @line_magic
    def tasks(self, line: str = "") -> None:
        """List background tasks started with get_kernel().background.spawn(...)."""
        rows = [("Name", "Started by", "State")]
        for task in self.kernel.background.list():
            cell = f"[{task.started_by}]" if task.started_by is not None else "-"
            rows.append((task.name, cell, "done" if task.done else "running"))
        _print_table(rows)

    @line_magic
    def stop(self, line: str) -> None:
        """Stop a background task by name: %stop NAME"""
        name = line.strip()
        if not name:
            print("usage: %stop NAME  (see %tasks)")
            return
        self.kernel.background.stop(name)
        print(f"stopping {name!r}")


    @line_magic
    def autoawait(self, line: str = "") -> None:
        """IPython's %autoawait, but top-level await runs on the kernel's own loop: another library's runner would
        fail at the first await ("must be called from async context"), so say how to run such code here."""
        from IPython.core.magics.basic import AsyncMagics

        wanted = line.strip().lower()
        if wanted in ("asyncio", "trio", "curio") and wanted != self.kernel.backend:
            how = "curio is not supported" if wanted == "curio" else (
                f"put `%%{wanted}` on a cell's first line (it runs on a {wanted} loop in a worker thread), "
                f"or start a kernel with `--backend {wanted}`")
            print(f"This kernel awaits on its own {self.kernel.backend} event loop, so the {wanted} runner is not "
                  f"switched on: {how}.")
            return
        AsyncMagics(shell=self.shell).autoawait(line)

    @line_cell_magic
    def thread(self, line: str, cell: str | None = None) -> Any:
        """Run code in a new worker thread with its own event loop: `%thread CODE` or `%%thread`."""
        return self._run_elsewhere(cell if cell is not None else line, self.kernel.backend)

    @line_cell_magic
    def trio(self, line: str, cell: str | None = None) -> Any:
        """Run code with the trio backend: `%trio await trio.sleep(1)` or `%%trio`."""
        return self._run_with_backend("trio", cell if cell is not None else line)

    @line_cell_magic
    def asyncio(self, line: str, cell: str | None = None) -> Any:
        """Run code with the asyncio backend: `%asyncio await asyncio.sleep(1)` or `%%asyncio`."""
        return self._run_with_backend("asyncio", cell if cell is not None else line)

    def _run_with_backend(self, backend: str, code: str) -> Any:
        if backend_name() == backend:  # already on that backend: run right here, in this cell's task
            return _run_code(self.shell, code)
        return self._run_elsewhere(code, backend)

    async def _run_elsewhere(self, code: str, backend: str) -> None:
        """Run `code` on a fresh event loop in a worker thread; this cell's context (and output) goes along."""
        if IS_PYODIDE:
            raise RuntimeError("this needs a thread, and Pyodide has no threads; run the code in the cell directly")
        done = aiologic.Event()
        parent, execution = current_parent.get(), current_execution.get()
        failure: list[BaseException] = []

        def work() -> None:
            # Only our context goes along: a copied context would tell anyio a loop already runs here.
            current_parent.set(parent)
            current_execution.set(execution)
            try:
                anyio.run(_run_code, self.shell, code, backend=backend)
            except BaseException as exc:
                failure.append(exc)
            finally:
                done.set()

        threading.Thread(target=work, name=f"magic-{backend}", daemon=True).start()
        await done
        if failure:
            raise failure[0]


async def _run_code(shell: Any, code: str) -> None:
    result = await shell.run_cell_async(code, store_history=False, transformed_cell=shell.transform_cell(code))
    execution = current_execution.get()
    if execution is not None and not result.success:
        execution.failed_elsewhere = True  # its traceback is already shown


_ASYNC_MAGICS = frozenset({"thread", "trio", "asyncio"})


class AwaitAsyncMagics(ast.NodeTransformer):
    """Await the result of %thread / %trio / %asyncio, so the cell waits for the code they run elsewhere."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and func.attr in ("run_line_magic", "run_cell_magic")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in _ASYNC_MAGICS
        ):
            return ast.copy_location(ast.Await(value=node), node)
        return node


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def register_magics(shell: Any, kernel: Kernel) -> None:
    from .kernel_magics import KernelMagics

    shell.register_magics(ConcurrencyMagics(shell, kernel))
    shell.register_magics(KernelMagics(shell, kernel))
    shell.magics_manager.register_alias("ed", "edit")
    shell.ast_transformers.append(AwaitAsyncMagics())
