"""A Jira Cloud REST v3 fake (api-notes/connectors.md §1, checklist §8).

Routes under both bases: ``/rest/api/3/...`` (Basic email:token) and
``/ex/jira/{cloudId}/rest/api/3/...`` (OAuth bearer).  Issues with ADF descriptions
(a plain string where ADF is required is a 400 keyed by the field), transitions
(GET list, POST 204), comments (201), remote links upserted by ``globalId`` (201 create,
200 update), ``/search/jql`` with ``nextPageToken``/``isLast`` paging and ids-only
answers unless ``fields`` is given, and the removed ``/search`` answering 410.
Errors use the ErrorCollection shape ``{"errorMessages": [...], "errors": {...}}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer, basic_credentials, bearer, json_error

REMOVED = ("The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration "
           "guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046")
STATUSES = {
    "10000": ("To Do", "new"),
    "3": ("In Progress", "indeterminate"),
    "10001": ("Done", "done"),
}
TRANSITIONS = [("11", "To Do", "10000"), ("21", "In Progress", "3"), ("31", "Done", "10001")]
ADF_FIELDS = ("description", "environment")


def errors(*messages: str, **fields: str) -> dict[str, Any]:
    return {"errorMessages": list(messages), "errors": fields}


@dataclass
class Issue:
    id: str
    key: str
    fields: dict[str, Any]
    comments: list[dict[str, Any]] = field(default_factory=list)
    remote_links: dict[str, dict[str, Any]] = field(default_factory=dict)  # globalId (or id) -> link
    updated: int = 0


class JiraFake(FakeServer):
    """State: projects, issues by key; credentials accepted: ``email``/``token`` (Basic) and ``oauth`` (Bearer)."""

    def __init__(self, email: str = "bot@example.com", token: str = "jira-api-token-SECRET",
                 oauth: str = "jira-oauth-SECRET", cloud_id: str = "cloud-1",
                 projects: tuple[str, ...] = ("PROJ",)) -> None:
        super().__init__()
        self.email, self.token, self.oauth, self.cloud_id = email, token, oauth, cloud_id
        self.projects = set(projects)
        self.issues: dict[str, Issue] = {}
        self._next_id = 10000
        self._next_link = 10000
        self._clock = 0
        for base in ("/rest/api/3", "/ex/jira/{cloud}/rest/api/3"):
            r = self.app.router
            r.add_post(base + "/issue", self._create)
            r.add_get(base + "/issue/{key}", self._get)
            r.add_put(base + "/issue/{key}", self._update)
            r.add_get(base + "/issue/{key}/transitions", self._transitions)
            r.add_post(base + "/issue/{key}/transitions", self._transition)
            r.add_post(base + "/issue/{key}/comment", self._comment)
            r.add_post(base + "/issue/{key}/remotelink", self._remotelink)
            r.add_get(base + "/issue/{key}/remotelink", self._remotelinks)
            r.add_get(base + "/search/jql", self._search)
            r.add_post(base + "/search/jql", self._search)
            r.add_route("*", base + "/search", self._removed)
            r.add_get(base + "/myself", self._myself)

    # -- helpers ------------------------------------------------------------------------------

    def _auth(self, request: web.Request) -> web.Response | None:
        cloud = request.match_info.get("cloud")
        if cloud is not None:
            if bearer(request) != self.oauth or cloud != self.cloud_id:
                return json_error(401, errors("You are not authenticated. "
                                              "Authentication required to perform this operation."))
            return None
        creds = basic_credentials(request)
        if creds != (self.email, self.token):
            headers = {"X-Authentication-Denied-Reason": "AUTHENTICATED_FAILED"} if creds else {}
            return json_error(401, errors("Client must be authenticated to access this resource."), headers)
        return None

    def _issue(self, request: web.Request) -> Issue | web.Response:
        key = request.match_info["key"]
        issue = self.issues.get(key) or next((i for i in self.issues.values() if i.id == key), None)
        if issue is None:
            return json_error(404, errors("Issue does not exist or you do not have permission to see it."))
        return issue

    def _authed_issue(self, request: web.Request) -> Issue | web.Response:
        """The issue named in the path, or the 401/404 answer."""
        return self._auth(request) or self._issue(request)

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def _render(self, issue: Issue, fields: list[str] | None, base: str) -> dict[str, Any]:
        out: dict[str, Any] = {"id": issue.id, "key": issue.key, "self": f"{base}/rest/api/3/issue/{issue.id}"}
        if fields is None:
            return {"id": issue.id}
        f = dict(issue.fields)
        f["updated"] = f"2026-01-01T00:00:{issue.updated:02d}.000+0000"
        if fields != ["*all"]:
            f = {k: v for k, v in f.items() if k in fields}
        out["fields"] = f
        return out

    def _check_adf(self, fields: dict[str, Any]) -> web.Response | None:
        for name in ADF_FIELDS:
            v = fields.get(name)
            if v is not None and not (isinstance(v, dict) and v.get("type") == "doc" and v.get("version") == 1):
                return json_error(400, errors(**{name: "Operation value must be an Atlassian Document."}))
        return None

    # -- routes ---------------------------------------------------------------------------------

    async def _myself(self, request: web.Request) -> web.Response:
        return self._auth(request) or web.json_response({"accountId": "5b10-bot", "displayName": "Musubi Bot",
                                                         "emailAddress": self.email})

    async def _create(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        body = await request.json()
        fields = dict((body or {}).get("fields") or {})
        project = (fields.get("project") or {}).get("key")
        if project not in self.projects:
            return json_error(400, errors(project="valid project is required"))
        if not fields.get("summary"):
            return json_error(400, errors(summary="You must specify a summary of the issue."))
        if not (fields.get("issuetype") or {}).get("name"):
            return json_error(400, errors(issuetype="Specify an issue type"))
        if (bad := self._check_adf(fields)) is not None:
            return bad
        parent = (fields.get("parent") or {}).get("key")
        if parent is not None and parent not in self.issues:
            return json_error(400, errors(parent="Could not find issue by id or key."))
        self._next_id += 1
        n = sum(1 for k in self.issues if k.startswith(project + "-")) + 1
        key = f"{project}-{n}"
        fields["status"] = {"id": "10000", "name": "To Do", "statusCategory": {"key": "new"}}
        fields.setdefault("labels", [])
        issue = Issue(str(self._next_id), key, fields, updated=self._tick())
        self.issues[key] = issue
        return web.json_response({"id": issue.id, "key": key, "self": f"{self.url}/rest/api/3/issue/{issue.id}"},
                                 status=201)

    async def _get(self, request: web.Request) -> web.Response:
        issue = self._authed_issue(request)
        if isinstance(issue, web.Response):
            return issue
        fields = request.query.get("fields")
        return web.json_response(self._render(issue, fields.split(",") if fields else ["*all"], self.url))

    async def _update(self, request: web.Request) -> web.Response:
        issue = self._authed_issue(request)
        if isinstance(issue, web.Response):
            return issue
        fields = ((await request.json()) or {}).get("fields") or {}
        if (bad := self._check_adf(fields)) is not None:
            return bad
        issue.fields.update(fields)
        issue.updated = self._tick()
        return web.Response(status=204)

    def edit(self, key: str, **fields: Any) -> None:
        """What a person does in Jira's UI (tests use it to make remote edits and conflicts)."""
        issue = self.issues[key]
        issue.fields.update(fields)
        issue.updated = self._tick()

    def move(self, key: str, status_id: str) -> None:
        name, cat = STATUSES[status_id]
        self.edit(key, status={"id": status_id, "name": name, "statusCategory": {"key": cat}})

    async def _transitions(self, request: web.Request) -> web.Response:
        issue = self._authed_issue(request)
        if isinstance(issue, web.Response):
            return issue
        current = issue.fields["status"]["id"]
        out = [{"id": tid, "name": name, "to": {"id": to, "name": STATUSES[to][0],
                                                 "statusCategory": {"key": STATUSES[to][1]}},
                "hasScreen": False, "isAvailable": True, "fields": {}}
               for tid, name, to in TRANSITIONS if to != current]
        return web.json_response({"expand": "transitions", "transitions": out})

    async def _transition(self, request: web.Request) -> web.Response:
        issue = self._authed_issue(request)
        if isinstance(issue, web.Response):
            return issue
        tid = (((await request.json()) or {}).get("transition") or {}).get("id")
        match = [to for t, _n, to in TRANSITIONS if t == tid and to != issue.fields["status"]["id"]]
        if not match:
            return json_error(400, errors(f"Transition id '{tid}' is not valid for this issue."))
        self.move(issue.key, match[0])
        return web.Response(status=204)

    async def _comment(self, request: web.Request) -> web.Response:
        issue = self._authed_issue(request)
        if isinstance(issue, web.Response):
            return issue
        body = ((await request.json()) or {}).get("body")
        if not (isinstance(body, dict) and body.get("type") == "doc"):
            return json_error(400, errors(comment="Comment body must be an Atlassian Document."))
        cid = str(456789 + len(issue.comments))
        comment = {"id": cid, "self": f"{self.url}/rest/api/3/issue/{issue.id}/comment/{cid}",
                   "author": {"accountId": "5b10-bot", "displayName": "Musubi Bot"}, "body": body,
                   "created": "2026-01-01T00:00:00.000+0000", "updated": "2026-01-01T00:00:00.000+0000"}
        issue.comments.append(comment)
        return web.json_response(comment, status=201)

    async def _remotelink(self, request: web.Request) -> web.Response:
        issue = self._authed_issue(request)
        if isinstance(issue, web.Response):
            return issue
        body = (await request.json()) or {}
        obj = body.get("object") or {}
        if not obj.get("url") or not obj.get("title"):
            return json_error(400, errors(object="url and title are required"))
        gid = body.get("globalId")
        if gid and gid in issue.remote_links:  # upsert: omitted fields become null
            link = issue.remote_links[gid]
            link.update({"object": obj, "relationship": body.get("relationship"),
                         "application": body.get("application")})
            return web.json_response({"id": link["id"], "self": link["self"]}, status=200)
        self._next_link += 1
        lid = self._next_link
        link = {"id": lid, "self": f"{self.url}/rest/api/3/issue/{issue.key}/remotelink/{lid}", "globalId": gid,
                "object": obj, "relationship": body.get("relationship"), "application": body.get("application")}
        issue.remote_links[gid or str(lid)] = link
        return web.json_response({"id": lid, "self": link["self"]}, status=201)

    async def _remotelinks(self, request: web.Request) -> web.Response:
        issue = self._authed_issue(request)
        if isinstance(issue, web.Response):
            return issue
        return web.json_response(list(issue.remote_links.values()))

    async def _removed(self, request: web.Request) -> web.Response:
        return json_error(410, errors(REMOVED))

    async def _search(self, request: web.Request) -> web.Response:
        if (denied := self._auth(request)) is not None:
            return denied
        args: dict[str, Any] = dict(request.query) if request.method == "GET" else ((await request.json()) or {})
        jql = str(args.get("jql") or "").strip()
        if not jql:
            return json_error(400, errors("The JQL query is empty; give a bounded query, e.g. project = PROJ."))
        matcher = _parse_jql(jql)
        if isinstance(matcher, str):
            return json_error(400, errors(matcher))
        try:
            size = max(1, min(int(args.get("maxResults", 50)), 100))
        except ValueError:
            return json_error(400, errors("maxResults must be a number."))
        token = args.get("nextPageToken")
        start = 0
        if token:
            m = re.fullmatch(r"p(\d+)", str(token))
            if not m:
                return json_error(400, errors("The provided next page token is invalid or expired."))
            start = int(m.group(1))
        hits = [i for i in self.issues.values() if matcher(i)]
        page = hits[start:start + size]
        fields = args.get("fields")
        wanted = (fields.split(",") if isinstance(fields, str) else list(fields)) if fields else None
        out: dict[str, Any] = {"issues": [self._render(i, wanted, self.url) for i in page]}
        if start + size < len(hits):
            out.update(nextPageToken=f"p{start + size}", isLast=False)
        else:
            out["isLast"] = True
        return web.json_response(out)


def _parse_jql(jql: str) -> Any:
    """A bounded JQL of ``project = X [AND labels = Y] [ORDER BY ...]`` clauses; else the reason it is refused."""
    body = re.split(r"\s+order\s+by\s+", jql, flags=re.I)[0].strip()
    if not body:
        return "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
    clauses = re.split(r"\s+AND\s+", body, flags=re.I)
    tests = []
    bounded = False
    for c in clauses:
        m = re.fullmatch(r'(project|labels|key)\s*=\s*"?([^"]+?)"?', c.strip(), flags=re.I)
        if not m:
            return f"Error in the JQL Query: cannot parse '{c.strip()}'."
        name, value = m.group(1).lower(), m.group(2)
        bounded = bounded or name in ("project", "key")
        if name == "project":
            tests.append(lambda i, v=value: i.key.startswith(v + "-"))
        elif name == "key":
            tests.append(lambda i, v=value: i.key == v)
        else:
            tests.append(lambda i, v=value: v in (i.fields.get("labels") or []))
    if not bounded:
        return "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
    return lambda i: all(t(i) for t in tests)
