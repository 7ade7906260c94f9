"""Traceability routes: ``/v1/trace/...`` and ``/v1/spec/lint``.

Which repository: the ``path`` the client sends (absolute), else the project
of the request (``X-Musubi-Project`` or the registered project containing the
client's working directory).  A path outside every registered project of the
tenant is served only to the OS user who runs the engine, acting as themself
(``access.is_engine_user``: who could read it anyway); everyone else is limited to registered projects.  Paths are resolved
(symlinks followed) before that check, a registered folder swapped for a symlink
is refused, and ``links.yml`` is written only where it really lies inside the
repository.  The permission is checked at the scope of the project holding the
repository, so a project role counts only for its own project.

Reads need ``specs.read``; review and link decisions, which write
``storage/traceability/links.yml`` in the repository, need ``specs.write`` and
are audited.  Scans run in a worker thread so the event loop never waits on
the disk; per-file results are cached under ``$MUSUBI_HOME/tenants/<tenant>/trace/``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from core.api import models as m
from core.api import responses as a
from core.engine import access
from core.engine.access import Caller
from core.engine.http import Api, json_response
from core.engine.routing import Route
from core.errors import BadRequest, PermissionDenied
from core.paths import is_within

if TYPE_CHECKING:
    from core.trace.service import TraceService


class TraceRoutes:
    """Handlers; the trace service is created on first use (keeps engine start-up lean)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._svc: TraceService | None = None
        self._filling: dict[tuple[str, Path], asyncio.Task[None]] = {}  # suggestion searches in the background

    @property
    def svc(self) -> TraceService:
        if self._svc is None:
            from core.trace.service import TraceService

            self._svc = TraceService(self.api.r.tenant_dir)
        return self._svc

    async def close(self, _app: web.Application) -> None:
        """On the engine's graceful stop: end the file watchers of the automatic re-scan."""
        for task in self._filling.values():
            task.cancel()
        if self._svc is not None:
            await asyncio.to_thread(self._svc.close)

    # -- suggested links (docs/trace.md "Suggested links") ----------------------------------

    async def _index_version(self, c: Caller, root: Path) -> str | None:
        """Which code-index version suggestions for ``root`` come from (None, with a note, when none)."""
        idx = getattr(self.api.e, "code_index", None)
        cache = self.svc.suggestions
        info = await idx.info(c.tenant, c.project) if idx is not None and c.project else None
        if info is None or not info.get("next_id"):
            cache.off(c.tenant, root, "no code index for this project: suggested links come from code search; "
                      "index it with: musubi index")
            return None
        version = f"{info.get('model_id')}@{info.get('updated_at')}:{info.get('chunks')}/{info.get('dense_chunks')}"
        cache.use(c.tenant, root, version)
        return version

    def _fill(self, c: Caller, root: Path) -> None:
        """Search, in the background, the queries the last read had no hits for; the next read shows them."""
        key = (c.tenant, root)
        version, queries = self.svc.suggestions.missing(c.tenant, root)
        running = self._filling.get(key)
        if version is None or not queries or (running is not None and not running.done()):
            return
        idx, tenant, project = getattr(self.api.e, "code_index", None), c.tenant, c.project
        if idx is None:
            return

        async def fill() -> None:
            from core.trace.suggest import K

            for q in queries:
                try:
                    hits = await idx.search(tenant, project, q, K)
                except Exception as exc:  # noqa: BLE001 - a failed search means no suggestions, never a failed read
                    self.svc.suggestions.off(tenant, root, f"code search failed ({exc}); no suggested links")
                    return
                self.svc.suggestions.put(tenant, root, version, q, hits)

        self._filling[key] = asyncio.create_task(fill())

    # -- context ----------------------------------------------------------------------------

    async def _open(self, request: web.Request, perm: str, action: str, req: m.TraceRead) -> tuple[Caller, Path]:
        """The caller's context and repository root, after the permission check (denials audited).

        A path is judged by where it really leads (symlinks resolved), and the check is
        made for the project holding it: a project role counts only for its own project.
        """
        e = self.api.r
        c = await self.api.ctx(request)
        raw = req.path
        real = None
        if raw:
            if not os.path.isabs(raw):
                raise BadRequest(f"repository path {raw!r} must be absolute.", field="path")
            c.project, real = access.project_of_path(e.state, c.tenant, raw)

        def check() -> None:
            # Reads of a suspended tenant stay open to its owners, admins and auditors (read=True).
            e.require(c, perm, project=c.project, read=perm == "specs.read")
            if real is not None and c.project is None and not access.is_engine_user(c):
                leads = f" (it leads to {real})" if real != os.path.normpath(str(raw)) else ""
                raise PermissionDenied(
                    f"permission denied: {raw} is not inside a registered project of tenant {c.tenant!r}{leads}; "
                    "register it with: musubi project add PATH",
                    permission=perm,
                )

        await e.run(c, action, f"project:{c.project or '-'}", check)
        from core.trace.files import validate_root

        if real is not None:
            return c, validate_root(real)
        if not c.project:
            raise BadRequest(
                "no repository given: run inside a registered project (musubi project add PATH) or pass PATH.",
                field="path",
            )
        registered = e.state.projects[c.tenant][c.project]["path"]
        root = validate_root(registered)
        if str(root) != os.path.normpath(registered):
            # The registered folder (or a folder above it) was swapped for a symlink since.
            raise PermissionDenied(
                f"permission denied: project {c.project!r} is registered at {registered}, which now leads to {root}; "
                "the engine reads only the folder that was registered. Restore it, or remove the project and "
                "register the real folder with: musubi project add PATH",
                permission=perm,
            )
        return c, root

    async def _read(self, request: web.Request, req: m.TraceRead, fn: Callable[[Caller, Path], Any]) -> web.Response:
        c, root = await self._open(request, "specs.read", "trace.read", req)
        data = await asyncio.to_thread(fn, c, root)
        return json_response(data)

    # -- reads ------------------------------------------------------------------------------

    async def report(self, request: web.Request, req: m.TraceReport) -> web.Response:
        if req.view in ("summary", "changes"):  # changes: the Trace screen's automatic re-scan (file watcher)
            changes = req.view == "changes"
            c, root = await self._open(request, "specs.read", "trace.read", req)
            data = await asyncio.to_thread(self.svc.summary, c.tenant, root, changes)
            # notify (issue 17): a fall of coverage across a tenant's coverage_min is announced
            self.api.e.notifications.coverage(c.tenant, c.project or str(root), float(data["summary"]["overall"]))
            return json_response(data)
        c, root = await self._open(request, "specs.read", "trace.read", req)
        await self._index_version(c, root)
        data = await asyncio.to_thread(self.svc.report, c.tenant, root)
        self._fill(c, root)
        return json_response(data)

    async def show(self, request: web.Request, req: m.TraceItem) -> web.Response:
        return await self._read(request, req, lambda c, root: self.svc.show(c.tenant, root, req.id))

    async def gaps(self, request: web.Request, req: m.TraceRead) -> web.Response:
        return await self._read(request, req, lambda c, root: self.svc.gaps(c.tenant, root))

    async def impact(self, request: web.Request, req: m.TraceItem) -> web.Response:
        return await self._read(request, req, lambda c, root: self.svc.impact(c.tenant, root, req.id))

    async def export(self, request: web.Request, req: m.TraceExport) -> web.Response:
        return await self._read(request, req, lambda c, root: self.svc.export(c.tenant, root, req.format))

    async def lint(self, request: web.Request, req: m.TraceRead) -> web.Response:
        return await self._read(request, req, lambda c, root: self.svc.lint(c.tenant, root))

    # -- writes (links.yml) -----------------------------------------------------------------

    async def _write(
        self, request: web.Request, req: m.TraceRead, action: str, resource: str, fn: Callable[[Caller, Path], dict[str, Any]]
    ) -> web.Response:
        c, root = await self._open(request, "specs.write", action, req)
        from core.trace.config import LINKS_FILE

        target = os.path.realpath(root / LINKS_FILE)
        if not is_within(target, str(root)):
            raise PermissionDenied(
                f"permission denied: {LINKS_FILE} in {root} leads outside the repository (to {target}) through a "
                "symlink; the engine writes only inside the project. Replace the link with a real folder.",
                permission="specs.write",
            )
        result = await asyncio.to_thread(fn, c, root)
        details = {k: v for k, v in result.items() if k in ("fingerprint", "previous_fingerprint", "kind", "target", "line", "state", "source")}
        details["repo"] = str(root)
        await self.api.r.run(c, action, resource, lambda: self.api.r.audit(c.tenant, c, action, resource, details=details))
        return json_response(result)

    async def review(self, request: web.Request, req: m.TraceReview) -> web.Response:
        return await self._write(
            request, req, "trace.review", f"requirement:{req.id}",
            lambda c, root: self.svc.review(c.tenant, root, req.id, c.user),
        )

    async def link(self, request: web.Request, req: m.TraceLink) -> web.Response:
        return await self._write(
            request, req, "trace.link", f"requirement:{req.requirement}",
            lambda c, root: self.svc.decide_link(
                c.tenant, root, req.requirement, req.kind, req.target, req.line, str(req.state), str(req.source), c.user,
            ),
        )

    async def unlink(self, request: web.Request, req: m.TraceUnlink) -> web.Response:
        return await self._write(
            request, req, "trace.unlink", f"requirement:{req.requirement}",
            lambda c, root: self.svc.remove_link(c.tenant, root, req.requirement, req.kind, req.target, req.line),
        )


