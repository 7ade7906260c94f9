"""An Azure DevOps Services REST 7.1 fake (api-notes/connectors.md §2, checklist §8).

Auth: a PAT as Basic (any user, the PAT as password) or a Bearer token.  A bad credential is
the quirk: **203 with an HTML sign-in page** unless the request says
``X-TFS-FedAuthRedirect: Suppress``, which gets the 401 ``TF400813`` WrappedException instead.
Every call needs ``api-version`` (400 without).  Work items: create/update by JSON Patch only
(``application/json-patch+json``, else 415), ``test`` on ``/rev`` for optimistic concurrency;
WIQL answers ids only; ``workitemsbatch`` at most 200 ids.  Pipelines: run (200), get (a state
machine: inProgress, then completed/succeeded after N polls), list paged by the
``x-ms-continuationtoken`` header.  Throttling: ``fake.throttle_soft()`` (200 + Retry-After)
and ``fake.throttle_hard()`` (429 + TF400733).
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer, basic_credentials, bearer, json_error

SIGN_IN = b"""<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head>
<body><form action="https://login.microsoftonline.com/"><p>Sign in to your account</p></form></body></html>"""


def wrapped(message: str, type_key: str, status: int = 400, headers: dict[str, str] | None = None) -> web.Response:
    return json_error(status, {"$id": "1", "innerException": None, "message": message,
                               "typeName": f"Microsoft.TeamFoundation.Framework.Server.{type_key}, "
                                           "Microsoft.TeamFoundation.Framework.Server",
                               "typeKey": type_key, "errorCode": 0, "eventId": 3000}, headers)


class AdoFake(FakeServer):
    def __init__(self, org: str = "acme", project: str = "Shop", pat: str = "adoPATsecretSECRET52chars",
                 bearer_token: str = "entra-token-SECRET") -> None:
        super().__init__()
        self.org, self.project, self.pat, self.bearer_token = org, project, pat, bearer_token
        self.items: dict[int, dict[str, Any]] = {}
        self.runs: dict[int, dict[str, Any]] = {}
        self.polls_to_finish = 2
        self._ids = itertools.count(300)
        self._run_ids = itertools.count(40)
        self.app.middlewares.append(self._gate)
        base = f"/{org}/{project}/_apis"
        r = self.app.router
        r.add_get(f"/{org}/_apis/projects/{project}", self._project)
        r.add_post(base + "/wit/workitems/{type}", self._create)
        r.add_route("*", base + "/wit/workitems/{id:\\d+}", self._item)
        r.add_post(base + "/wit/wiql", self._wiql)
        r.add_post(base + "/wit/workitemsbatch", self._batch)
        r.add_post(base + "/pipelines/{pid}/runs", self._run)
        r.add_get(base + "/pipelines/{pid}/runs", self._runs)
        r.add_get(base + "/pipelines/{pid}/runs/{rid}", self._get_run)

    def throttle_soft(self, seconds: str = "0", times: int = 1) -> None:
        """Delayed-but-served: a 200 carrying Retry-After (the caller should slow down)."""
        self._soft = (seconds, times)

    def throttle_hard(self, times: int = 1) -> None:
        self.fail(429, headers={"Retry-After": "0", "X-RateLimit-Resource": "Core", "X-RateLimit-Delay": "0.5"},
                  body={"$id": "1", "message": "TF400733: The request has been canceled: Request was blocked due to "
                        "exceeding usage of resource 'Core' in namespace 'User'.", "typeKey": "RequestBlockedException",
                        "errorCode": 0, "eventId": 3000}, times=times)

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        creds = basic_credentials(request)
        ok = (creds is not None and creds[1] == self.pat) or bearer(request) == self.bearer_token
        if not ok:
            if request.headers.get("X-TFS-FedAuthRedirect") == "Suppress":
                return wrapped("TF400813: The user '' is not authorized to access this resource.",
                               "UnauthorizedRequestException", 401)
            return web.Response(status=203, body=SIGN_IN, content_type="text/html")
        if "api-version" not in request.query:
            return wrapped("No api-version was supplied for the \"" + request.method + "\" request. The version must "
                           "be supplied either as part of the Accept header or as a query parameter.",
                           "VssVersionNotSpecifiedException")
        resp = await handler(request)
        soft = getattr(self, "_soft", None)
        if soft and soft[1] > 0:
            resp.headers["Retry-After"] = soft[0]
            self._soft = (soft[0], soft[1] - 1)
        resp.headers.setdefault("ActivityId", "a1b2c3d4-0000-0000-0000-000000000000")
        return resp

    # -- work items ---------------------------------------------------------------------------

    def _json(self, item: dict[str, Any]) -> dict[str, Any]:
        wid = item["id"]
        return {**item, "url": f"{self.url}/{self.org}/_apis/wit/workItems/{wid}",
                "_links": {"html": {"href": f"{self.url}/{self.org}/{self.project}/_workitems/edit/{wid}"}}}

    async def _patch_ops(self, request: web.Request) -> list[dict[str, Any]] | web.Response:
        if request.content_type != "application/json-patch+json":
            return wrapped("The request indicated a Content-Type of \"" + request.content_type + "\" for method type "
                           "\"" + request.method + "\" which is not supported. Valid content types for this method "
                           "are: application/json-patch+json.", "VssRequestContentTypeNotSupportedException", 415)
        ops = json.loads(await request.read() or b"[]")
        if not isinstance(ops, list) or any(not isinstance(o, dict) or "op" not in o or "path" not in o for o in ops):
            return wrapped("You must pass a valid patch document in the body of the request.",
                           "VssPropertyValidationException")
        return ops

    def _apply(self, item: dict[str, Any], ops: list[dict[str, Any]]) -> web.Response | None:
        for o in ops:
            path, op = o["path"], o["op"]
            if op == "test" and path == "/rev":
                if o.get("value") != item["rev"]:
                    return wrapped(f"TF26071: This work item has been changed by someone else since you opened it. "
                                   f"(rev {item['rev']}, not {o.get('value')})", "WorkItemRevisionMismatchException",
                                   412)
                continue
            m = re.fullmatch(r"/fields/([\w.]+)", path)
            if m and op in ("add", "replace"):
                if m.group(1) not in ("System.Title", "System.Description", "System.Tags", "System.State",
                                      "Microsoft.VSTS.Common.AcceptanceCriteria"):
                    return wrapped(f"TF51535: Cannot find field {m.group(1)}.", "WorkItemFieldInvalidException")
                item["fields"][m.group(1)] = o.get("value")
            elif path == "/relations/-" and op == "add":
                rel = o.get("value") or {}
                item.setdefault("relations", []).append(rel)
                if rel.get("rel") == "System.LinkTypes.Hierarchy-Reverse":
                    item["fields"]["System.Parent"] = int(str(rel.get("url", "")).rsplit("/", 1)[-1])
            else:
                return wrapped(f"The patch operation {op} {path} is not supported here.",
                               "VssPropertyValidationException")
        if not item["fields"].get("System.Title"):
            return wrapped("TF401320: Rule Error for field Title. Error code: Required, HasValues, LimitedToValues, "
                           "AllowsOldValue, InvalidEmpty.", "RuleValidationException")
        return None

    async def _project(self, request: web.Request) -> web.Response:
        return web.json_response({"id": "p-1", "name": self.project, "state": "wellFormed"})

    async def _create(self, request: web.Request) -> web.Response:
        wtype = request.match_info["type"]
        if not wtype.startswith("$"):
            return wrapped("The work item type must be given as $Type.", "WorkItemTypeNotFoundException", 404)
        ops = await self._patch_ops(request)
        if isinstance(ops, web.Response):
            return ops
        wid = next(self._ids)
        item = {"id": wid, "rev": 1, "fields": {"System.WorkItemType": wtype[1:], "System.State": "New",
                                                "System.TeamProject": self.project}}
        bad = self._apply(item, ops)
        if bad is not None:
            return bad
        self.items[wid] = item
        return web.json_response(self._json(item))

    async def _item(self, request: web.Request) -> web.Response:
        item = self.items.get(int(request.match_info["id"]))
        if item is None:
            return wrapped(f"TF401232: Work item {request.match_info['id']} does not exist, or you do not have "
                           "permissions to read it.", "WorkItemUnauthorizedAccessException", 404)
        if request.method == "GET":
            return web.json_response(self._json(item))
        if request.method != "PATCH":
            return wrapped("Method not allowed", "HttpMethodNotAllowed", 405)
        ops = await self._patch_ops(request)
        if isinstance(ops, web.Response):
            return ops
        draft = json.loads(json.dumps(item))
        bad = self._apply(draft, ops)
        if bad is not None:
            return bad
        draft["rev"] += 1
        self.items[item["id"]] = draft
        return web.json_response(self._json(draft))

    def edit(self, wid: int, **fields: Any) -> None:
        self.items[wid]["fields"].update(fields)
        self.items[wid]["rev"] += 1

    async def _wiql(self, request: web.Request) -> web.Response:
        query = str((await request.json()).get("query") or "")
        if not re.search(r"select\s.+\sfrom\s+workitems", query, re.I | re.S):
            return wrapped("TF51005: The query references a field that does not exist, or the query is malformed.",
                           "WorkItemTrackingQueryResultSizeLimitExceeded")
        tag = re.search(r"\[System\.Tags\]\s+CONTAINS\s+'([^']+)'", query, re.I)
        def tags(it: dict[str, Any]) -> list[str]:
            return [t.strip() for t in str(it["fields"].get("System.Tags", "")).split(";")]

        ids = sorted(i for i, it in self.items.items() if not tag or tag.group(1) in tags(it))
        return web.json_response({"queryType": "flat", "queryResultType": "workItem", "asOf": "2026-01-01T00:00:00Z",
                                  "columns": [{"referenceName": "System.Id", "name": "ID"}],
                                  "workItems": [{"id": i, "url": f"{self.url}/{self.org}/_apis/wit/workItems/{i}"}
                                                for i in ids]})

    async def _batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        ids = body.get("ids") or []
        if len(ids) > 200:
            return wrapped("VS403474: The maximum number of work items in a batch is 200.", "VssServiceException")
        out = [self._json(self.items[i]) for i in ids if i in self.items]
        fields = body.get("fields")
        if fields:
            out = [{**o, "fields": {k: v for k, v in o["fields"].items() if k in fields}} for o in out]
        return web.json_response({"count": len(out), "value": out})

    # -- pipelines ----------------------------------------------------------------------------

    def _run_json(self, run: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in run.items() if not k.startswith("_")}

    async def _run(self, request: web.Request) -> web.Response:
        pid = int(request.match_info["pid"])
        body = await request.json()
        ref = (((body.get("resources") or {}).get("repositories") or {}).get("self") or {}).get("refName",
                                                                                               "refs/heads/main")
        rid = next(self._run_ids)
        run = {"id": rid, "name": f"20260101.{rid}", "state": "inProgress", "createdDate": "2026-01-01T00:00:00Z",
               "pipeline": {"id": pid, "name": "ci", "folder": "\\", "revision": 3},
               "resources": {"repositories": {"self": {"refName": ref}}},
               "url": f"{self.url}/{self.org}/{self.project}/_apis/pipelines/{pid}/runs/{rid}",
               "_links": {"web": {"href": f"{self.url}/{self.org}/{self.project}/_build/results?buildId={rid}"}},
               "_polls": 0, "_variables": body.get("variables") or {}}
        self.runs[rid] = run
        return web.json_response(self._run_json(run))

    async def _get_run(self, request: web.Request) -> web.Response:
        run = self.runs.get(int(request.match_info["rid"]))
        if run is None:
            return wrapped("Run not found", "PipelineRunNotFoundException", 404)
        if run["state"] != "completed":
            run["_polls"] += 1
            if run["_polls"] > self.polls_to_finish:
                run.update(state="completed", result="succeeded")
        return web.json_response(self._run_json(run))

    async def _runs(self, request: web.Request) -> web.Response:
        pid = int(request.match_info["pid"])
        rows = [self._run_json(r) for r in sorted(self.runs.values(), key=lambda r: -r["id"])
                if r["pipeline"]["id"] == pid]
        start = int(request.query.get("continuationToken") or 0)
        top = int(request.query.get("$top", 50))
        page = rows[start:start + top]
        headers = {"x-ms-continuationtoken": str(start + top)} if start + top < len(rows) else {}
        return web.json_response({"count": len(page), "value": page}, headers=headers)
