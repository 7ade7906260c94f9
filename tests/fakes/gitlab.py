"""A GitLab v4 fake (api-notes/connectors.md §3, checklist §8).

Projects are addressed by numeric id or URL-encoded path (``group%2Fapp``): routing reads the
raw path, so an encoded ``/`` never splits a segment.  Auth: ``PRIVATE-TOKEN`` or ``Bearer``
(401 ``{"message": "401 Unauthorized"}``).  Issues (create 201, get, update with
``state_event``, notes), merge requests, pipelines (create with ``ref`` + variables, trigger
with a form token, status).  Lists page by offset (``x-page``, ``x-next-page``, ``x-total``,
``Link`` built from the request host; totals and ``rel="last"`` left out above
``total_cap`` items, as gitlab.com does above 10,000) or keyset (``pagination=keyset``: only a
``Link`` ``rel="next"`` with an opaque cursor).  Validation errors put a dict in ``message``.
"""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tests.fakes.base import FakeServer, json_error

TERMINAL = ("success", "failed", "canceled", "skipped")


class GitLabFake(FakeServer):
    def __init__(self, token: str = "glpat-SECRETsecret1234", trigger_token: str = "glptt-TRIGGERsecret",
                 path: str = "acme/app", project_id: int = 5, total_cap: int = 10_000) -> None:
        super().__init__()
        self.token, self.trigger_token = token, trigger_token
        self.path, self.project_id, self.total_cap = path, project_id, total_cap
        self.issues: dict[int, dict[str, Any]] = {}
        self.merge_requests: dict[int, dict[str, Any]] = {}
        self.pipelines: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.polls_to_finish = 2  # a pipeline reads running this many times, then success
        self._ids = itertools.count(900)
        self.app.router.add_route("*", "/api/v4/{tail:.*}", self._dispatch)

    # -- helpers ------------------------------------------------------------------------------

    def _project_ok(self, raw: str) -> bool:
        return unquote(raw) in (self.path, str(self.project_id))

    def _page(self, request: web.Request, items: list[Any]) -> web.Response:
        q = dict(request.query)
        try:
            per = max(1, min(int(q.get("per_page", 20)), 100))
        except ValueError:
            return json_error(400, {"error": "per_page is invalid"})
        if q.get("pagination") == "keyset":
            after = int(q.get("id_after", 0))
            rows = [i for i in items if i["id"] > after][:per]
            headers = {}
            if rows and any(i["id"] > rows[-1]["id"] for i in items):
                nq = {**q, "id_after": str(rows[-1]["id"]), "cursor": f"c{rows[-1]['id']}"}
                headers["Link"] = f'<{request.url.with_query(nq)}>; rel="next"'
            return web.json_response(rows, headers=headers)
        page = max(1, int(q.get("page", 1)))
        rows = items[(page - 1) * per: page * per]
        last = max(1, -(-len(items) // per))
        headers = {"x-page": str(page), "x-per-page": str(per), "x-prev-page": str(page - 1) if page > 1 else "",
                   "x-next-page": str(page + 1) if page < last else ""}
        links = []
        if page < last:
            links.append(f'<{request.url.update_query(page=str(page + 1))}>; rel="next"')
        links.append(f'<{request.url.update_query(page="1")}>; rel="first"')
        if len(items) <= self.total_cap:
            headers.update({"x-total": str(len(items)), "x-total-pages": str(last)})
            links.append(f'<{request.url.update_query(page=str(last))}>; rel="last"')
        headers["Link"] = ", ".join(links)
        return web.json_response(rows, headers=headers)

    def rate_limit(self, times: int = 1, with_headers: bool = False) -> None:
        """429s: gitlab.com often sends them with no RateLimit-* or Retry-After header at all."""
        headers = {"RateLimit-Limit": "600", "RateLimit-Remaining": "0", "RateLimit-Reset": "0",
                   "Retry-After": "0"} if with_headers else {}
        self.fail(429, headers=headers, times=times,
                  body={"message": {"error": "This endpoint has been requested too many times. Try again later."}})

    # -- routing on the raw path --------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        token = request.headers.get("PRIVATE-TOKEN") or (request.headers.get("Authorization", "")[7:]
                                                          if request.headers.get("Authorization", "").startswith(
                                                              "Bearer ") else None)
        parts = request.raw_path.split("?", 1)[0].split("/")[3:]  # after /api/v4
        if parts[:1] == ["projects"] and len(parts) >= 3 and parts[2] == "trigger":
            return await self._trigger(request, parts)  # authenticated by the trigger token alone
        if token != self.token:
            return json_error(401, {"message": "401 Unauthorized"})
        if parts == ["user"]:
            return web.json_response({"id": 1, "username": "musubi-bot", "name": "Musubi Bot"})
        if len(parts) < 3 or parts[0] != "projects":
            return json_error(404, {"error": "404 Not Found"})
        if not self._project_ok(parts[1]):
            return json_error(404, {"message": "404 Project Not Found"})
        rest, m = parts[2:], request.method
        body = await self._body(request)
        if rest == ["issues"]:
            return self._list_issues(request) if m == "GET" else self._create_issue(body)
        if rest[0] == "issues" and len(rest) >= 2:
            return self._issue(request, int(rest[1]), rest[2:], m, body)
        if rest == ["merge_requests"]:
            return self._page(request, list(self.merge_requests.values())) if m == "GET" else self._create_mr(body)
        if rest == ["pipeline"] and m == "POST":
            return self._create_pipeline(request.query.get("ref") or body.get("ref"), body.get("variables") or [])
        if rest == ["pipelines"] and m == "GET":
            ref = request.query.get("ref")
            rows = [p for p in sorted(self.pipelines.values(), key=lambda p: -p["id"]) if ref in (None, p["ref"])]
            return self._page(request, rows)
        if rest[0] == "pipelines" and len(rest) == 2 and m == "GET":
            return self._pipeline(int(rest[1]))
        return json_error(404, {"error": "404 Not Found"})

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw:
            return {}
        if request.content_type == "application/json":
            return dict(json.loads(raw))
        return dict(await request.post())

    # -- issues -------------------------------------------------------------------------------

    def _issue_json(self, i: dict[str, Any]) -> dict[str, Any]:
        return dict(i)

    def _list_issues(self, request: web.Request) -> web.Response:
        state = request.query.get("state", "all")
        labels = [x for x in request.query.get("labels", "").split(",") if x]
        rows = [self._issue_json(i) for i in sorted(self.issues.values(), key=lambda i: i["id"])
                if state in ("all", i["state"]) and all(lb in i["labels"] for lb in labels)]
        return self._page(request, rows)

    def _create_issue(self, body: dict[str, Any]) -> web.Response:
        if not body.get("title"):
            return json_error(400, {"message": {"title": ["can't be blank"]}})
        iid = len(self.issues) + 1
        labels = body.get("labels") or ""
        issue = {"id": next(self._ids), "iid": iid, "project_id": self.project_id, "title": body["title"],
                 "description": body.get("description"), "state": "opened",
                 "labels": [x for x in (labels.split(",") if isinstance(labels, str) else labels) if x],
                 "author": {"id": 1, "username": "musubi-bot"},
                 "web_url": f"{self.url}/{self.path}/-/issues/{iid}",
                 "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z"}
        self.issues[iid] = issue
        return web.json_response(issue, status=201)

    def edit(self, iid: int, **changes: Any) -> None:
        self.issues[iid].update(changes)

    def _issue(self, request: web.Request, iid: int, rest: list[str], m: str, body: dict[str, Any]) -> web.Response:
        issue = self.issues.get(iid)
        if issue is None:
            return json_error(404, {"message": "404 Issue Not Found"})
        if rest == ["notes"] and m == "POST":
            if not body.get("body"):
                return json_error(400, {"message": {"body": ["can't be blank"]}})
            note = {"id": next(self._ids), "body": body["body"], "noteable_iid": iid}
            self.notes.setdefault(iid, []).append(note)
            return web.json_response(note, status=201)
        if rest:
            return json_error(404, {"error": "404 Not Found"})
        if m == "GET":
            return web.json_response(self._issue_json(issue))
        if m == "PUT":
            event = body.pop("state_event", None)
            if event not in (None, "close", "reopen"):
                return json_error(400, {"error": "state_event does not have a valid value"})
            if event:
                issue["state"] = "closed" if event == "close" else "opened"
            if "labels" in body:
                body["labels"] = [x for x in str(body["labels"]).split(",") if x]
            issue.update({k: v for k, v in body.items() if k in ("title", "description", "labels")})
            return web.json_response(self._issue_json(issue))
        return json_error(405, {"error": "405 Method Not Allowed"})

    def _create_mr(self, body: dict[str, Any]) -> web.Response:
        missing = [k for k in ("source_branch", "target_branch", "title") if not body.get(k)]
        if missing:
            return json_error(400, {"message": {missing[0]: ["can't be blank"]}})
        iid = len(self.merge_requests) + 1
        mr = {"id": next(self._ids), "iid": iid, "title": body["title"], "state": "opened",
              "source_branch": body["source_branch"], "target_branch": body["target_branch"],
              "web_url": f"{self.url}/{self.path}/-/merge_requests/{iid}"}
        self.merge_requests[iid] = mr
        return web.json_response(mr, status=201)

    # -- pipelines ----------------------------------------------------------------------------

    def _create_pipeline(self, ref: str | None, variables: Any) -> web.Response:
        if not ref:
            return json_error(400, {"message": {"base": ["Reference not found"]}})
        pid = next(self._ids)
        p = {"id": pid, "iid": len(self.pipelines) + 1, "project_id": self.project_id, "status": "created",
             "ref": ref, "sha": "a" * 40, "web_url": f"{self.url}/{self.path}/-/pipelines/{pid}",
             "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z",
             "_polls": 0, "variables": variables}
        self.pipelines[pid] = p
        return web.json_response({k: v for k, v in p.items() if not k.startswith("_")}, status=201)

    async def _trigger(self, request: web.Request, parts: list[str]) -> web.Response:
        if not self._project_ok(parts[1]) or parts[3:] != ["pipeline"]:
            return json_error(404, {"message": "404 Not Found"})
        form = await request.post()
        if form.get("token") != self.trigger_token:
            return json_error(404, {"message": "404 Not Found"})  # GitLab hides a wrong trigger token as a 404
        variables = {k[10:-1]: v for k, v in form.items() if k.startswith("variables[")}
        return self._create_pipeline(str(form.get("ref") or ""), variables)

    def _pipeline(self, pid: int) -> web.Response:
        p = self.pipelines.get(pid)
        if p is None:
            return json_error(404, {"message": "404 Not found"})
        if p["status"] not in TERMINAL:
            p["_polls"] += 1
            p["status"] = "success" if p["_polls"] > self.polls_to_finish else "running"
        return web.json_response({k: v for k, v in p.items() if not k.startswith("_")})
