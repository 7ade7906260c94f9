"""Run a fake server in a thread with its own event loop, for tests that block (the CLI in a subprocess)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tests.fakes.base import FakeServer

F = TypeVar("F", bound=FakeServer)


@contextmanager
def threaded(make: Callable[[], F]) -> Iterator[F]:
    """``with threaded(JiraFake) as fake:`` the fake answers on ``fake.url`` until the block ends."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            box["fake"] = await make().start()
            ready.set()

        loop.run_until_complete(boot())
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    if not ready.wait(10):
        raise RuntimeError("the fake server did not start")
    fake: F = box["fake"]
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)
        loop.close()
