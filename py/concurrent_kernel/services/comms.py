"""Comms through the `comm` package: its CommManager handles comm_* requests; our Comm publishes on iopub."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import comm
from comm.base_comm import BaseComm, CommManager

from .._protocol import MsgType
from .import_hooks import when_imported

if TYPE_CHECKING:
    from .._kernel import Kernel

_kernel: Kernel | None = None


class KernelComm(BaseComm):
    def publish_msg(
        self,
        msg_type: str,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[Any] | None = None,
        **keys: Any,
    ) -> None:
        _publish(self.comm_id, msg_type, data, metadata, buffers, **keys)

    def kernel_closed(self) -> bool:
        return _kernel is None or _kernel.closed


def _publish(
    comm_id: str,
    msg_type: str,
    data: dict[str, Any] | None,
    metadata: dict[str, Any] | None,
    buffers: list[Any] | None,
    **keys: Any,
) -> None:
    if _kernel is None or _kernel.closed:
        return
    content = {"data": data or {}, "comm_id": comm_id, **keys}
    _kernel.publish(MsgType(msg_type), content, metadata=metadata, buffers=buffers)


def _kernel_log_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(logging.Formatter("[concurrent-kernel comm %(levelname)s] %(message)s"))
    return handler


def _route_ipykernel_comms(module: Any) -> None:
    """`from ipykernel.comm import Comm` (matplotlib's nbagg backend, older widget libraries) when ipykernel is
    installed beside this kernel: its comms have no ipykernel Kernel to send through and would stay silent, so they
    send through this one. Their incoming messages already reach them (they register with this comm manager)."""
    base = module.BaseComm
    if getattr(base.publish_msg, "_concurrent_kernel", False):
        return

    def publish_msg(
        self: Any,
        msg_type: str,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[Any] | None = None,
        **keys: Any,
    ) -> None:
        _publish(self.comm_id, msg_type, data, metadata, buffers, **keys)

    publish_msg._concurrent_kernel = True  # type: ignore[attr-defined]
    base.publish_msg = publish_msg


def install(kernel: Kernel) -> CommManager:
    """Point the `comm` package (and so ipywidgets) at this kernel."""
    global _kernel
    _kernel = kernel
    # comm's complaints ("No such comm target registered: jupyter.widget.control" when a front end probes before
    # ipywidgets is imported) belong in the kernel's log, not as stray stderr in the notebook.
    comm_log = logging.getLogger("Comm")
    comm_log.propagate = False
    if not comm_log.handlers:
        comm_log.addHandler(_kernel_log_handler())
    manager = CommManager()
    comm.create_comm = KernelComm  # type: ignore[assignment]
    comm.get_comm_manager = lambda: manager  # type: ignore[assignment]
    when_imported("ipykernel.comm.comm", _route_ipykernel_comms)
    return manager
