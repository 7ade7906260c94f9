"""GitHub REST (issues, pull requests, Actions runs) with a fine-grained token.

Every call sends ``X-GitHub-Api-Version`` (setting ``api_version``, default 2022-11-28) and
``Accept: application/vnd.github+json``.  Lists page by the ``Link`` header.  Rate limits:
a 429, or a 403 whose body names a (secondary) rate limit or whose
``x-ratelimit-remaining`` is 0, is waited for (``retry-after``, else ``x-ratelimit-reset``)
and retried within the policy's caps; any other 403 is an auth failure.  The issues list
also returns pull requests (items with ``pull_request``); sync skips them.  Items musubi
manages carry the label ``musubi`` and the marker ``<!-- musubi:id=<ID> fp=<fingerprint> -->``
as the body's last line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connectors.http import HttpClient, RetryPolicy, github_rate_limit_reset
from connectors.paging import link_pages
from connectors.settings import base_url, body_with_marker, from_marker, need, secret
from core.integrations.contracts import (
    IntegrationError,
    PipelineRun,
    RemoteItem,
    WorkItem,
    text_fingerprint,
)

API_VERSION = "2022-11-28"
_STATES = {"queued": "queued", "waiting": "queued", "pending": "queued", "requested": "queued",
           "in_progress": "running"}
_CONCLUSIONS = {"success": "success", "failure": "failed", "timed_out": "failed", "startup_failure": "failed",
                "cancelled": "canceled", "skipped": "canceled", "neutral": "success", "action_required": "queued"}


def is_rate_limit(status: int, headers: Mapping[str, str], text: str) -> bool:
    """GitHub answers some rate limits with 403: a secondary limit, or an exhausted primary one."""
    if status != 403:
        return False
    return "rate limit" in text.lower() or headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers


class GitHubConnector:
    """The ``github`` connector: Tracker (issues), Pipelines (Actions runs), pull requests."""

    system = "github"

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str], *, policy: RetryPolicy | None = None,
                 timeout_s: float = 30.0) -> None:
        token = secret(secrets, self.system)
        self.repo = need(settings, self.system, "repo", "owner/name")
        api = base_url(settings, self.system, "api_url", "https://api.github.com", "https://api.github.com")
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                   "X-GitHub-Api-Version": str(settings.get("api_version") or API_VERSION)}
        self.http = HttpClient(self.system, api, headers=headers, secrets=[token], timeout_s=timeout_s,
                               policy=policy or RetryPolicy(reset_hooks=(github_rate_limit_reset,),
                                                            rate_limit_hint=is_rate_limit))

    async def close(self) -> None:
        await self.http.aclose()

    def _repo(self, project: str | None) -> str:
        repo = project or self.repo
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
            raise IntegrationError(f"github: {repo!r} is not owner/name (e.g. acme/app).", kind="config",
                                   system=self.system)
        return repo

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        resp = await self.http.request(method, path, **kw)
        return resp.json() if resp.body else None

    async def test(self) -> dict[str, Any]:
        me = await self._json("GET", "/user")
        repo = await self._json("GET", f"/repos/{self._repo(None)}")
        return {"system": self.system, "account": me.get("login"), "repo": repo.get("full_name")}

    # -- tracker ----------------------------------------------------------------------------

    def _remote(self, issue: dict[str, Any]) -> RemoteItem | None:
        if "pull_request" in issue:
            return None
        body = str(issue.get("body") or "")
        marked = from_marker(body)
        if marked is None:
            return None
        state = str(issue.get("state") or "")
        reason = issue.get("state_reason")
        return RemoteItem(
            artefact=marked[0], key=f"#{issue['number']}", id=str(issue["number"]), url=str(issue.get("html_url", "")),
            title=str(issue.get("title") or ""),
            status=f"{state} ({reason})" if reason and state == "closed" else state,
            done=state == "closed" and reason != "not_planned", fingerprint=text_fingerprint(issue.get("title"), body),
            parent_key=marked[2], extra={"pushed": marked[1]},
        )

    async def list_managed(self, project: str, max_items: int) -> list[RemoteItem]:
        repo = self._repo(project)
        out = []
        async for issue in link_pages(self.http, f"/repos/{repo}/issues",
                                      {"state": "all", "labels": "musubi", "per_page": 100},
                                      max_items=max_items, what="GitHub issues"):
            r = self._remote(issue)
            if r is not None:
                out.append(r)
        return out

    async def create(self, project: str, item: WorkItem, parent_key: str | None) -> RemoteItem:
        body = {"title": item.title[:256], "body": body_with_marker(item, (parent_key or "").lstrip("#") or None),
                "labels": ["musubi", f"musubi:{item.kind}"]}
        issue = await self._json("POST", f"/repos/{self._repo(project)}/issues", json=body)
        return self._checked(issue)

    async def update(self, project: str, remote: RemoteItem, item: WorkItem, parent_key: str | None) -> RemoteItem:
        body = {"title": item.title[:256], "body": body_with_marker(item, (parent_key or "").lstrip("#") or None)}
        issue = await self._json("PATCH", f"/repos/{self._repo(project)}/issues/{remote.id}", json=body)
        return self._checked(issue)

    def _checked(self, issue: Any) -> RemoteItem:
        got = self._remote(issue) if isinstance(issue, dict) else None
        if got is None:
            raise IntegrationError("github: the issue came back without musubi's marker.", system=self.system)
        return got

    async def comment(self, number: int, text: str, project: str | None = None) -> dict[str, Any]:
        return dict(await self._json("POST", f"/repos/{self._repo(project)}/issues/{number}/comments",
                                     json={"body": text}))

    async def set_state(self, number: int, closed: bool, project: str | None = None) -> dict[str, Any]:
        return dict(await self._json("PATCH", f"/repos/{self._repo(project)}/issues/{number}",
                                     json={"state": "closed" if closed else "open"}))

    async def pull_requests(self, project: str | None = None, max_items: int = 500) -> list[dict[str, Any]]:
        out = []
        async for pr in link_pages(self.http, f"/repos/{self._repo(project)}/pulls", {"state": "all", "per_page": 100},
                                   max_items=max_items, what="pull requests"):
            out.append({"number": pr["number"], "title": pr["title"], "state": pr["state"], "url": pr["html_url"],
                        "head": (pr.get("head") or {}).get("ref")})
        return out

    async def open_pull_request(self, title: str, head: str, base: str, body: str = "",
                                project: str | None = None) -> dict[str, Any]:
        pr = await self._json("POST", f"/repos/{self._repo(project)}/pulls",
                              json={"title": title, "head": head, "base": base, "body": body})
        return {"number": pr["number"], "url": pr["html_url"]}

    # -- pipelines --------------------------------------------------------------------------

    async def pipeline_status(self, project: str, ref: str) -> list[PipelineRun]:
        """The latest Actions runs for a branch (or, for a 40-hex ref, a commit)."""
        key = "head_sha" if re.fullmatch(r"[0-9a-f]{40}", ref) else "branch"
        data = await self._json("GET", f"/repos/{self._repo(project or None)}/actions/runs",
                                params={key: ref, "per_page": 10})
        runs = []
        for r in data.get("workflow_runs") or []:
            status = str(r.get("status") or "")
            conclusion = r.get("conclusion")
            if status == "completed":
                state = _CONCLUSIONS.get(str(conclusion), "unknown")
            else:
                state = _STATES.get(status, "unknown")
            runs.append(PipelineRun(self.system, str(r["id"]), str(r.get("head_branch") or ref), state,
                                    f"{status}/{conclusion}" if conclusion else status, str(r.get("html_url", "")),
                                    str(r.get("head_sha", "")), str(r.get("name", ""))))
        return runs

    async def dispatch(self, workflow: str, ref: str, inputs: Mapping[str, str] | None = None,
                       project: str | None = None) -> None:
        await self.http.request("POST", f"/repos/{self._repo(project)}/actions/workflows/{workflow}/dispatches",
                                json={"ref": ref, "inputs": dict(inputs or {})})


def factory(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> GitHubConnector:
    """Entry point ``musubi.connectors: github``."""
    return GitHubConnector(settings, secrets)
