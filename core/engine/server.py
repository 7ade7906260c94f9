"""JSON-over-HTTP API of the engine on a Unix socket (aiohttp), versioned under ``/v1/``.

The caller is the OS user on the other end of the socket (SO_PEERCRED); the
client's headers choose only tenant, project and an ``--as`` impersonation,
which is itself permission-checked.  Every route is documented in docs/api.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import pwd
import socket
import struct
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from core import __version__, limits
from core.engine import routes_models, routes_trace
from core.engine.auditops import ExportContent
from core.engine.base import Ctx
from core.engine.engine import Engine
from core.engine.jsontext import answer_text
from core.errors import BadRequest, MusubiError, NotFound, PayloadTooLarge, PermissionDenied
from core.limits import MAX_DEPTH
from core.quotas import quota_resource
from core.rbac import SYSTEM_LOG

log = logging.getLogger("musubi.engine.server")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ENGINE_KEY = web.AppKey("engine", Engine)
STOP_KEY = web.AppKey("stop", asyncio.Event)
_SO_PEERCRED = getattr(socket, "SO_PEERCRED", 17)
MAX_BODY = 1 << 20  # bytes of one request body


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
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # Any other refusal aiohttp raises gets the JSON error shape too.
        err = MusubiError(f"{request.method} {request.path}: {exc.reason}.", code=exc.reason.lower().replace(" ", "_"))
        err.http_status = exc.status
        return error_response(err)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("internal error on %s %s", request.method, request.path)
        err = MusubiError(f"internal engine error: {type(exc).__name__}: {exc}. Details are in the engine log.", code="internal")
        return error_response(err)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a repeated key (json would silently keep the last one)."""
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for k, _v in pairs:
            if k in seen:
                raise BadRequest(f"request body repeats the key {k!r}; give each key once.", field=k)
            seen.add(k)
    return d


def _constant(name: str) -> Any:
    raise BadRequest(f"request body contains {name}, which is not JSON; give numbers as digits.")


def _float(text: str) -> float:
    f = float(text)
    if math.isinf(f):
        raise BadRequest(f"number {text[:40]} in the request body is too large for any field; see docs/api.md#ranges.")
    return f


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant, parse_float=_float)


def _check_depth(data: Any, text: str) -> None:
    """Refuse bodies nested deeper than MAX_DEPTH (they only ever make trouble further on)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # cannot be that deep: the common case, without walking anything
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadRequest(f"request body is nested more than {MAX_DEPTH} levels deep; no request needs that.")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))


async def body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, strictly parsed (every refusal a 400 naming the problem)."""
    if not request.can_read_body:
        return {}
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(
            f"request body is larger than the engine accepts ({MAX_BODY:,} bytes); "
            "send less at once (e.g. fewer texts or paths per estimate)."
        ) from None
    try:
        # Decode strictly ourselves: json.loads(bytes) would let UTF-8-encoded surrogates through.
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not UTF-8 text (bad byte at offset {exc.start}); send JSON encoded as UTF-8.") from None
    try:
        data = _DECODER.decode(text)
    except json.JSONDecodeError:
        raise BadRequest("request body is not valid JSON.") from None
    except RecursionError:
        raise BadRequest(f"request body is nested more than {MAX_DEPTH} levels deep; no request needs that.") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise BadRequest(f"request body has a number no field can hold ({exc}); see docs/api.md#ranges.") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object.")
    _check_depth(data, text)
    if "\\u" in text:
        try:
            # JSON may carry lone surrogates ("\ud800"), only ever as an escape; they cannot be
            # hashed or stored, and an operation would only fail after it had queued writes, so
            # refuse them up front.
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("request body contains invalid Unicode (a lone surrogate); send UTF-8 text.") from None
    return data


def _flag(b: dict[str, Any], key: str) -> bool:
    v = b.get(key, False)
    if not isinstance(v, bool):
        raise BadRequest(f"{key} must be true or false.", field=key)
    return v


MAX_DESTINATION = 4096


def destination_label(b: dict[str, Any]) -> str | None:
    """Where the client says it will write an export (``destination``, or ``path`` as before): recorded, never opened."""
    v = b.get("destination", b.get("path"))
    if v in (None, ""):
        return None
    if not isinstance(v, str) or len(v) > MAX_DESTINATION or "\x00" in v:
        raise BadRequest(f"destination must be a path of at most {MAX_DESTINATION} characters.", field="destination")
    return v


_EXPORT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


