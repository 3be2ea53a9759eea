"""ipykernel's Comm, for code written against ipykernel (older widget libraries, matplotlib's nbagg backend)."""

from __future__ import annotations

import warnings
from typing import Any

from concurrent_kernel.services.comms import KernelComm


class BaseComm(KernelComm):
    """ipykernel's base class of comms (code subclasses it): published through this kernel."""


class Comm(BaseComm):
    """A comm published through this kernel, with ipykernel 7's arguments and its deprecation warning.

    `kernel=` is accepted and ignored: this kernel is the only one.
    """

    def __init__(
        self,
        target_name: str = "",
        data: Any = None,
        metadata: Any = None,
        buffers: Any = None,
        show_warning: bool = True,
        **kwargs: Any,
    ) -> None:
        if show_warning:
            warnings.warn(
                "The `ipykernel.comm.Comm` class has been deprecated. Please use the `comm` module instead."
                "For creating comms, use the function `from comm import create_comm`.",
                DeprecationWarning,
                stacklevel=2,
            )
        kwargs.pop("kernel", None)
        if target_name:
            kwargs["target_name"] = target_name
        super().__init__(data=data, metadata=metadata, buffers=buffers, **kwargs)


__all__ = ["BaseComm", "Comm"]
