"""How libraries tell a Jupyter kernel from a terminal, answered as ipykernel answers it.

Progress bars, rich text and plotting libraries switch to notebook output (widgets, HTML) only when they believe
they run in an ipykernel. The shell's class name (services/shell.py) and the `IPKernelApp` config section
(services/ipython_app.py) answer most of them; tqdm (`tqdm.auto`, used by many libraries) looks for the module
`ipykernel.zmqshell` in `sys.modules`. That module is made present just before tqdm decides, not at start-up: the
real one when ipykernel is installed (a few milliseconds once IPython and jupyter_client are loaded), otherwise a
small module whose `ZMQInteractiveShell` is this kernel's shell class.
"""

from __future__ import annotations

import importlib.util
import sys
import types

from .import_hooks import before_import

ZMQSHELL = "ipykernel.zmqshell"


def _provide_zmqshell() -> None:
    if ZMQSHELL in sys.modules:
        return
    if importlib.util.find_spec("ipykernel") is not None:
        import ipykernel.zmqshell  # noqa: F401
        return
    from .shell import ZMQInteractiveShell

    module = types.ModuleType(ZMQSHELL, "This kernel's shell, under the name libraries look for (services/detection).")
    module.ZMQInteractiveShell = ZMQInteractiveShell  # type: ignore[attr-defined]
    sys.modules[ZMQSHELL] = module


def install() -> None:
    before_import("tqdm.autonotebook", _provide_zmqshell)