T = TraceRoutes
ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/trace", "trace.read", "specs.read", m.TraceReport, a.TraceReport,
          handler=T.report, feature=T),
    Route("GET", "/v1/trace/requirements/{id}", "trace.read", "specs.read", m.TraceItem, a.TraceRequirement,
          handler=T.show, feature=T),
    Route("GET", "/v1/trace/gaps", "trace.read", "specs.read", m.TraceRead, a.TraceGaps,
          handler=T.gaps, feature=T),
    Route("GET", "/v1/trace/impact/{id}", "trace.read", "specs.read", m.TraceItem, a.TraceImpact,
          handler=T.impact, feature=T),
    Route("GET", "/v1/trace/export", "trace.read", "specs.read", m.TraceExport, a.TraceExported,
          handler=T.export, feature=T),
    Route("POST", "/v1/trace/review", "trace.review", "specs.write", m.TraceReview, a.Reviewed,
          handler=T.review, feature=T),
    Route("POST", "/v1/trace/links", "trace.link", "specs.write", m.TraceLink, a.Linked,
          handler=T.link, feature=T),
    Route("POST", "/v1/trace/links/remove", "trace.unlink", "specs.write", m.TraceUnlink, a.Unlinked,
          handler=T.unlink, feature=T),
    Route("GET", "/v1/spec/lint", "trace.read", "specs.read", m.TraceRead, a.SpecLint,
          handler=T.lint, feature=T),
)
