"""The engine's live event stream: audit events, quota alerts, later run status.

Subscribers get a bounded queue; a slow subscriber loses its oldest events and
is told so (a ``dropped`` count) rather than slowing the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

QUEUE_SIZE = 1000


@dataclass(eq=False)
class Subscriber:
    tenant: str
    allow: Callable[[dict[str, Any]], bool]
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: int = 0


class EventBus:
    """Fan-out of committed events to subscribers of one tenant."""

    def __init__(self) -> None:
        self._subs: set[Subscriber] = set()

    def subscribe(self, tenant: str, allow: Callable[[dict[str, Any]], bool]) -> Subscriber:
        sub = Subscriber(tenant, allow)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.discard(sub)

    def publish(self, tenant: str, event: dict[str, Any]) -> None:
        for sub in list(self._subs):
            if sub.tenant != tenant or not sub.allow(event):
                continue
            if sub.queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    sub.queue.get_nowait()
                sub.dropped += 1
            sub.queue.put_nowait(event)

    def __len__(self) -> int:
        return len(self._subs)
