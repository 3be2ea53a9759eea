"""Backend-neutral helpers for talking to an event loop from another thread."""

from __future__ import annotations

import sys
from collections.abc import Callable

import sniffio

CallSoon = Callable[[Callable[[], object]], None]

IS_PYODIDE = sys.platform == "emscripten"


def current_call_soon_threadsafe() -> CallSoon:
    """Return a function that schedules a plain callable on the running loop from any thread or signal handler."""
    library = sniffio.current_async_library()
    if library == "trio":
        import trio

        token = trio.lowlevel.current_trio_token()
        return lambda fn: token.run_sync_soon(fn)
    import asyncio

    loop = asyncio.get_running_loop()
    return lambda fn: loop.call_soon_threadsafe(fn)


def backend_name() -> str:
    return sniffio.current_async_library()
