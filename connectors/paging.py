"""Vendor paging schemes on top of :func:`connectors.http.paginate` (which holds the guards).

* ``Link`` header (GitHub, GitLab offset and keyset): follow ``rel="next"`` exactly as given
  (keyset cursors are opaque), stop when it is absent or the page is empty (GitLab's tags API
  sends a next page on the last one, gitlab#471566);
* Jira ``nextPageToken`` / ``isLast``;
* Azure DevOps ``x-ms-continuationtoken`` header (or ``continuationToken`` in the body);
* Slack ``response_metadata.next_cursor`` (an empty string means done).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from connectors.http import HttpClient, Page, paginate

_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([^";]+)"?')


def link_next(headers: Mapping[str, str]) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, else None."""
    value = headers.get("Link") or headers.get("link")
    if not value:
        return None
    for url, rels in _LINK.findall(value):
        if "next" in rels.split():
            return url
    return None


def _with(params: Mapping[str, Any], name: str, cursor: str | None) -> dict[str, Any]:
    """``params`` plus the cursor under ``name`` (the first page has none)."""
    return {**params, name: cursor} if cursor else dict(params)


def link_pages(client: HttpClient, path: str, params: Mapping[str, Any], *, max_items: int,
               what: str) -> AsyncIterator[Any]:
    """Items of a JSON-array listing paged by ``Link`` headers."""

    async def fetch(cursor: str | None) -> Page[Any, str]:
        resp = await client.request("GET", cursor or path, params=None if cursor else params)
        items = resp.json()
        if not isinstance(items, list):
            items = []
        return Page(items, link_next(resp.headers) if items else None)

    return paginate(fetch, max_items=max_items, what=what)


def jira_token_pages(client: HttpClient, path: str, body: Mapping[str, Any], *, max_items: int,
                     what: str) -> AsyncIterator[Any]:
    """Issues of Jira's ``POST /search/jql``: ``nextPageToken`` until ``isLast`` (or no token)."""

    async def fetch(cursor: str | None) -> Page[Any, str]:
        # A search changes nothing, so retrying the POST is safe.
        data = (await client.request("POST", path, json=_with(body, "nextPageToken", cursor), idempotent=True)).json()
        token = data.get("nextPageToken")
        last = bool(data.get("isLast", not token))
        return Page(list(data.get("issues") or []), None if last or not token else str(token))

    return paginate(fetch, max_items=max_items, what=what)


def ado_continuation_pages(client: HttpClient, path: str, params: Mapping[str, Any], *, max_items: int,
                           what: str) -> AsyncIterator[Any]:
    """``{"count", "value"}`` pages chained by ``x-ms-continuationtoken`` (header, else body)."""

    async def fetch(cursor: str | None) -> Page[Any, str]:
        resp = await client.request("GET", path, params=_with(params, "continuationToken", cursor))
        data = resp.json()
        token = resp.headers.get("x-ms-continuationtoken") or (data.get("continuationToken") if isinstance(data, dict)
                                                               else None)
        return Page(list(data.get("value") or []) if isinstance(data, dict) else [], token or None)

    return paginate(fetch, max_items=max_items, what=what)


def slack_cursor_pages(client: HttpClient, method: str, params: Mapping[str, Any], key: str, *,
                       max_items: int) -> AsyncIterator[Any]:
    """Items under ``key`` of a Slack list method, following ``response_metadata.next_cursor``."""

    async def fetch(cursor: str | None) -> Page[Any, str]:
        data = (await client.request("GET", f"/api/{method}", params=_with(params, "cursor", cursor))).json()
        nxt = (data.get("response_metadata") or {}).get("next_cursor") or None
        return Page(list(data.get(key) or []), nxt)

    return paginate(fetch, max_items=max_items, what=key)
