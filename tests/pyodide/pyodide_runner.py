"""A pytest plugin for running async tests inside Pyodide (loaded with `-p pyodide_runner`).

anyio's pytest plugin cannot run there: Pyodide's WebLoop always counts as running, so it refuses to
start its runner. Here every async test and async fixture runs in ONE long-lived task on the WebLoop
(as anyio's runner does, so cancel scopes opened by a fixture stay in their task), and the synchronous
pytest code blocks on it with `pyodide.ffi.run_sync` (JSPI: Python must be entered via callPromising).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pyodide.ffi import run_sync


class _Runner:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def _main(self) -> None:
        assert self._queue is not None
        while True:
            make, future = await self._queue.get()
            try:
                result = await make()
            except BaseException as exc:
                if not future.cancelled():
                    future.set_exception(exc)
            else:
                if not future.cancelled():
                    future.set_result(result)

    def call(self, make: Callable[[], Awaitable[Any]]) -> Any:
        loop = asyncio.get_event_loop()
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._main())
        future: asyncio.Future[Any] = loop.create_future()
        assert self._queue is not None
        self._queue.put_nowait((make, future))

        async def wait() -> Any:
            return await future

        return run_sync(wait())


RUNNER = _Runner()


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(fixturedef: Any, request: Any) -> None:
    func = fixturedef.func
    if getattr(func, "_ck_wrapped", False):
        return
    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        def agen_wrapper(*args: Any, **kwargs: Any) -> Any:
            agen = func(*args, **kwargs)
            yield RUNNER.call(agen.__anext__)

            async def finish() -> bool:
                try:
                    await agen.__anext__()
                except StopAsyncIteration:
                    return True
                return False

            if not RUNNER.call(finish):
                raise RuntimeError(f"async fixture {func.__name__} yielded twice")

        agen_wrapper._ck_wrapped = True  # type: ignore[attr-defined]
        fixturedef.func = agen_wrapper
    elif inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        def coro_wrapper(*args: Any, **kwargs: Any) -> Any:
            return RUNNER.call(lambda: func(*args, **kwargs))

        coro_wrapper._ck_wrapped = True  # type: ignore[attr-defined]
        fixturedef.func = coro_wrapper


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: Any) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    funcargs = pyfuncitem.funcargs
    kwargs = {name: funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    RUNNER.call(lambda: pyfuncitem.obj(**kwargs))
    return True