async def stream_export(request: web.Request, out: ExportContent) -> web.StreamResponse:
    """Send an export's content with its length (so the client can tell a cut-off stream) and event count."""
    resp = web.StreamResponse(headers={
        "Content-Type": _EXPORT_TYPES.get(out.format, "application/octet-stream"),
        "X-Musubi-Events": str(out.events),
        "X-Musubi-Format": out.format,
    })
    resp.content_length = out.size
    try:
        await resp.prepare(request)
        while chunk := await asyncio.to_thread(out.file.read, 1 << 20):
            await resp.write(chunk)
        await resp.write_eof()
    except (ConnectionResetError, ConnectionError):
        log.info("the client closed an export stream of %d bytes before its end", out.size)
    finally:
        out.file.close()
    return resp


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
            # log when there is no such tenant (so probing for names is on record too, for system
            # owners, without flooding the log of 'default').
            where = tenant if tenant in self.e.state.tenants else SYSTEM_LOG
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
        visible = st.is_member(c.tenant, c.user) or self.e.system_owner(c)
        return _json(
            {
                "user": c.user,
                "real_user": c.real_user,
                "tenant": c.tenant,
                "tenant_status": st.tenants[c.tenant].status if visible else None,
                "project": c.project,
                "roles": st.roles_of(c.tenant, c.user, c.project),
                "permissions": sorted(self.e.perms(c, c.project)),
                # What counts for the tenant's own resources (members, quotas, audit, tenants):
                # project roles add to "permissions" only for their project.
                "tenant_permissions": sorted(self.e.perms(c)),
            }
        )

    async def engine_stop(self, request: web.Request) -> web.Response:
        c = await self.ctx(request, "default", outsiders=True)

        def op() -> None:
            # Both the socket peer and whoever it acts as: --as never lends the power to stop.
            me = pwd.getpwuid(os.getuid()).pw_name
            if c.user != me or c.real_user != me:
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
        reason = limits.text(b.get("reason"), "reason", limits.MAX_REASON_LEN)
        c = await self.ctx(request, outsiders=True)
        name = request.match_info["name"]
        return _json(await self.e.run(c, "tenant.suspend", f"tenant:{name}", lambda: self.e.tenant_suspend(c, name, reason)))

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
        path = limits.text(b.get("path"), "path", limits.MAX_PATH_LEN, required=True) or ""
        name = limits.text(b.get("name"), "name", 128)
        c = await self.ctx(request)
        return _json(await self.e.run(c, "project.add", f"project:{name or path}", lambda: self.e.project_add(c, path, name, b.get("shared", False))), 201)

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
        if not isinstance(perms, list) or not all(isinstance(p, str) for p in perms):
            raise BadRequest("permissions must be a list of permission names.", field="permissions")
        description = limits.text(b.get("description"), "description", limits.MAX_REASON_LEN) or ""
        return _json(await self.e.run(c, "role.create", f"role:{b.get('name')}", lambda: self.e.role_create(c, b.get("name", ""), perms, description)), 201)

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
        project = limits.text(b.get("project"), "project", 128)
        c = await self.ctx(request)
        return _json(await self.e.run(c, "member.add", f"member:{b.get('user')}", lambda: self.e.member_add(c, b.get("user", ""), b.get("role", ""), project)), 201)

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
        user = limits.text(b.get("user"), "user", 64)
        c = await self.ctx(request)
        return _json(await self.e.run(c, "quota.set", quota_resource(b.get("metric"), b.get("period"), b.get("user")), lambda: self.e.quota_set(c, b.get("metric", ""), b.get("limit"), b.get("period", ""), user, b.get("alerts"))))

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
        return _json(await self.e.audit_verify(c, anchor, system=b.get("system", False)))

    async def audit_export(self, request: web.Request) -> web.StreamResponse:
        """The export's content, streamed; the client writes the file (docs/api.md#export-files)."""
        b = await body(request)
        c = await self.ctx(request)
        filters = b.get("filters") or {}
        if not isinstance(filters, dict) or not all(isinstance(v, (str, int, bool)) or v is None for v in filters.values()):
            raise BadRequest("filters must be a JSON object of text, number or true/false values.", field="filters")
        fmt, dry = str(b.get("format", "")), _flag(b, "dry_run")
        out = await self.e.audit_export(c, fmt, filters, destination_label(b), dry_run=dry)
        if out is None:
            return _json({"ok": True, "format": fmt, "dry_run": True})
        return await stream_export(request, out)

    async def audit_prune(self, request: web.Request) -> web.Response:
        b = await body(request)
        c = await self.ctx(request)
        return _json(await self.e.audit_prune(c, b.get("before")))

    async def audit_checkpoint(self, request: web.Request) -> web.Response:
        b = await body(request)
        limits.text(b.get("path"), "path", limits.MAX_PATH_LEN)
        c = await self.ctx(request)
        return _json(await self.e.audit_checkpoint(c, destination_label(b), dry_run=_flag(b, "dry_run")))

    # -- events -----------------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events of one tenant: ``audit`` (needs audit.read), ``quota.alert`` (quotas.read).

        Capped per user and in all, closed with a ``stream.closed`` event when the
        subscriber's access is revoked or it reads too slowly (core/engine/events.py).
        """
        c = await self.ctx(request)
        perms = self.e.perms(c)  # the stream is the tenant's: only tenant-scope roles count

        def check() -> None:
            if not perms:
                raise PermissionDenied(
                    f"permission denied: {c.user} has no role in tenant {c.tenant!r}; the event stream needs "
                    "'audit.read' or 'quotas.read' there.",
                    permission="any role in the tenant",
                )
            self.e.suspended_read_check(c)

        await self.e.run(c, "events.subscribe", "events", check)  # a refusal is audited
        wanted = frozenset(filter(None, request.query.get("types", "").split(","))) or frozenset({"audit", "quota.alert"})
        h = request.headers
        as_user, cwd, project = h.get("X-Musubi-As") or None, h.get("X-Musubi-Cwd"), h.get("X-Musubi-Project") or None

        def access() -> frozenset[str]:
            """What the subscriber may receive now, judged as a new request would be; raises when nothing."""
            now = self.e.make_ctx(c.real_user, as_user, c.tenant, cwd, project)
            perms_now = self.e.perms(now)  # tenant-scope roles only, as at subscribe
            if not perms_now:
                raise PermissionDenied(f"{now.user} has no role in tenant {now.tenant!r} any more.")
            self.e.suspended_read_check(now)
            return stream_kinds(wanted, perms_now)

        sub = self.e.bus.subscribe(c.tenant, c.real_user, stream_kinds(wanted, perms), access)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        resp.force_close()  # a stream's connection ends with it
        transport = request.transport
        cut: asyncio.TimerHandle | None = None

        def on_close() -> None:
            nonlocal cut
            # A reader too slow to drain its backlog may also block our write: give it a moment
            # to take the close event, then cut the connection.
            if transport is not None and sub.closed is not None and sub.closed["reason"] == "slow_reader":
                # abort, not close: close would wait for the unread buffer to drain, forever.
                cut = asyncio.get_running_loop().call_later(SLOW_READER_GRACE_S, transport.abort)

        sub.on_close = on_close
        n = 0
        try:
            await resp.prepare(request)
            await resp.write(b": connected\n\n")
            quiet = 0.0
            while sub.closed is None:
                if not await sub.wait(GONE_CHECK_S):
                    if transport is None or transport.is_closing():
                        break  # the client went away: free its place under the caps now
                    quiet += GONE_CHECK_S
                    if quiet >= KEEPALIVE_S:
                        quiet = 0.0
                        sub.recheck()  # also on a timer, whatever changed state without an audit event
                        if sub.closed is None:
                            await resp.write(b": keep-alive\n\n")
                    continue
                frames = []
                while sub.pending:
                    ev = sub.pending.popleft()
                    n += 1
                    frames.append(f"id: {n}\nevent: {ev.type}\ndata: {ev.data}\n\n")
                    if ev.type == "audit":
                        sub.last_audit_seq = ev.event["event"]["seq"]
                if frames:
                    await resp.write("".join(frames).encode())
            if sub.closed is not None:
                await resp.write(f"event: stream.closed\ndata: {json.dumps(sub.closed, ensure_ascii=False)}\n\n".encode())
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.e.bus.unsubscribe(sub)
            if cut is not None:
                cut.cancel()
        return resp


# What each event type needs; other types (run status, later) go to anyone with a role.
STREAM_NEEDS = {"audit": "audit.read", "quota.alert": "quotas.read"}


def stream_kinds(wanted: frozenset[str], perms: frozenset[str] | set[str]) -> frozenset[str]:
    """The event types of ``wanted`` that ``perms`` may receive."""
    return frozenset(t for t in wanted if t not in STREAM_NEEDS or STREAM_NEEDS[t] in perms)

KEEPALIVE_S = 15.0
# How often an idle stream looks whether its client is still there (aiohttp does not tell a
# waiting handler); a wake-up per second per idle stream, never anything per write.
GONE_CHECK_S = 1.0
SLOW_READER_GRACE_S = 5.0


def build_app(engine: Engine, stop: asyncio.Event) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_BODY)
    app[ENGINE_KEY] = engine
    app[STOP_KEY] = stop
    a = Api(engine, stop)

    async def close_streams(_app: web.Application) -> None:
        # Before the server waits for open handlers: end every stream with its reason.
        engine.bus.close_all("engine_stopping", "the engine is stopping; reconnect once it runs again.")

    app.on_shutdown.append(close_streams)
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
