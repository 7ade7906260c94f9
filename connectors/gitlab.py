"""GitLab REST v4: issues, merge requests, pipelines (trigger, status), and the webhook receiver.

Auth: ``PRIVATE-TOKEN`` (a personal, project or group access token; the default) or
``auth=bearer`` (an OAuth token as ``Authorization: Bearer``).  Projects are a numeric id or a
path, sent URL-encoded (``group%2Fapp``).  Lists follow the ``Link`` header (offset or keyset;
never page counts, which GitLab leaves out above 10,000 rows).  Rate limits: GitLab's 429 often
has no ``RateLimit-*``/``Retry-After`` header at all; then the policy's capped backoff applies,
else ``Retry-After`` or ``RateLimit-Reset``.  Writes refuse redirects: a redirected POST/PUT
would arrive as a GET (python-gitlab refuses them too).  Items musubi manages carry the label
``musubi`` and the Markdown marker of :func:`connectors.settings.body_with_marker`.

Inbound: :func:`verify_webhook` compares ``X-Gitlab-Token`` with the configured secret in
constant time (it is the plain secret, not an HMAC); :func:`webhook_app` is a small aiohttp app
that checks it, parses the event, de-duplicates GitLab's retries by ``Idempotency-Key`` and
hands the event on, answering 2xx at once.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

from aiohttp import web

from connectors.http import HttpClient, RetryPolicy, gitlab_rate_limit_reset
from connectors.paging import link_pages
from connectors.settings import base_url, body_with_marker, from_marker, need, secret
from core.integrations.contracts import (
    IntegrationError,
    PipelineRun,
    RemoteItem,
    WorkItem,
    text_fingerprint,
)
from core.integrations.signing import gitlab_token_ok

_STATES = {"created": "queued", "waiting_for_resource": "queued", "preparing": "queued", "pending": "queued",
           "scheduled": "queued", "manual": "queued", "running": "running", "success": "success",
           "failed": "failed", "canceled": "canceled", "skipped": "canceled"}
EVENTS = ("Issue Hook", "Merge Request Hook", "Pipeline Hook", "Note Hook", "Push Hook", "Job Hook",
          "Tag Push Hook", "Release Hook")


class GitLabConnector:
    """The ``gitlab`` connector: Tracker (issues), Pipelines, merge requests."""

    system = "gitlab"

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str], *, policy: RetryPolicy | None = None,
                 timeout_s: float = 30.0) -> None:
        token = secret(secrets, self.system)
        api = base_url(settings, self.system, "url", "https://gitlab.com", "https://gitlab.example.com")
        auth = settings.get("auth", "token")
        if auth == "token":
            headers = {"PRIVATE-TOKEN": token}
        elif auth == "bearer":
            headers = {"Authorization": f"Bearer {token}"}
        else:
            raise IntegrationError(f"gitlab: auth must be 'token' (PRIVATE-TOKEN) or 'bearer', not {auth!r}.",
                                   kind="config", system=self.system)
        self.project = str(settings.get("project") or "")
        self.trigger_token = secrets.get("trigger_token")
        self.http = HttpClient(self.system, f"{api}/api/v4", headers=headers,
                               secrets=[token, self.trigger_token], timeout_s=timeout_s,
                               policy=policy or RetryPolicy(reset_hooks=(gitlab_rate_limit_reset,)))

    async def close(self) -> None:
        await self.http.aclose()

    def _p(self, project: str | None) -> str:
        key = project or self.project
        if not key:
            need({}, self.system, "project", "group/app")
        return quote(str(key), safe="")

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        resp = await self.http.request(method, path, **kw)  # writes never follow a redirect (connectors/http)
        return resp.json() if resp.body else None

    async def test(self) -> dict[str, Any]:
        me = await self._json("GET", "/user")
        return {"system": self.system, "account": me.get("username")}

    # -- tracker ----------------------------------------------------------------------------

    def _remote(self, issue: dict[str, Any]) -> RemoteItem | None:
        body = str(issue.get("description") or "")
        marked = from_marker(body)
        if marked is None:
            return None
        state = str(issue.get("state") or "")
        return RemoteItem(
            artefact=marked[0], key=f"#{issue['iid']}", id=str(issue["iid"]), url=str(issue.get("web_url", "")),
            title=str(issue.get("title") or ""), status=state, done=state == "closed",
            fingerprint=text_fingerprint(issue.get("title"), body), parent_key=marked[2], extra={"pushed": marked[1]},
        )

    async def list_managed(self, project: str, max_items: int) -> list[RemoteItem]:
        out = []
        async for issue in link_pages(self.http, f"/projects/{self._p(project)}/issues",
                                      {"labels": "musubi", "state": "all", "per_page": 100, "order_by": "created_at",
                                       "sort": "asc"}, max_items=max_items, what="GitLab issues"):
            r = self._remote(issue)
            if r is not None:
                out.append(r)
        return out

    async def create(self, project: str, item: WorkItem, parent_key: str | None) -> RemoteItem:
        body = {"title": item.title[:255], "description": _description(item, parent_key),
                "labels": f"musubi,musubi:{item.kind}"}
        return self._checked(await self._json("POST", f"/projects/{self._p(project)}/issues", json=body))

    async def update(self, project: str, remote: RemoteItem, item: WorkItem, parent_key: str | None) -> RemoteItem:
        body = {"title": item.title[:255], "description": _description(item, parent_key)}
        return self._checked(await self._json("PUT", f"/projects/{self._p(project)}/issues/{remote.id}", json=body))

    def _checked(self, issue: Any) -> RemoteItem:
        got = self._remote(issue) if isinstance(issue, dict) else None
        if got is None:
            raise IntegrationError("gitlab: the issue came back without musubi's marker.", system=self.system)
        return got

    async def note(self, iid: int, text: str, project: str | None = None, on: str = "issues") -> dict[str, Any]:
        return dict(await self._json("POST", f"/projects/{self._p(project)}/{on}/{iid}/notes", json={"body": text}))

    async def set_state(self, iid: int, closed: bool, project: str | None = None) -> dict[str, Any]:
        return dict(await self._json("PUT", f"/projects/{self._p(project)}/issues/{iid}",
                                     json={"state_event": "close" if closed else "reopen"}))

    async def open_merge_request(self, source: str, target: str, title: str, description: str = "",
                                 project: str | None = None) -> dict[str, Any]:
        mr = await self._json("POST", f"/projects/{self._p(project)}/merge_requests",
                              json={"source_branch": source, "target_branch": target, "title": title,
                                    "description": description, "remove_source_branch": True})
        return {"iid": mr["iid"], "url": mr["web_url"], "state": mr["state"]}

    # -- pipelines --------------------------------------------------------------------------

    def _run(self, p: dict[str, Any]) -> PipelineRun:
        status = str(p.get("status") or "")
        return PipelineRun(self.system, str(p["id"]), str(p.get("ref") or ""), _STATES.get(status, "unknown"), status,
                           str(p.get("web_url", "")), str(p.get("sha", "")), f"pipeline #{p.get('iid', p['id'])}")

    async def pipeline_status(self, project: str, ref: str) -> list[PipelineRun]:
        rows = await self._json("GET", f"/projects/{self._p(project or None)}/pipelines",
                                params={"ref": ref, "per_page": 5, "order_by": "id", "sort": "desc"})
        return [self._run(p) for p in rows or []]

    async def pipeline(self, pipeline_id: int, project: str | None = None) -> PipelineRun:
        return self._run(await self._json("GET", f"/projects/{self._p(project)}/pipelines/{pipeline_id}"))

    async def run_pipeline(self, ref: str, variables: Mapping[str, str] | None = None,
                           project: str | None = None) -> PipelineRun:
        """Create a pipeline for ``ref``: with the trigger token when one is stored, else with the API token."""
        p = self._p(project)
        if self.trigger_token:
            form = {"token": self.trigger_token, "ref": ref,
                    **{f"variables[{k}]": v for k, v in (variables or {}).items()}}
            made = await self._json("POST", f"/projects/{p}/trigger/pipeline", data=form)
        else:
            body = {"variables": [{"key": k, "value": v, "variable_type": "env_var"}
                                  for k, v in (variables or {}).items()]}
            made = await self._json("POST", f"/projects/{p}/pipeline", params={"ref": ref}, json=body)
        return self._run(made)


def _description(item: WorkItem, parent_key: str | None) -> str:
    return body_with_marker(item, (parent_key or "").lstrip("#") or None)


# -- webhooks (GitLab -> us) ------------------------------------------------------------------


def verify_webhook(headers: Mapping[str, str], secret_token: str) -> bool:
    """Whether ``X-Gitlab-Token`` equals the configured secret (constant-time; empty never matches)."""
    return gitlab_token_ok(secret_token, headers.get("X-Gitlab-Token"))


def webhook_app(secret_token: str, on_event: Callable[[dict[str, Any]], Awaitable[None]],
                remember: int = 1000) -> web.Application:
    """An aiohttp app answering ``POST /hooks/gitlab``: 401 on a bad token, 400 on a bad body, else 202.

    ``on_event`` receives ``{"event", "kind", "idempotency_key", "payload"}``; a retry carrying an
    ``Idempotency-Key`` already seen is acknowledged (200) and not handed on twice.
    """
    seen: OrderedDict[str, None] = OrderedDict()

    async def handle(request: web.Request) -> web.Response:
        if not verify_webhook(request.headers, secret_token):
            return web.json_response({"error": "invalid X-Gitlab-Token"}, status=401)
        raw = await request.read()
        try:
            payload = json.loads(raw)
        except ValueError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
        if not isinstance(payload, dict) or not isinstance(payload.get("object_kind"), str):
            return web.json_response({"error": "no object_kind: not a GitLab event"}, status=400)
        key = request.headers.get("Idempotency-Key")
        if key:
            if key in seen:
                return web.json_response({"duplicate": True}, status=200)
            seen[key] = None
            while len(seen) > remember:
                seen.popitem(last=False)
        await on_event({"event": request.headers.get("X-Gitlab-Event", ""), "kind": payload["object_kind"],
                        "idempotency_key": key, "payload": payload})
        return web.json_response({"accepted": True}, status=202)

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/hooks/gitlab", handle)
    return app


def factory(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> GitLabConnector:
    """Entry point ``musubi.connectors: gitlab``."""
    return GitLabConnector(settings, secrets)
