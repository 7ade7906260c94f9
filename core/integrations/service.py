"""The engine's integrations feature: settings, connection tests, sync jobs, pipeline status.

Held by the engine as ``engine.integrations``.  No HTTP here (an import-linter contract):
connectors are loaded by name through :mod:`core.integrations.registry` and spoken to only
through :mod:`core.integrations.contracts`.  Permissions: ``integrations.manage`` to read or
change settings and to test a connection; ``specs.write`` at the project's scope to sync
(it writes links.yml and the tracker); ``specs.read`` to read pipeline status.

Audit (the tenant's chain, never a secret): ``integration.set`` (names of the settings and
secrets changed), ``integration.test`` (outcome and the vendor's error text),
``integration.create`` / ``integration.update`` (each outbound write of a sync: system,
object id, outcome), plus the job's own ``job.*`` events.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import BadRequest, MusubiError, NotFound
from core.integrations import entra, registry
from core.integrations.contracts import (
    KINDS,
    NOTIFIERS,
    SYSTEMS,
    TRACKERS,
    Connector,
    Message,
    Notifier,
    PipelineRun,
    Pipelines,
    Tracker,
    error_info,
)
from core.integrations.persist import WebhookState
from core.integrations.store import IntegrationStore, check_pairs, check_system

if TYPE_CHECKING:
    from core.engine.access import Caller
    from core.engine.runner import OpRunner
    from core.jobs.handle import JobHandle
    from core.jobs.service import JobService

KIND = "integrations.sync"
PIPELINE_SYSTEMS = ("gitlab", "ado", "github")


def check_sync_params(params: dict[str, Any]) -> dict[str, Any]:
    unknown = set(params) - {"system", "project_key", "dry_run", "resolve", "include"}
    if unknown:
        raise BadRequest(f"unknown sync params: {', '.join(sorted(unknown))}.", field="params")
    system = params.get("system")
    if system not in TRACKERS:
        raise BadRequest(f"sync needs a tracker: one of {', '.join(TRACKERS)}; got {system!r}.", field="system")
    key = params.get("project_key")
    if not isinstance(key, str) or not key.strip() or len(key) > 200:
        raise BadRequest("give the remote project with --project KEY (a Jira key, owner/repo, a GitLab path or id, "
                         "an Azure DevOps project).", field="project_key")
    dry = params.get("dry_run", False)
    if not isinstance(dry, bool):
        raise BadRequest("dry_run must be true or false.", field="dry_run")
    resolve = params.get("resolve") or {}
    if not isinstance(resolve, dict) or any(v not in ("local", "remote") for v in resolve.values()):
        raise BadRequest("resolve maps IDs to 'local' or 'remote', e.g. --resolve REQ-AUTH-001=local.",
                         field="resolve")
    include = params.get("include") or list(KINDS)
    if not isinstance(include, list) or not include or any(i not in KINDS for i in include):
        raise BadRequest(f"include must be some of {', '.join(KINDS)}.", field="include")
    return {"system": system, "project_key": key.strip(), "dry_run": dry, "resolve": dict(resolve),
            "include": list(include)}


class IntegrationService:
    """Per tenant: the store, the connectors built from it, the sync job kind."""

    def __init__(self, runner: OpRunner, jobs: JobService) -> None:
        self.e = runner
        self.store = IntegrationStore(runner.tenant_dir)
        # Syncs write to systems outside the engine; resuming half-way is safe (idempotent), so resumable.
        jobs.register(KIND, self._run_sync, permission="specs.write", check_params=check_sync_params, api=False)
        self.jobs = jobs
        # One sync per repository at a time (two at once could both create the same item); its saves of
        # links.yml take the trace code's write lock (core.trace.links.write_lock), shared with link decisions.
        self._running: dict[Path, asyncio.Lock] = {}
        # Pipeline runs GitLab told the engine about by webhook (core/integrations/inbound.py) and the deliveries
        # seen; the engine replaces this with one over its tables (webhook_deliveries, webhook_pipelines).
        self.webhooks = WebhookState(None)

    # -- connectors -------------------------------------------------------------------------

    def connector(self, tenant: str, system: str, entra_token: str | None = None) -> Connector:
        """``system``'s connector for ``tenant``; ``entra_token``: a delegated token from the Entra sign-in."""
        check_system(system)
        settings = self.store.settings(tenant).get(system)
        secrets = self.store.secrets(tenant, system)
        if not settings and not secrets:
            raise NotFound(f"{system} is not set up for tenant {tenant!r}; set it with "
                           f"`musubi integrations set {system} KEY=VALUE ... --secret token`.",
                           resource=f"integration:{system}")
        settings = dict(settings or {})
        secrets.pop(entra.CACHE, None)  # the msal cache never reaches a connector
        if entra_token is not None:  # the Entra sign-in's token, as the connector's own bearer setting
            secrets["graph_token" if system == "teams" else "token"] = entra_token
            if system == "ado":
                settings["auth"] = "bearer"
        return registry.factory(system)(settings, secrets)

    async def open_connector(self, tenant: str, system: str) -> Connector:
        """:meth:`connector`, with a fresh delegated token when the system signs in with Entra (``auth=entra``)."""
        settings = (await asyncio.to_thread(self.store.settings, tenant)).get(system) or {}
        if system not in entra.SYSTEMS or settings.get("auth") != "entra":
            return self.connector(tenant, system)
        es = entra.EntraSettings.of(system, settings)
        cache = (await asyncio.to_thread(self.store.secrets, tenant, system)).get(entra.CACHE)
        token, changed = await asyncio.to_thread(entra.token, es, cache)
        if changed is not None:  # msal refreshed: keep the new refresh token (0600, atomic)
            await asyncio.to_thread(self.store.update, tenant, system, {}, {entra.CACHE: changed}, [])
        return self.connector(tenant, system, token)

    # -- settings ---------------------------------------------------------------------------

    async def listing(self, ctx: Caller) -> dict[str, Any]:
        await self.e.run(ctx, "integration.read", "integration:*", lambda: self.e.require(ctx, "integrations.manage"))
        settings = await asyncio.to_thread(self.store.settings, ctx.tenant)
        secrets = await asyncio.to_thread(self.store.secret_names, ctx.tenant)
        installed = registry.available()
        rows = [{"system": s, "configured": bool(settings.get(s) or secrets.get(s)), "installed": s in installed,
                 "settings": settings.get(s, {}), "secrets": secrets.get(s, [])}
                for s in (*SYSTEMS, *sorted(set(installed) - set(SYSTEMS)))]  # then plug-ins (docs/plugins.md)
        return {"tenant": ctx.tenant, "integrations": rows}

    async def configure(self, ctx: Caller, system: str, settings: dict[str, Any], secrets: dict[str, Any],
                        unset: list[str]) -> dict[str, Any]:
        check_system(system)
        clean = check_pairs(settings, "settings")
        if system in NOTIFIERS and clean.get("events"):
            from core.integrations.notify import check_events

            why = check_events(clean["events"])
            if why:
                raise BadRequest(why, field="settings")
        hidden = check_pairs(secrets, "secrets")
        if entra.CACHE in hidden or entra.CACHE in settings:
            raise BadRequest(f"{entra.CACHE} is kept by the engine; sign in with: musubi integrations login {system}",
                             field="secrets")
        names = [n for n in unset if isinstance(n, str)]
        await self.e.run(ctx, "integration.set", f"integration:{system}",
                         lambda: self.e.require(ctx, "integrations.manage"))
        answer = await asyncio.to_thread(self.store.update, ctx.tenant, system, clean, hidden, names)
        details = {"settings": sorted(clean), "secrets": sorted(hidden), "unset": sorted(names)}
        await self.e.run(ctx, "integration.set", f"integration:{system}",
                         lambda: self.e.audit(ctx.tenant, ctx, "integration.set", f"integration:{system}",
                                              details=details))
        return answer

    async def test(self, ctx: Caller, system: str) -> dict[str, Any]:
        """One authenticated call to the vendor; a failure carries the vendor's own text (and is audited)."""
        check_system(system)
        await self.e.run(ctx, "integration.test", f"integration:{system}",
                         lambda: self.e.require(ctx, "integrations.manage"))
        conn = await self.open_connector(ctx.tenant, system)
        try:
            answer = await conn.test()
        except MusubiError as exc:
            info = error_info(exc, system)
            await self._audit(ctx.tenant, ctx, "integration.test", f"integration:{system}", "error", info)
            raise
        finally:
            await conn.close()
        await self._audit(ctx.tenant, ctx, "integration.test", f"integration:{system}", "success", {})
        return {"system": system, "ok": True, "detail": answer}

    async def _audit(self, tenant: str, actor: Caller | str, action: str, resource: str, outcome: str,
                     details: dict[str, Any]) -> None:
        await self.e.run(None, action, resource,
                         lambda: self.e.audit(tenant, actor, action, resource, outcome=outcome, details=details))

    # -- sync -------------------------------------------------------------------------------

    async def sync_start(self, ctx: Caller, system: str, project_key: str, dry_run: bool,
                         resolve: dict[str, str], include: list[str]) -> dict[str, Any]:
        if not ctx.project:
            raise BadRequest("run musubi sync inside a registered project (musubi project add PATH).", field="path")
        params = {"system": system, "project_key": project_key, "dry_run": dry_run, "resolve": resolve,
                  "include": include or list(KINDS)}
        job = await self.jobs.submit(ctx, KIND, params, project=ctx.project)
        return {"job": job}

    def _root(self, tenant: str, project: str | None) -> Path:
        proj = self.e.state.projects.get(tenant, {}).get(project or "")
        if proj is None:
            raise NotFound(f"project {project!r} is gone from tenant {tenant!r}; the sync cannot run.")
        from core.trace.files import validate_root

        root = validate_root(proj["path"])
        if str(root) != os.path.normpath(proj["path"]):
            raise BadRequest(f"project {project!r} is registered at {proj['path']}, which now leads to {root}; "
                             "the engine syncs only the folder that was registered.")
        return root

    async def _run_sync(self, h: JobHandle) -> dict[str, Any]:
        from core.integrations.sync import sync
        from core.trace.links import write_lock

        p = h.params
        system, tenant = p["system"], h.tenant
        root = self._root(tenant, h.project)
        settings = (self.store.settings(tenant).get(system) or {})
        conn = await self.open_connector(tenant, system)
        if not isinstance(conn, Tracker):
            await conn.close()
            raise BadRequest(f"the {system} connector cannot sync work items.")
        pending: list[tuple[str, str, str, dict[str, Any]]] = []

        def audit(action: str, obj: str, outcome: str, details: Any) -> None:
            pending.append((action, obj, outcome, dict(details)))

        async def flush() -> None:  # each write's audit is committed before the next write goes out
            while pending:
                action, obj, outcome, details = pending.pop(0)
                await self._audit(tenant, h.created_by, action, obj, "success" if outcome == "ok" else "error",
                                  {**details, "job": h.id})

        def progress(done: int, total: int) -> None:
            h.progress(done, total, "items")

        try:
            async with self._running.setdefault(root, asyncio.Lock()):
                report = await sync(conn, root, p["project_key"], dry_run=p["dry_run"], include=tuple(p["include"]),
                                    repo_url=settings.get("repo_url"), resolve=p["resolve"], audit=audit,
                                    progress=progress, after_write=flush,
                                    lock=write_lock(root))
        finally:
            await flush()
            await conn.close()
        return report

    # -- pipelines --------------------------------------------------------------------------

    async def pipelines(self, ctx: Caller, system: str, ref: str, project_key: str | None) -> dict[str, Any]:
        if system not in PIPELINE_SYSTEMS:
            raise BadRequest(f"pipeline status comes from {', '.join(PIPELINE_SYSTEMS)}; not {system!r}.",
                             field="system")
        await self.e.run(ctx, "integration.read", f"integration:{system}",
                         lambda: self.e.require(ctx, "specs.read", project=ctx.project, read=True))
        runs, source = await self._pipeline_runs(ctx.tenant, system, ref, project_key)
        return {"system": system, "ref": ref, "source": source, "runs": [vars(r) for r in runs]}

    async def pipeline_runs(self, tenant: str, system: str, ref: str) -> list[PipelineRun]:
        """CI runs of ``ref`` (newest first), the vendor's answer plus what its webhooks said; no permission check."""
        return (await self._pipeline_runs(tenant, system, ref, None))[0]

    async def _pipeline_runs(self, tenant: str, system: str, ref: str,
                             project_key: str | None) -> tuple[list[PipelineRun], str]:
        hooked = dict((self.webhooks.runs.get(tenant) or {}).get(ref) or {})
        source = "vendor"
        try:
            runs = await self._live_pipelines(tenant, system, ref, project_key)
        except MusubiError:
            if not hooked:
                raise
            runs, source = [], "webhook"  # the vendor is unreachable: what its webhooks last said
        merged = {r.id: r for r in runs}
        for rid, r in sorted(hooked.items(), key=lambda kv: -int(kv[0]) if kv[0].isdigit() else 0):
            merged.setdefault(rid, r)  # the live answer is fresher; a webhook adds runs it did not list
        return list(merged.values()), source

    async def _live_pipelines(self, tenant: str, system: str, ref: str, project_key: str | None) -> list[PipelineRun]:
        conn = await self.open_connector(tenant, system)
        try:
            if not isinstance(conn, Pipelines):
                raise BadRequest(f"the {system} connector does not read pipeline status.")
            key = project_key or str(self.store.settings(tenant).get(system, {}).get("project") or "")
            return await conn.pipeline_status(key, ref)
        finally:
            await conn.close()

    # -- notifications ----------------------------------------------------------------------

    async def deliver(self, tenant: str, actor: Caller | str, system: str, message: Message,
                      target: str | None = None, *, event: str | None = None, attempt: int = 1) -> dict[str, Any]:
        """Send ``message`` through ``system`` (slack or teams) for ``tenant``; audited ``integration.notify``.

        What the run, quota and coverage notifications (:mod:`core.integrations.notify`) call;
        no permission check here: the caller decides who may trigger a message (:meth:`notify`
        checks it for people).  Every attempt is audited: system, target, outcome, the event
        and attempt number, the title and the vendor's error; never the text or a secret.
        """
        if system not in NOTIFIERS:
            raise BadRequest(f"messages go through {' or '.join(NOTIFIERS)}; not {system!r}.", field="system")
        resource = f"integration:{system}"
        extra = {"title": message.title[:200], **({"event": event, "attempt": attempt} if event else {})}
        conn: Connector | None = None
        try:
            conn = await self.open_connector(tenant, system)
            if not isinstance(conn, Notifier):
                raise BadRequest(f"the {system} connector does not send messages.")
            sent = await conn.send(message, target)
        except MusubiError as exc:
            await self._audit(tenant, actor, "integration.notify", resource, "error",
                              {**extra, **({"target": target} if target else {}), **error_info(exc, system)})
            raise
        finally:
            if conn is not None:
                await conn.close()
        details = {**extra, "target": sent.target, "id": sent.id}
        await self._audit(tenant, actor, "integration.notify", f"{system}:{sent.target}", "success", details)
        return {"system": system, "target": sent.target, "id": sent.id}

    async def notify(self, ctx: Caller, system: str, title: str, text: str, target: str | None) -> dict[str, Any]:
        """A message typed by a person (``musubi integrations notify``): needs ``integrations.manage``."""
        await self.e.run(ctx, "integration.notify", f"integration:{system}",
                         lambda: self.e.require(ctx, "integrations.manage"))
        return await self.deliver(ctx.tenant, ctx, system, Message(title, text), target)
