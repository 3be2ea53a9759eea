"""concurrent-kernel: a concurrent IPython kernel for Jupyter, on CPython (ZMQ) and in the browser (Pyodide)."""

from __future__ import annotations

__version__ = "0.1.0"

from ._context import get_parent, reset_parent, set_parent

__all__ = ["__version__", "get_kernel", "get_parent", "reset_parent", "set_parent"]


def get_kernel():  # type: ignore[no-untyped-def]
    """The kernel running this code (from a cell), or None."""
    from IPython import get_ipython

    shell = get_ipython()
    return getattr(shell, "kernel", None)
