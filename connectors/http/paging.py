"""A generic paging helper: an async generator over items of cursor-paged answers.

Vendor schemes (Jira ``nextPageToken``/``isLast``, Azure DevOps continuation tokens, GitLab
``Link``/keyset, Slack ``next_cursor``, GitHub ``Link``) are the connectors' own: each
writes a ``fetch(cursor) -> (items, next_cursor)`` and gets the guards here for free:
a ``max_items`` cap (a runaway query is stopped, not silently truncated, unless the caller
asks to stop quietly) and a repeated-cursor check (a vendor bug must not loop forever).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Generic, Literal, TypeVar

from core.errors import MusubiError

T = TypeVar("T")
C = TypeVar("C")


class TooManyItems(MusubiError):
    """A paged listing went past its ``max_items`` guard (CLI exit 1)."""

    code = "too_many_items"
    http_status = 502


class Page(Generic[T, C]):
    """One page: its items and the cursor of the next page (None: this was the last)."""

    __slots__ = ("items", "next")

    def __init__(self, items: Sequence[T], next: C | None) -> None:  # noqa: A002 - the vendors' word
        self.items = items
        self.next = next


async def paginate(
    fetch: Callable[[C | None], Awaitable[Page[T, C]]], *, max_items: int, start: C | None = None,
    on_limit: Literal["raise", "stop"] = "raise", what: str = "items",
) -> AsyncIterator[T]:
    """Yield every item of every page, first page fetched with ``start``.

    Past ``max_items`` it raises :class:`TooManyItems` (``on_limit="raise"``, the default) or
    simply stops (``"stop"``).  A cursor that comes back twice ends the listing with an error.
    """
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    seen: set[object] = set()
    cursor = start
    count = 0
    while True:
        page = await fetch(cursor)
        for item in page.items:
            if count >= max_items:
                if on_limit == "stop":
                    return
                raise TooManyItems(
                    f"more than {max_items} {what}: narrow the query or raise the limit", max_items=max_items
                )
            count += 1
            yield item
        if page.next is None or not page.items and page.next == cursor:
            return
        key = repr(page.next)
        if key in seen or page.next == cursor:
            raise MusubiError(f"the vendor sent the same page cursor twice while listing {what}; stopped",
                              code="paging_loop")
        seen.add(key)
        cursor = page.next
