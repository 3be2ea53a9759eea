"""The name the JupyterLite worker imports; the transport lives in `transports.callback`."""

from __future__ import annotations

from .transports.callback import CallbackTransport, start, warm_up

__all__ = ["CallbackTransport", "start", "warm_up"]
