"""A GitHub REST fake: issues, pull requests, Actions runs; Link paging; primary and secondary limits.

Facts reproduced (GitHub REST docs, "Using pagination", "Rate limits for the REST API",
"API versions"): ``Authorization: Bearer <token>`` (or ``token <token>``); a 401 body
``{"message": "Bad credentials", ...}``; ``X-GitHub-Api-Version`` checked (an unknown
version is a 400); every answer carries ``x-github-request-id`` and ``x-ratelimit-*``;
lists page by ``page``/``per_page`` with a ``Link`` header (``rel="next"``, ``"last"``)
built from the request's host; the issues list includes pull requests (items with a
``pull_request`` key); secondary limits are a 403 (or 429) whose body says "secondary
rate limit", with ``retry-after``; an exhausted primary limit is a 403 with
``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset`` (epoch seconds).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer, json_error

VERSIONS = ("2022-11-28", "2026-03-10")
DOCS = "https://docs.github.com/rest"
SECONDARY = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach "
             "out to GitHub Support for help, please include the request ID.")


class GitHubFake(FakeServer):
    def __init__(self, token: str = "github_pat_SECRET", repo: str = "acme/app") -> None:
        super().__init__()
        self.token = token
        self.repo = repo
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.runs: list[dict[str, Any]] = []
        self.dispatches: list[dict[str, Any]] = []
        self._ids = itertools.count(5000)
        self._req = itertools.count(1)
        self.app.middlewares.append(self._checks)
        r = self.app.router
        base = "/repos/{owner}/{name}"
        r.add_get("/user", self._user)
        r.add_get(base, self._repo)
        r.add_get(base + "/issues", self._list_issues)
        r.add_post(base + "/issues", self._create_issue)
        r.add_get(base + "/issues/{n}", self._get_issue)
        r.add_patch(base + "/issues/{n}", self._edit_issue)
        r.add_post(base + "/issues/{n}/comments", self._comment)
        r.add_get(base + "/pulls", self._list_pulls)
        r.add_post(base + "/pulls", self._create_pull)
        r.add_get(base + "/actions/runs", self._runs)
        r.add_get(base + "/actions/runs/{id}", self._run)
        r.add_post(base + "/actions/workflows/{wf}/dispatches", self._dispatch)

    @web.middleware
    async def _checks(self, request: web.Request, handler: Any) -> web.StreamResponse:
        rid = f"C0DE:{next(self._req):04X}:FAKE"
        common = {"x-github-request-id": rid, "x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4999",
                  "x-ratelimit-reset": str(int(time.time()) + 3600), "x-ratelimit-used": "1",
                  "x-ratelimit-resource": "core"}
        version = request.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in VERSIONS:
            return json_error(400, {"message": f"API version '{version}' is not supported.",
                                    "documentation_url": f"{DOCS}/overview/api-versions", "status": "400"}, common)
        auth = request.headers.get("Authorization", "")
        token = auth.split(" ", 1)[1] if auth.startswith(("Bearer ", "token ")) else None
        if token != self.token:
            return json_error(401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}, common)
        resp = await handler(request)
        for k, v in common.items():
            resp.headers.setdefault(k, v)
        return resp

    def secondary_limit(self, times: int = 1, retry_after: str = "1", status: int = 403) -> None:
        """The next ``times`` requests hit a secondary rate limit (403 or 429 with ``retry-after``)."""
        self.fail(status, headers={"retry-after": retry_after, "x-github-request-id": "C0DE:LIMIT:FAKE"},
                  body={"message": SECONDARY, "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api"},
                  times=times)

    def primary_exhausted(self, reset_in: int = 1, times: int = 1) -> None:
        self.fail(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-limit": "5000",
                                "x-ratelimit-reset": str(int(time.time()) + reset_in)},
                  body={"message": "API rate limit exceeded for user ID 1.", "documentation_url": DOCS}, times=times)

    def _check_repo(self, request: web.Request) -> web.Response | None:
        if f"{request.match_info['owner']}/{request.match_info['name']}" != self.repo:
            return json_error(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})
        return None

    def _page(self, request: web.Request, items: list[Any]) -> web.Response:
        try:
            per = max(1, min(int(request.query.get("per_page", 30)), 100))
            page = max(1, int(request.query.get("page", 1)))
        except ValueError:
            return json_error(400, {"message": "Invalid page or per_page", "status": "400"})
        last = max(1, -(-len(items) // per))
        links = []

        def url(p: int) -> str:
            q = dict(request.query)
            q["page"] = str(p)
            return str(request.url.with_query(q))  # from the request's own host and port

        if page < last:
            links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
        if page > 1:
            links += [f'<{url(1)}>; rel="first"', f'<{url(page - 1)}>; rel="prev"']
        headers = {"Link": ", ".join(links)} if links else {}
        return web.json_response(items[(page - 1) * per: page * per], headers=headers)

    def _issue_json(self, i: dict[str, Any]) -> dict[str, Any]:
        return {**i, "labels": [{"name": n} for n in i["labels"]]}

    async def _user(self, request: web.Request) -> web.Response:
        return web.json_response({"login": "musubi-bot", "id": 1, "type": "User"})

    async def _repo(self, request: web.Request) -> web.Response:
        return self._check_repo(request) or web.json_response({"full_name": self.repo, "default_branch": "main"})

    async def _list_issues(self, request: web.Request) -> web.Response:
        if (nf := self._check_repo(request)) is not None:
            return nf
        state = request.query.get("state", "open")
        labels = [x for x in request.query.get("labels", "").split(",") if x]
        items = [self._issue_json(i) for i in sorted(self.issues.values(), key=lambda i: -i["number"])
                 if (state == "all" or i["state"] == state) and all(lb in i["labels"] for lb in labels)]
        return self._page(request, items)

    def _new(self, body: dict[str, Any], pull: dict[str, Any] | None = None) -> dict[str, Any]:
        n = len(self.issues) + 1
        issue = {"id": next(self._ids), "number": n, "node_id": f"I_{n}", "title": body["title"],
                 "body": body.get("body"), "state": "open", "state_reason": None,
                 "labels": [lb if isinstance(lb, str) else lb["name"] for lb in body.get("labels") or []],
                 "html_url": f"https://github.com/{self.repo}/{'pull' if pull else 'issues'}/{n}",
                 "url": f"{self.url}/repos/{self.repo}/issues/{n}", "updated_at": f"2026-01-01T00:00:{n % 60:02d}Z"}
        if pull is not None:
            issue["pull_request"] = pull
        self.issues[n] = issue
        return issue

    async def _create_issue(self, request: web.Request) -> web.Response:
        if (nf := self._check_repo(request)) is not None:
            return nf
        body = await request.json()
        if not isinstance(body, dict) or not body.get("title"):
            return json_error(422, {"message": "Validation Failed", "status": "422", "documentation_url": DOCS,
                                    "errors": [{"resource": "Issue", "code": "missing_field", "field": "title"}]})
        return web.json_response(self._issue_json(self._new(body)), status=201)

    def _find(self, request: web.Request) -> dict[str, Any] | web.Response:
        i = self.issues.get(int(request.match_info["n"])) if request.match_info["n"].isdigit() else None
        if i is None:
            return json_error(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})
        return i

    async def _get_issue(self, request: web.Request) -> web.Response:
        i = self._check_repo(request) or self._find(request)
        return i if isinstance(i, web.Response) else web.json_response(self._issue_json(i))

    async def _edit_issue(self, request: web.Request) -> web.Response:
        i = self._check_repo(request) or self._find(request)
        if isinstance(i, web.Response):
            return i
        body = await request.json()
        if "state" in body and body["state"] not in ("open", "closed"):
            return json_error(422, {"message": "Validation Failed", "status": "422",
                                    "errors": [{"resource": "Issue", "code": "invalid", "field": "state"}]})
        self.edit(i["number"], **body)
        return web.json_response(self._issue_json(i))

    def edit(self, number: int, **changes: Any) -> None:
        """A change made on github.com (tests make remote edits and conflicts with it)."""
        i = self.issues[number]
        if "labels" in changes:
            changes["labels"] = [lb if isinstance(lb, str) else lb["name"] for lb in changes["labels"]]
        i.update(changes)
        i["updated_at"] = f"2026-01-02T00:00:{len(self.requests) % 60:02d}Z"

    async def _comment(self, request: web.Request) -> web.Response:
        i = self._check_repo(request) or self._find(request)
        if isinstance(i, web.Response):
            return i
        body = await request.json()
        c = {"id": next(self._ids), "body": body.get("body"), "html_url": i["html_url"] + "#issuecomment"}
        self.comments.setdefault(i["number"], []).append(c)
        return web.json_response(c, status=201)

    async def _list_pulls(self, request: web.Request) -> web.Response:
        if (nf := self._check_repo(request)) is not None:
            return nf
        pulls = [p for p in self.issues.values() if "pull_request" in p]
        return self._page(request, [{**self._issue_json(p), "head": p["pull_request"]["head"]} for p in pulls])

    async def _create_pull(self, request: web.Request) -> web.Response:
        if (nf := self._check_repo(request)) is not None:
            return nf
        body = await request.json()
        missing = [k for k in ("title", "head", "base") if not body.get(k)]
        if missing:
            return json_error(422, {"message": "Validation Failed", "status": "422",
                                    "errors": [{"resource": "PullRequest", "code": "missing_field",
                                                "field": missing[0]}]})
        p = self._new(body, {"head": {"ref": body["head"]}, "base": {"ref": body["base"]},
                             "url": f"{self.url}/repos/{self.repo}/pulls/{len(self.issues) + 1}"})
        return web.json_response({**self._issue_json(p), "head": {"ref": body["head"]}}, status=201)

    def add_run(self, branch: str, status: str, conclusion: str | None = None, sha: str = "abc123",
                name: str = "CI") -> dict[str, Any]:
        run = {"id": next(self._ids), "name": name, "head_branch": branch, "head_sha": sha, "status": status,
               "conclusion": conclusion, "html_url": f"https://github.com/{self.repo}/actions/runs/{len(self.runs)+1}",
               "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:01:00Z", "event": "push"}
        self.runs.insert(0, run)
        return run

    async def _runs(self, request: web.Request) -> web.Response:
        if (nf := self._check_repo(request)) is not None:
            return nf
        q = request.query
        runs = [r for r in self.runs if q.get("branch") in (None, r["head_branch"])
                and q.get("head_sha") in (None, r["head_sha"])]
        per = max(1, min(int(q.get("per_page", 30)), 100))
        return web.json_response({"total_count": len(runs), "workflow_runs": runs[:per]})

    async def _run(self, request: web.Request) -> web.Response:
        run = next((r for r in self.runs if str(r["id"]) == request.match_info["id"]), None)
        if run is None:
            return json_error(404, {"message": "Not Found", "status": "404"})
        return web.json_response(run)

    async def _dispatch(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not body.get("ref"):
            return json_error(422, {"message": "Invalid request.\n\n\"ref\" wasn't supplied.", "status": "422"})
        self.dispatches.append({"workflow": request.match_info["wf"], **body})
        self.add_run(body["ref"], "queued")
        return web.Response(status=204)
