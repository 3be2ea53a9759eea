"""The kernel_info_reply content. Light on imports: the ZMQ transport answers kernel_info with it while the
rest of the kernel is still importing."""

from __future__ import annotations

import functools
import platform
import sys
from typing import Any

from . import __version__
from ._protocol import (
    FEATURE_DEBUGGER,
    IMPLEMENTATION,
    LANGUAGE_INFO_NAME,
    PROTOCOL_VERSION,
    SUPPORTED_FEATURES,
    ReplyStatus,
)


@functools.cache
def _banner() -> str:
    from importlib.metadata import version

    return (
        f"Python {sys.version.split()[0]} | IPython {version('ipython')} | concurrent-kernel {__version__}\n"
        "Concurrent cells: '# task' or '# thread' on the first line; %callers, %tasks, %thread, %trio, %asyncio.\n"
    )


def debugger_available() -> bool:
    """CPython with debugpy installed (found, not imported: importing it costs start-up time); Pyodide with
    sys.monitoring (where the page decides whether to offer it: services/debugger/monitoring.py)."""
    if sys.platform == "emscripten":
        return hasattr(sys, "monitoring")
    from importlib.util import find_spec

    return find_spec("debugpy") is not None


def kernel_info(debugger: bool = False) -> dict[str, Any]:
    """`debugger`: the kernel answers debug_request (JupyterLab then offers its debugger panel)."""
    features = [*SUPPORTED_FEATURES, FEATURE_DEBUGGER] if debugger else list(SUPPORTED_FEATURES)
    return {
        "status": ReplyStatus.OK,
        "protocol_version": PROTOCOL_VERSION,
        "implementation": IMPLEMENTATION,
        "implementation_version": __version__,
        "language_info": {
            "name": LANGUAGE_INFO_NAME,
            "version": platform.python_version(),
            "mimetype": "text/x-python",
            "codemirror_mode": {"name": "ipython", "version": 3},
            "pygments_lexer": "ipython3",
            "nbconvert_exporter": "python",
            "file_extension": ".py",
        },
        "banner": _banner(),
        "help_links": [
            {"text": "Python Reference", "url": "https://docs.python.org/3/"},
            {"text": "IPython Reference", "url": "https://ipython.readthedocs.io/en/stable/"},
        ],
        "supported_features": features,
        "debugger": debugger,
    }
