"""JSON-over-HTTP API of the engine on a Unix socket (aiohttp), versioned under ``/v1/``.

The caller is the OS user on the other end of the socket (SO_PEERCRED); the
client's headers choose only tenant, project and an ``--as`` impersonation,
which is itself permission-checked.  Every route is documented in docs/api.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import socket
import struct
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from core import __version__
from core.engine import routes_models, routes_trace
from core.engine.base import Ctx
from core.engine.engine import Engine
from core.engine.jsontext import answer_text
from core.errors import BadRequest, MusubiError, NotFound, PermissionDenied
from core.quotas import quota_resource
from core.rbac import SYSTEM_TENANT

log = logging.getLogger("musubi.engine.server")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ENGINE_KEY = web.AppKey("engine", Engine)
STOP_KEY = web.AppKey("stop", asyncio.Event)
_SO_PEERCRED = getattr(socket, "SO_PEERCRED", 17)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=answer_text(data).encode("utf-8"), status=status, content_type="application/json")


def error_response(exc: MusubiError) -> web.Response:
    return _json({"error": exc.to_dict()}, status=exc.http_status)


_user_cache: dict[int, str] = {}
# The peer of a connection never changes: ask the kernel once per keep-alive connection.
_peer_of: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def peer_user(request: web.Request) -> str:
    """OS user name of the process on the other end of the socket."""
    transport = request.transport
    name = _peer_of.get(transport) if transport is not None else None
    if name is not None:
        return name
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        raise PermissionDenied("cannot identify the caller: no socket peer credentials.")
    creds = sock.getsockopt(socket.SOL_SOCKET, _SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    name = _user_cache.get(uid)
    if name is None:
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = f"uid{uid}"
        _user_cache[uid] = name
    _peer_of[transport] = name
    return name


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except MusubiError as exc:
        return error_response(exc)
    except web.HTTPNotFound:
        return error_response(NotFound(f"no such route {request.method} {request.path}; see docs/api.md.", code="no_route"))
    except web.HTTPMethodNotAllowed:
        return error_response(BadRequest(f"method {request.method} is not allowed on {request.path}.", code="method_not_allowed"))
    except web.HTTPException:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("internal error on %s %s", request.method, request.path)
        err = MusubiError(f"internal engine error: {type(exc).__name__}: {exc}. Details are in the engine log.", code="internal")
        return error_response(err)


async def body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    raw = await request.read()
    try:
        # Decode strictly ourselves: json.loads(bytes) would let UTF-8-encoded surrogates through.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not UTF-8 text (bad byte at offset {exc.start}); send JSON encoded as UTF-8.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise BadRequest("request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object.")
    if "\\u" in text:
        try:
            # JSON may carry lone surrogates ("\ud800"), only ever as an escape; they cannot be
            # hashed or stored, and an operation would only fail after it had queued writes, so
            # refuse them up front.
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("request body contains invalid Unicode (a lone surrogate); send UTF-8 text.") from None
    return data


class Api:
    """Route handlers; each builds the caller's context, then runs one engine operation."""

    def __init__(self, engine: Engine, stop: asyncio.Event) -> None:
        self.e = engine
        self.stop = stop

    async def ctx(self, request: web.Request, tenant: str | None = None, *, outsiders: bool = False) -> Ctx:
        """The caller's context; with ``outsiders`` also for someone with no role in the tenant."""
        real = peer_user(request)
        h = request.headers
        tenant = tenant or h.get("X-Musubi-Tenant") or "default"
        as_user = h.get("X-Musubi-As") or None
        cwd, project = h.get("X-Musubi-Cwd"), h.get("X-Musubi-Project") or None

        def make() -> Ctx:
            try:
                return self.e.make_ctx(real, as_user, tenant, cwd, project, outsiders=outsiders)
            except PermissionDenied as exc:
                exc.extra["route"] = f"{request.method} {request.path}"  # recorded with the denial
                raise

        try:
            return make()  # writes nothing, so it needs no op of its own unless it is refused
        except PermissionDenied as exc:
            # Running it as an op audits the refusal: in the tenant asked for, or in the system
            # tenant when there is no such tenant (so probing for names is on record too).
            where = tenant if tenant in self.e.state.tenants else SYSTEM_TENANT
            if exc.extra.get("permission") == "impersonate":  # refused impersonation: the real user acted
                return await self.e.run(Ctx(real, real, where), "impersonate", f"user:{as_user}", make)
            return await self.e.run(Ctx(real, as_user or real, where), "tenant.access", f"tenant:{tenant}", make)

    # -- engine -----------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        e = self.e
        return _json(
            {
                "ok": True,
                "version": __version__,
                "pid": os.getpid(),
                "home": str(e.paths.home),
                "socket": str(e.paths.socket),
                "database": str(e.paths.db),
                "schema_version": e.schema_version,
                "started_at": e.fmt(e.started_at),
                "tenants": len(e.state.tenants),
                "subscribers": len(e.bus),
                "commits": e.committer.commits,
                "sync_helper_pid": e.committer.syncer.pid,
                "quarantined_groups": e.committer.quarantined,
                "quarantine_dir": str(e.paths.quarantine),
                "user": peer_user(request),
            }
        )

    async def whoami(self, request: web.Request) -> web.Response:
        c = await self.ctx(request, outsiders=True)
        st = self.e.state
        # Someone with no role in the tenant sees only that they have none, not its state.
        visible = st.is_member(c.tenant, c.user) or self.e.is_system_admin(c.user)
        return _json(
            {
                "user": c.user,
                "real_user": c.real_user,
                "tenant": c.tenant,
                "tenant_status": st.tenants[c.tenant].status if visible else None,
                "project": c.project,
                "roles": st.roles_of(c.tenant, c.user, c.project),
                "permissions": sorted(st.permissions_of(c.tenant, c.user, c.project)),
            }
        )

    async def engine_stop(self, request: web.Request) -> web.Response:
        c = await self.ctx(request, "default", outsiders=True)

        def op() -> None:
            # c.user, not the socket peer: a request made --as someone else acts as that user.
            if c.user != pwd.getpwuid(os.getuid()).pw_name:
                raise PermissionDenied("only the OS user who runs the engine may stop it.")
            self.e.audit("default", c, "engine.stop", "engine")

        await self.e.run(c, "engine.stop", "engine", op)
        asyncio.get_running_loop().call_later(0.05, self.stop.set)
        return _json({"stopping": True, "pid": os.getpid()})

    # -- tenants ----------------------------------------------------------------------------

    async def tenants_list(self, request: web.Request) -> web.Response:
        c = await self.ctx(request, outsiders=True)
        return _json(self.e.tenant_list(c))

    async def tenants_create(self, request: web.Request) -> web.Response:
        b = await body(request)
        c = await self.ctx(request, outsiders=True)
        return _json(await self.e.run(c, "tenant.create", f"tenant:{b.get('name')}", lambda: self.e.tenant_create(c, b.get("name", ""))), 201)

    async def tenants_show(self, request: web.Request) -> web.Response:
        c = await self.ctx(request, outsiders=True)
        name = request.match_info["name"]
        return _json(await self.e.run(c, "tenant.show", f"tenant:{name}", lambda: self.e.tenant_show(c, name)))

    async def tenants_suspend(self, request: web.Request) -> web.Response:
        b = await body(request)
        c = await self.ctx(request, outsiders=True)
        name = request.match_info["name"]
        return _json(await self.e.run(c, "tenant.suspend", f"tenant:{name}", lambda: self.e.tenant_suspend(c, name, b.get("reason"))))

    async def tenants_resume(self, request: web.Request) -> web.Response:
        c = await self.ctx(request, outsiders=True)
        name = request.match_info["name"]
        return _json(await self.e.run(c, "tenant.resume", f"tenant:{name}", lambda: self.e.tenant_resume(c, name)))

    # -- projects ---------------------------------------------------------------------------

    async def projects_list(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        return _json(await self.e.run(c, "project.list", "projects", lambda: self.e.project_list(c)))

    async def projects_add(self, request: web.Request) -> web.Response:
        b = await body(request)
        c = await self.ctx(request)
        return _json(await self.e.run(c, "project.add", f"project:{b.get('name') or b.get('path')}", lambda: self.e.project_add(c, b.get("path", ""), b.get("name"))), 201)

    async def projects_remove(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        name = request.match_info["name"]
        return _json(await self.e.run(c, "project.remove", f"project:{name}", lambda: self.e.project_remove(c, name)))

    # -- roles ------------------------------------------------------------------------------

    async def roles_list(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        return _json(await self.e.run(c, "role.list", "roles", lambda: self.e.role_list(c)))

    async def roles_create(self, request: web.Request) -> web.Response:
        b = await body(request)
        c = await self.ctx(request)
        perms = b.get("permissions") or []
        if not isinstance(perms, list):
            raise BadRequest("permissions must be a list of permission names.")
        return _json(await self.e.run(c, "role.create", f"role:{b.get('name')}", lambda: self.e.role_create(c, b.get("name", ""), perms, str(b.get("description") or ""))), 201)

    async def roles_show(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        name = request.match_info["name"]
        return _json(await self.e.run(c, "role.show", f"role:{name}", lambda: self.e.role_show(c, name)))

    async def roles_delete(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        name = request.match_info["name"]
        return _json(await self.e.run(c, "role.delete", f"role:{name}", lambda: self.e.role_delete(c, name)))

    # -- members ----------------------------------------------------------------------------

    async def members_list(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        return _json(await self.e.run(c, "member.list", "members", lambda: self.e.member_list(c)))

    async def members_add(self, request: web.Request) -> web.Response:
        b = await body(request)
        c = await self.ctx(request)
        return _json(await self.e.run(c, "member.add", f"member:{b.get('user')}", lambda: self.e.member_add(c, b.get("user", ""), b.get("role", ""), b.get("project"))), 201)

    async def members_remove(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        user = request.match_info["user"]
        project = request.query.get("project") or None
        return _json(await self.e.run(c, "member.remove", f"member:{user}", lambda: self.e.member_remove(c, user, project)))

    # -- quotas and usage -------------------------------------------------------------------

    async def quotas_status(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        user = request.query.get("user") or None
        return _json(await self.e.run(c, "quota.status", "quotas", lambda: self.e.quota_status(c, user)))

    async def quotas_set(self, request: web.Request) -> web.Response:
        b = await body(request)
        c = await self.ctx(request)
        return _json(await self.e.run(c, "quota.set", quota_resource(b.get("metric"), b.get("period"), b.get("user")), lambda: self.e.quota_set(c, b.get("metric", ""), b.get("limit"), b.get("period", ""), b.get("user"), b.get("alerts"))))

    async def quotas_remove(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        q = request.query
        return _json(await self.e.run(c, "quota.remove", quota_resource(q.get("metric"), q.get("period"), q.get("user")), lambda: self.e.quota_remove(c, q.get("metric", ""), q.get("period", ""), q.get("user") or None)))

    async def usage_record(self, request: web.Request) -> web.Response:
        b = await body(request)
        c = await self.ctx(request)
        return _json(await self.e.run(c, "usage.record", f"model:{b.get('model')}", lambda: self.e.usage_record(c, b.get("model", ""), b.get("input_tokens", 0), b.get("output_tokens", 0), b.get("requests", 1), b.get("cost_usd"), b.get("task_kind"))), 201)

    async def usage_history(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        q = request.query
        return _json(await self.e.usage_history(c, q.get("bucket", "hour"), q.get("since_hours", "24"), q.get("user") or None))

    async def reservations_list(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        return _json(await self.e.run(c, "usage.reservations", "reservations", lambda: self.e.reservation_list(c)))

    async def reservations_create(self, request: web.Request) -> web.Response:
        b = await body(request)
        c = await self.ctx(request)
        return _json(await self.e.run(c, "usage.reserve", "reservation", lambda: self.e.usage_reserve(c, b.get("tokens", 0), b.get("requests", 1), b.get("cost_usd"), b.get("ttl_s"))), 201)

    async def reservations_settle(self, request: web.Request) -> web.Response:
        b = await body(request)
        c = await self.ctx(request)
        rid = request.match_info["rid"]
        return _json(await self.e.run(c, "usage.settle", f"reservation:{rid}", lambda: self.e.usage_settle(c, rid, b.get("input_tokens", 0), b.get("output_tokens", 0), b.get("requests", 1), b.get("cost_usd"), b.get("model"), b.get("task_kind"))))

    async def reservations_release(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        rid = request.match_info["rid"]
        return _json(await self.e.run(c, "usage.release", f"reservation:{rid}", lambda: self.e.usage_release(c, rid)))

    # -- audit ------------------------------------------------------------------------------

    async def audit_list(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        return _json(await self.e.audit_list(c, dict(request.query)))

    async def audit_verify(self, request: web.Request) -> web.Response:
        c = await self.ctx(request)
        b = await body(request)
        anchor = b.get("anchor")
        if anchor is not None and not isinstance(anchor, dict):
            raise BadRequest("anchor must be a checkpoint document (a JSON object).", field="anchor")
        return _json(await self.e.audit_verify(c, anchor))

    async def audit_export(self, request: web.Request) -> web.Response:
        b = await body(request)
        c = await self.ctx(request)
        filters = b.get("filters") or {}
        if not isinstance(filters, dict):
            raise BadRequest("filters must be a JSON object.")
        return _json(await self.e.audit_export(c, str(b.get("format", "")), str(b.get("path", "")), filters))

    async def audit_prune(self, request: web.Request) -> web.Response:
        b = await body(request)
        c = await self.ctx(request)
        return _json(await self.e.audit_prune(c, b.get("before")))

    async def audit_checkpoint(self, request: web.Request) -> web.Response:
        b = await body(request)
        c = await self.ctx(request)
        return _json(await self.e.audit_checkpoint(c, b.get("path")))

    # -- events -----------------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events of one tenant: ``audit`` (needs audit.read), ``quota.alert`` (quotas.read)."""
        c = await self.ctx(request)
        perms = self.e.state.permissions_of(c.tenant, c.user, c.project)

        def check() -> None:
            if not perms:
                raise PermissionDenied(
                    f"permission denied: {c.user} has no role in tenant {c.tenant!r}; the event stream needs "
                    "'audit.read' or 'quotas.read' there.",
                    permission="any role in the tenant",
                )
            self.e.suspended_read_check(c)

        await self.e.run(c, "events.subscribe", "events", check)  # a refusal is audited
        wanted = set(filter(None, request.query.get("types", "").split(","))) or {"audit", "quota.alert"}

        def allow(ev: dict[str, Any]) -> bool:
            t = ev.get("type", "")
            if t not in wanted:
                return False
            if t == "audit":
                return "audit.read" in perms
            if t == "quota.alert":
                return "quotas.read" in perms
            return True

        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        sub = self.e.bus.subscribe(c.tenant, allow)
        n = 0
        stopping: asyncio.Future[Any] | None = None
        try:
            await resp.write(b": connected\n\n")
            stopping = asyncio.ensure_future(self.stop.wait())
            while not self.stop.is_set():
                # Wake on an event, on engine stop (else a graceful stop waits out the
                # keep-alive timeout of every open stream), or to send a keep-alive.
                getter = asyncio.ensure_future(sub.queue.get())
                await asyncio.wait({getter, stopping}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    if not self.stop.is_set():
                        await resp.write(b": keep-alive\n\n")
                    continue
                ev = getter.result()
                n += 1
                if sub.dropped:
                    ev = {**ev, "dropped_before": sub.dropped}
                    sub.dropped = 0
                data = json.dumps(ev, ensure_ascii=False, default=str)
                await resp.write(f"id: {n}\nevent: {ev.get('type')}\ndata: {data}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.e.bus.unsubscribe(sub)
            if stopping is not None:
                stopping.cancel()
        return resp


def build_app(engine: Engine, stop: asyncio.Event) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=1 << 20)
    app[ENGINE_KEY] = engine
    app[STOP_KEY] = stop
    a = Api(engine, stop)
    r = app.router
    r.add_get("/v1/health", a.health)
    r.add_get("/v1/whoami", a.whoami)
    r.add_post("/v1/engine/stop", a.engine_stop)
    r.add_get("/v1/tenants", a.tenants_list)
    r.add_post("/v1/tenants", a.tenants_create)
    r.add_get("/v1/tenants/{name}", a.tenants_show)
    r.add_post("/v1/tenants/{name}/suspend", a.tenants_suspend)
    r.add_post("/v1/tenants/{name}/resume", a.tenants_resume)
    r.add_get("/v1/projects", a.projects_list)
    r.add_post("/v1/projects", a.projects_add)
    r.add_delete("/v1/projects/{name}", a.projects_remove)
    r.add_get("/v1/roles", a.roles_list)
    r.add_post("/v1/roles", a.roles_create)
    r.add_get("/v1/roles/{name}", a.roles_show)
    r.add_delete("/v1/roles/{name}", a.roles_delete)
    r.add_get("/v1/members", a.members_list)
    r.add_post("/v1/members", a.members_add)
    r.add_delete("/v1/members/{user}", a.members_remove)
    r.add_get("/v1/quotas", a.quotas_status)
    r.add_put("/v1/quotas", a.quotas_set)
    r.add_delete("/v1/quotas", a.quotas_remove)
    r.add_post("/v1/usage", a.usage_record)
    r.add_get("/v1/usage/history", a.usage_history)
    r.add_get("/v1/reservations", a.reservations_list)
    r.add_post("/v1/reservations", a.reservations_create)
    r.add_post("/v1/reservations/{rid}/settle", a.reservations_settle)
    r.add_post("/v1/reservations/{rid}/release", a.reservations_release)
    r.add_get("/v1/audit", a.audit_list)
    r.add_post("/v1/audit/verify", a.audit_verify)
    r.add_post("/v1/audit/export", a.audit_export)
    r.add_post("/v1/audit/prune", a.audit_prune)
    r.add_post("/v1/audit/checkpoint", a.audit_checkpoint)
    r.add_get("/v1/events", a.events)
    routes_trace.setup(app, a)
    routes_models.setup(app, a)
    return app
