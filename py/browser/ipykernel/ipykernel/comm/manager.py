"""ipykernel's CommManager: the kernel's own comm manager, the one comm messages reach."""

from __future__ import annotations

from typing import Any

import comm
from comm.base_comm import CommManager as _BaseCommManager


class CommManager(_BaseCommManager):
    """`CommManager(...)` returns this kernel's comm manager (`get_ipython().kernel.comm_manager`), as the stock
    JupyterLite kernel's stand-in does: targets registered on it receive the front end's comm_open. (ipykernel would
    make a new manager that no message reaches.) Arguments, such as `kernel=`, are accepted and ignored."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return comm.get_comm_manager()


__all__ = ["CommManager"]
