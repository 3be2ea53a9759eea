"""Context variables that carry the current request, so output from any task or thread lands in the right cell."""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._execution import Execution

#: The request message whose outputs are being produced (parent_header of every iopub message).
current_parent: ContextVar[dict[str, Any] | None] = ContextVar("concurrent_kernel_parent", default=None)
#: The cell execution running in this context, if any (error/payload capture, interrupt).
current_execution: ContextVar[Execution | None] = ContextVar("concurrent_kernel_execution", default=None)


def get_parent() -> dict[str, Any] | None:
    """The request that output produced here belongs to (None outside any request)."""
    return current_parent.get()


def set_parent(parent: dict[str, Any] | None) -> Token[dict[str, Any] | None]:
    """Send what this thread (or task) prints and displays from now on to `parent`'s cell; returns the token for
    `reset_parent`. For library code that runs work for a cell on a thread the cell did not start (threads started
    by `threading.Thread`, thread pools, `to_thread` helpers already follow the cell that started them)."""
    return current_parent.set(parent)


def reset_parent(token: Token[dict[str, Any] | None]) -> None:
    """Undo the `set_parent` call that returned `token` (in the same thread or task)."""
    current_parent.reset(token)
