"""Context variables that carry the current request, so output from any task or thread lands in the right cell."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._execution import Execution

#: The request message whose outputs are being produced (parent_header of every iopub message).
current_parent: ContextVar[dict[str, Any] | None] = ContextVar("concurrent_kernel_parent", default=None)
#: The cell execution running in this context, if any (error/payload capture, interrupt).
current_execution: ContextVar[Execution | None] = ContextVar("concurrent_kernel_execution", default=None)
