from __future__ import annotations

import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from memory_client import MemoryClient, serving_kernel


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def client(anyio_backend: str) -> AsyncIterator[MemoryClient]:
    """A kernel served on the test's own event loop, with an in-memory transport."""
    async with serving_kernel(anyio_backend) as memory_client:
        yield memory_client


@pytest.fixture(scope="module", autouse=True)
def no_kernel_client_left_running() -> Iterator[None]:
    """A jupyter_client client whose channels are never stopped keeps pinging its ended kernel's port from a
    heartbeat thread (a stray peer for whatever binds that port next: debugpy's adapter read it in CI), and its
    garbage collection destroys the zmq context under that thread, which aborted the whole test run once."""
    try:
        from jupyter_client.channels import HBChannel
    except ImportError:  # the core tests inside Pyodide: no clients there
        yield
        return
    before = {t for t in threading.enumerate() if isinstance(t, HBChannel)}
    yield
    left = [t for t in threading.enumerate() if isinstance(t, HBChannel) and t not in before and t.is_alive()]
    assert not left, f"{len(left)} kernel client(s) left with running channels: call stop_channels()"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: pytest-playwright's sync API keeps an event loop running in this thread for the rest
    of the session, and anyio cannot start another one after it."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
