from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import anyio
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from memory_client import MemoryClient


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def client(anyio_backend: str) -> AsyncIterator[MemoryClient]:
    """A kernel served on the test's own event loop, with an in-memory transport."""
    from traitlets.config import Config

    from concurrent_kernel._kernel import Kernel
    from concurrent_kernel.transports.memory import MemoryTransport

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    transport = MemoryTransport()
    kernel = Kernel(transport, backend=anyio_backend, config=config)
    memory_client = MemoryClient(transport)
    memory_client.kernel = kernel  # type: ignore[attr-defined]
    async with anyio.create_task_group() as tg:
        ready = anyio.Event()
        tg.start_soon(partial(kernel.serve, ready=ready.set))
        with anyio.fail_after(30):
            await ready.wait()
        tg.start_soon(memory_client.collect)
        try:
            yield memory_client
        finally:
            kernel.stop()
            with anyio.move_on_after(5):
                while not kernel.closed:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: pytest-playwright's sync API keeps an event loop running in this thread for the rest
    of the session, and anyio cannot start another one after it."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
