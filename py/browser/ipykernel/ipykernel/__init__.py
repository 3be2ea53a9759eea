"""A stand-in for ipykernel in concurrent-kernel's browser kernel (Pyodide), where the real one cannot run (pyzmq).

It is installed so that packages which require ipykernel install with `%pip` / micropip (they find it installed),
and so that `from ipykernel.comm import Comm` works: comms go through this kernel's own (`concurrent_kernel.services
.comms`). It has no kernel of its own: `get_ipython().kernel` is this kernel.
"""

from ._version import __version__, kernel_protocol_version, kernel_protocol_version_info, version_info

__all__ = ["__version__", "kernel_protocol_version", "kernel_protocol_version_info", "version_info"]
