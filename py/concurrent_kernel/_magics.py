"""Magics to inspect and steer the kernel's concurrency from a cell."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from IPython.core.magic import Magics, line_magic, magics_class

if TYPE_CHECKING:
    from ._kernel import Kernel


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


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def register_magics(shell: Any, kernel: Kernel) -> None:
    shell.register_magics(ConcurrencyMagics(shell, kernel))
