from __future__ import annotations

import sys
from collections.abc import AsyncIterator
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests last: pytest-playwright's sync API keeps an event loop running in this thread for the rest
    of the session, and anyio cannot start another one after it."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
