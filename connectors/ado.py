"""Azure DevOps Services REST 7.1: work items (JSON Patch, WIQL), pipelines (run, status).

Auth: a PAT as Basic with an empty user (``auth=pat``, the default; the header is built from
the raw PAT, never a pre-encoded one) or an Entra access token as Bearer (``auth=bearer``,
scope ``499b84ac-1321-427f-aa17-267ca6975798/.default``; getting it with msal is the caller's
business for now).  Every call sends ``X-TFS-FedAuthRedirect: Suppress`` and
``X-VSS-ForceMsaPassThrough: true`` and ``api-version=7.1``; a 203 or an HTML body is an auth
failure (ADO's sign-in page), never data.  A ``Retry-After`` on a 200 (throttling that has
started to delay) slows the next call.  Work items carry musubi's marker in ``System.Tags``:
``musubi; musubi:<ID>; musubi-fp:<fingerprint>``; a task's parent is a
``System.LinkTypes.Hierarchy-Reverse`` relation.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from connectors.http import AuthError, HttpClient, HttpResponse, RetryPolicy, TooManyItems
from connectors.paging import ado_continuation_pages
from connectors.settings import base_url, from_labels, marker_labels, need, secret
from core.integrations.contracts import (
    IntegrationError,
    PipelineRun,
    RemoteItem,
    WorkItem,
    text_fingerprint,
)

API_VERSION = "7.1"
FIELDS = ["System.Id", "System.Title", "System.Description", "System.State", "System.Tags", "System.WorkItemType",
          "System.Parent"]
DONE_STATES = {"Closed", "Done", "Resolved", "Removed", "Completed"}
BATCH = 200
_RESULTS = {"succeeded": "success", "failed": "failed", "canceled": "canceled"}


def check_not_sign_in(resp: HttpResponse) -> None:
    """ADO answers a bad credential with 203 and an HTML sign-in page: an auth failure, not data."""
    ctype = resp.headers.get("Content-Type", "")
    if resp.status == 203 or "text/html" in ctype:
        raise AuthError(f"ado: {resp.url} answered {resp.status} with a sign-in page: the PAT or token is wrong, "
                        "expired or lacks the scope (Azure DevOps sends this instead of a 401)",
                        connector="ado", status=resp.status, request_id=resp.request_id)


def description_html(item: WorkItem) -> str:
    paras = [f"<p>{html.escape(line)}</p>" for line in item.body.splitlines() if line.strip()]
    where = html.escape(item.source)
    if item.source_url:
        where = f'<a href="{html.escape(item.source_url)}">{where}</a>'
    return "".join(paras) + f"<p>Spec: {where}</p>"


class AdoConnector:
    """The ``ado`` connector: Tracker (work items), Pipelines (pipeline runs)."""

    system = "ado"

    def __init__(self, settings: Mapping[str, Any], secrets: Mapping[str, str], *, policy: RetryPolicy | None = None,
                 timeout_s: float = 30.0) -> None:
        token = secret(secrets, self.system)
        self.org_url = base_url(settings, self.system, "org_url", None, "https://dev.azure.com/acme")
        self.project = str(settings.get("project") or "")
        auth = settings.get("auth", "pat")
        if auth == "pat":
            header = "Basic " + base64.b64encode(f":{token}".encode()).decode()
        elif auth == "bearer":
            header = f"Bearer {token}"
        else:
            raise IntegrationError(f"ado: auth must be 'pat' (Basic, empty user) or 'bearer' (Entra), not {auth!r}.",
                                   kind="config", system=self.system)
        self.types = {"requirement": str(settings.get("requirement_type") or "Feature"),
                      "task": str(settings.get("task_type") or "User Story")}
        self.pipeline_id = str(settings.get("pipeline_id") or "")
        headers = {"Authorization": header, "Accept": "application/json", "X-TFS-FedAuthRedirect": "Suppress",
                   "X-VSS-ForceMsaPassThrough": "true"}
        self.http = HttpClient(self.system, self.org_url, headers=headers, secrets=[token], timeout_s=timeout_s,
                               check=check_not_sign_in, policy=policy or RetryPolicy(pace_on_success=True))

    async def close(self) -> None:
        await self.http.aclose()

    def _p(self, project: str | None) -> str:
        key = project or self.project or need({}, self.system, "project", "Shop")
        return quote(key, safe="")

    async def _json(self, method: str, path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        resp = await self.http.request(method, path, params={"api-version": API_VERSION, **(params or {})}, **kw)
        return resp.json() if resp.body else None

    async def test(self) -> dict[str, Any]:
        proj = await self._json("GET", f"/_apis/projects/{self._p(None)}")
        return {"system": self.system, "project": proj.get("name"), "state": proj.get("state")}

    # -- tracker ----------------------------------------------------------------------------

    def _remote(self, wi: dict[str, Any]) -> RemoteItem | None:
        f = wi.get("fields") or {}
        tags = [t.strip() for t in str(f.get("System.Tags") or "").split(";") if t.strip()]
        artefact, pushed = from_labels(tags)
        if artefact is None:
            return None
        parent = f.get("System.Parent")
        state = str(f.get("System.State") or "")
        return RemoteItem(
            artefact=artefact, key=str(wi["id"]), id=str(wi["id"]),
            url=str(((wi.get("_links") or {}).get("html") or {}).get("href") or wi.get("url", "")),
            title=str(f.get("System.Title") or ""), status=state, done=state in DONE_STATES,
            fingerprint=text_fingerprint(f.get("System.Title"), f.get("System.Description"),
                                         str(parent) if parent else None),
            parent_key=str(parent) if parent else None, extra={"pushed": pushed, "rev": wi.get("rev")},
        )

    async def wiql(self, project: str, query: str) -> list[int]:
        data = await self._json("POST", f"/{self._p(project)}/_apis/wit/wiql", json={"query": query})
        return [int(w["id"]) for w in data.get("workItems") or []]

    async def list_managed(self, project: str, max_items: int) -> list[RemoteItem]:
        ids = await self.wiql(project, "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
                                       "AND [System.Tags] CONTAINS 'musubi' ORDER BY [System.Id]")
        if len(ids) > max_items:
            raise TooManyItems(f"more than {max_items} Azure DevOps work items: narrow the query or raise the limit",
                               max_items=max_items)
        out: list[RemoteItem] = []
        for i in range(0, len(ids), BATCH):  # the batch endpoint takes at most 200 ids
            data = await self._json("POST", f"/{self._p(project)}/_apis/wit/workitemsbatch",
                                    json={"ids": ids[i:i + BATCH], "fields": FIELDS})
            out += [r for r in (self._remote(w) for w in data.get("value") or []) if r is not None]
        return out

    def _ops(self, item: WorkItem, op: str) -> list[dict[str, Any]]:
        return [{"op": op, "path": "/fields/System.Title", "value": item.title[:255]},
                {"op": op, "path": "/fields/System.Description", "value": description_html(item)},
                {"op": op, "path": "/fields/System.Tags",
                 "value": "; ".join(marker_labels(item.artefact, item.fingerprint()))}]

    def _parent_op(self, parent_key: str) -> dict[str, Any]:
        return {"op": "add", "path": "/relations/-",
                "value": {"rel": "System.LinkTypes.Hierarchy-Reverse",
                          "url": f"{self.org_url}/_apis/wit/workItems/{parent_key}"}}

    async def _patch(self, method: str, path: str, ops: list[dict[str, Any]]) -> RemoteItem:
        wi = await self._json(method, path, data=_dumps(ops), headers={"Content-Type": "application/json-patch+json"})
        got = self._remote(wi) if isinstance(wi, dict) else None
        if got is None:
            raise IntegrationError("ado: the work item came back without musubi's tags.", system=self.system)
        return got

    async def create(self, project: str, item: WorkItem, parent_key: str | None) -> RemoteItem:
        ops = self._ops(item, "add") + ([self._parent_op(parent_key)] if parent_key else [])
        wtype = quote("$" + self.types[item.kind], safe="")
        return await self._patch("POST", f"/{self._p(project)}/_apis/wit/workitems/{wtype}", ops)

    async def update(self, project: str, remote: RemoteItem, item: WorkItem, parent_key: str | None) -> RemoteItem:
        # `test` on /rev: if someone saved the item since we read it, ADO refuses (412) instead of overwriting.
        ops = [{"op": "test", "path": "/rev", "value": remote.extra.get("rev")}, *self._ops(item, "replace")]
        if parent_key and not remote.parent_key:
            ops.append(self._parent_op(parent_key))
        return await self._patch("PATCH", f"/{self._p(project)}/_apis/wit/workitems/{remote.id}", ops)

    # -- pipelines --------------------------------------------------------------------------

    def _run(self, r: dict[str, Any]) -> PipelineRun:
        state, result = str(r.get("state") or ""), r.get("result")
        norm = _RESULTS.get(str(result), "unknown") if state == "completed" else (
            "running" if state in ("inProgress", "canceling") else "unknown")
        ref = str((((r.get("resources") or {}).get("repositories") or {}).get("self") or {}).get("refName", ""))
        return PipelineRun(self.system, str(r["id"]), ref, norm, f"{state}/{result}" if result else state,
                           str(((r.get("_links") or {}).get("web") or {}).get("href", "")), "", str(r.get("name", "")))

    async def run_pipeline(self, pipeline_id: str, ref: str, variables: Mapping[str, str] | None = None,
                           project: str | None = None) -> PipelineRun:
        body = {"resources": {"repositories": {"self": {"refName": _ref(ref)}}},
                "variables": {k: {"value": v, "isSecret": False} for k, v in (variables or {}).items()}}
        return self._run(await self._json("POST", f"/{self._p(project)}/_apis/pipelines/{pipeline_id}/runs",
                                          json=body))

    async def pipeline_run(self, pipeline_id: str, run_id: str, project: str | None = None) -> PipelineRun:
        return self._run(await self._json("GET", f"/{self._p(project)}/_apis/pipelines/{pipeline_id}/runs/{run_id}"))

    async def pipeline_status(self, project: str, ref: str, max_items: int = 500) -> list[PipelineRun]:
        """Runs of the ``pipeline_id`` setting on ``ref`` (newest first), read across continuation pages."""
        pid = self.pipeline_id or need({}, self.system, "pipeline_id", "7")
        want = _ref(ref)
        out = []
        async for r in ado_continuation_pages(self.http, f"/{self._p(project or None)}/_apis/pipelines/{pid}/runs",
                                              {"api-version": API_VERSION, "$top": 50}, max_items=max_items,
                                              what="pipeline runs"):
            run = self._run(r)
            if run.ref == want:
                out.append(run)
        return out[:10]


def _ref(ref: str) -> str:
    return ref if ref.startswith("refs/") else f"refs/heads/{ref}"


def _dumps(ops: list[dict[str, Any]]) -> str:
    import json

    return json.dumps(ops)


def factory(settings: Mapping[str, Any], secrets: Mapping[str, str]) -> AdoConnector:
    """Entry point ``musubi.connectors: ado``."""
    return AdoConnector(settings, secrets)
