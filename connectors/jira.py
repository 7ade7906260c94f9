"""Jira Cloud REST v3 (api-notes/connectors.md §1).

Auth: ``auth=basic`` (``email`` + API token as HTTP Basic, calls to the site URL) or
``auth=oauth`` (an OAuth 2.0 bearer token, calls to ``https://api.atlassian.com/ex/jira/{cloud_id}``).
Descriptions and comments are Atlassian Document Format.  Search is ``POST /search/jql``
paged by ``nextPageToken``/``isLast`` (the old ``/search`` answers 410; a 410 is turned into
a message naming the migration).  Remote links are upserted by ``globalId``, so re-sending
one is safe (it is retried like an idempotent call).  Items musubi manages carry the labels
``musubi``, ``musubi:<ID>`` and ``musubi-fp:<fingerprint>``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from connectors.http import HttpClient, NotFoundError, RetryPolicy, jira_rate_limit_reset
from connectors.paging import jira_token_pages
from connectors.settings import base_url, from_labels, marker_labels, need, secret
from core.integrations.contracts import IntegrationError, RemoteItem, WorkItem, text_fingerprint

API = "/rest/api/3"
FIELDS = ["summary", "description", "status", "labels", "parent", "issuetype"]
REMOVED_HINT = ("Jira removed this search API (CHANGE-2046); musubi searches with POST /rest/api/3/search/jql. "
                "If you see this, a proxy or an old Jira URL is in the way: check the 'url' setting.")


def adf(text: str, source: str = "", source_url: str | None = None) -> dict[str, Any]:
    """Plain text as an ADF document: paragraphs, ``- `` lines as a bullet list, and the spec location."""
    content: list[dict[str, Any]] = []
    bullets: list[dict[str, Any]] = []

    def flush() -> None:
        if bullets:
            content.append({"type": "bulletList", "content": list(bullets)})
            bullets.clear()

    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("- "):
            bullets.append({"type": "listItem", "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": line[2:]}]}]})
            continue
        flush()
        content.append({"type": "paragraph", "content": [{"type": "text", "text": line}]})
    flush()
    if source:
        mark: dict[str, Any] = {"type": "text", "text": source}
        if source_url:
            mark["marks"] = [{"type": "link", "attrs": {"href": source_url}}]
        content.append({"type": "paragraph", "content": [{"type": "text", "text": "Spec: "}, mark]})
    return {"type": "doc", "version": 1, "content": content}


def adf_text(doc: Any) -> str:
    """The text of an ADF document (comments, conflict reports)."""
    if isinstance(doc, dict):
        if doc.get("type") == "text":
            return str(doc.get("text", ""))
        sep = "\n" if doc.get("type") in ("doc", "bulletList") else ""
        return sep.join(adf_text(c) for c in doc.get("content") or [])
    return ""


class JiraConnector:
    """The ``jira`` connector: Tracker (sync), comments, transitions, remote links."""

    system = "jira"

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str], *, policy: RetryPolicy | None = None,
                 timeout_s: float = 30.0) -> None:
        token = secret(secrets, self.system)
        auth = settings.get("auth", "basic")
        if auth == "basic":
            email = need(settings, self.system, "email", "bot@example.com")
            base = base_url(settings, self.system, "url", None, "https://acme.atlassian.net")
            header = "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()
        elif auth == "oauth":
            cloud = need(settings, self.system, "cloud_id", "<id from accessible-resources>")
            api = base_url(settings, self.system, "api_url", "https://api.atlassian.com", "https://api.atlassian.com")
            base = f"{api}/ex/jira/{cloud}"
            header = "Bearer " + token
        else:
            raise IntegrationError(f"jira: auth must be 'basic' (email + API token) or 'oauth' (bearer), not {auth!r}.",
                                   kind="config", system=self.system)
        self.site = str(settings.get("url") or base).rstrip("/")
        self.types = {"requirement": str(settings.get("requirement_type") or "Epic"),
                      "task": str(settings.get("task_type") or "Story")}
        self.http = HttpClient(self.system, base, headers={"Authorization": header, "Accept": "application/json"},
                               secrets=[token], timeout_s=timeout_s,
                               policy=policy or RetryPolicy(reset_hooks=(jira_rate_limit_reset,)))

    async def close(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = await self.http.request(method, path, **kw)
        except NotFoundError as exc:
            if exc.status == 410:
                raise IntegrationError(f"{REMOVED_HINT} (Jira said: {exc.vendor_text})", kind="not_found",
                                       system=self.system, status=410, request_id=exc.request_id) from None
            raise
        return resp.json() if resp.body else None

    async def test(self) -> dict[str, Any]:
        me = await self._call("GET", f"{API}/myself")
        return {"system": self.system, "account": me.get("displayName") or me.get("accountId"), "url": self.site}

    # -- search -----------------------------------------------------------------------------

    async def search(self, jql: str, fields: list[str], max_items: int) -> list[dict[str, Any]]:
        """Every issue matching a bounded ``jql`` (all pages, at most ``max_items``)."""
        if not jql.strip():
            raise IntegrationError("jira: an empty JQL query is refused by Jira; give a bounded one (project = KEY).",
                                   kind="validation", system=self.system)
        out = []
        try:
            async for issue in jira_token_pages(self.http, f"{API}/search/jql",
                                                {"jql": jql, "fields": fields, "maxResults": 100},
                                                max_items=max_items, what="Jira issues"):
                out.append(issue)
        except NotFoundError as exc:
            if exc.status == 410:
                raise IntegrationError(f"{REMOVED_HINT} (Jira said: {exc.vendor_text})", kind="not_found",
                                       system=self.system, status=410) from None
            raise
        return out

    def _remote(self, issue: dict[str, Any]) -> RemoteItem | None:
        f = issue.get("fields") or {}
        artefact, pushed = from_labels(list(f.get("labels") or []))
        if artefact is None:
            return None
        status = f.get("status") or {}
        parent = (f.get("parent") or {}).get("key")
        return RemoteItem(
            artefact=artefact, key=issue["key"], id=str(issue.get("id", "")), url=f"{self.site}/browse/{issue['key']}",
            title=str(f.get("summary") or ""), status=str(status.get("name") or ""),
            done=(status.get("statusCategory") or {}).get("key") == "done",
            fingerprint=text_fingerprint(f.get("summary"), f.get("description"), parent,
                                         (f.get("issuetype") or {}).get("name")),
            parent_key=parent, extra={"pushed": pushed},
        )

    async def list_managed(self, project: str, max_items: int) -> list[RemoteItem]:
        jql = f'project = "{_quote(project)}" AND labels = musubi ORDER BY key ASC'
        issues = await self.search(jql, FIELDS, max_items)
        return [r for r in (self._remote(i) for i in issues) if r is not None]

    async def get(self, key: str) -> RemoteItem:
        issue = await self._call("GET", f"{API}/issue/{key}", params={"fields": ",".join(FIELDS)})
        got = self._remote(issue)
        if got is None:
            raise IntegrationError(f"jira: {key} has lost its musubi labels; it is no longer managed.",
                                   kind="validation", system=self.system)
        return got

    # -- writes -----------------------------------------------------------------------------

    def _fields(self, item: WorkItem, parent_key: str | None) -> dict[str, Any]:
        return {"summary": item.title[:255], "description": adf(item.body, item.source, item.source_url),
                "labels": marker_labels(item.artefact, item.fingerprint()),
                **({"parent": {"key": parent_key}} if parent_key else {})}

    async def create(self, project: str, item: WorkItem, parent_key: str | None) -> RemoteItem:
        fields = {"project": {"key": project}, "issuetype": {"name": self.types[item.kind]},
                  **self._fields(item, parent_key)}
        made = await self._call("POST", f"{API}/issue", json={"fields": fields})
        if item.source_url:
            await self.remote_link(made["key"], item.source_url, f"{item.artefact} in the spec",
                                   f"musubi:{item.artefact}")
        return await self.get(made["key"])

    async def update(self, project: str, remote: RemoteItem, item: WorkItem, parent_key: str | None) -> RemoteItem:
        await self._call("PUT", f"{API}/issue/{remote.key}", json={"fields": self._fields(item, parent_key)})
        if item.source_url:
            await self.remote_link(remote.key, item.source_url, f"{item.artefact} in the spec",
                                   f"musubi:{item.artefact}")
        return await self.get(remote.key)

    async def remote_link(self, key: str, url: str, title: str, global_id: str) -> dict[str, Any]:
        """Create or update (same ``global_id``) a remote link; an upsert, so it is retried safely."""
        body = {"globalId": global_id, "application": {"type": "musubi", "name": "Musubi"},
                "relationship": "specified by", "object": {"url": url, "title": title}}
        return dict(await self._call("POST", f"{API}/issue/{key}/remotelink", json=body, idempotent=True))

    async def comment(self, key: str, text: str) -> dict[str, Any]:
        return dict(await self._call("POST", f"{API}/issue/{key}/comment", json={"body": adf(text)}))

    async def transition(self, key: str, to: str) -> str:
        """Move ``key`` to the status (or transition) named ``to``; answers the transition id used."""
        listed = await self._call("GET", f"{API}/issue/{key}/transitions")
        options = listed.get("transitions") or []
        want = to.casefold()
        match = next((t for t in options if str(t.get("name", "")).casefold() == want
                      or str((t.get("to") or {}).get("name", "")).casefold() == want), None)
        if match is None:
            names = ", ".join(sorted({str((t.get("to") or {}).get("name")) for t in options})) or "none"
            raise IntegrationError(f"jira: {key} cannot move to {to!r} from its current status; "
                                   f"available now: {names}.", kind="validation", system=self.system)
        await self._call("POST", f"{API}/issue/{key}/transitions", json={"transition": {"id": match["id"]}})
        return str(match["id"])


def _quote(project: str) -> str:
    return project.replace("\\", "\\\\").replace('"', '\\"')


def factory(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> JiraConnector:
    """Entry point ``musubi.connectors: jira``."""
    return JiraConnector(settings, secrets)
