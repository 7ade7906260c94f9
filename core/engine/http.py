"""HTTP plumbing of the engine API: peer credentials, errors, strict bodies, the caller's context.

Nothing here knows a route: ``core/engine/routing.py`` builds handlers from the
route tables (``routes.py``, ``routes_trace.py``, ``routes_models.py``) on top of
this module, and ``server.py`` assembles the application.  Feature route modules
import this module, never ``server.py`` (an import-linter contract keeps it so).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import pwd
import socket
import struct
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from aiohttp import web

from core.engine.access import Caller
from core.engine.auditops import ExportContent
from core.engine.engine import Engine
from core.engine.jsontext import answer_text
from core.errors import BadRequest, MusubiError, NotFound, PayloadTooLarge, PermissionDenied
from core.identity.service import SSO_SESSION_HEADER
from core.identity.sessions import SESSION_HEADER, SessionRefused
from core.limits import MAX_DEPTH
from core.rbac import SYSTEM_LOG

log = logging.getLogger("musubi.engine.server")  # the name operators grep for
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ENGINE_KEY = web.AppKey("engine", Engine)
STOP_KEY = web.AppKey("stop", asyncio.Event)
_SO_PEERCRED = getattr(socket, "SO_PEERCRED", 17)
MAX_BODY = 1 << 20  # bytes of one request body


def json_response(data: Any, status: int = 200) -> web.Response:
    """An answer as JSON (``core/engine/jsontext.py`` encodes it)."""
    return web.Response(
        body=answer_text(data).encode("utf-8"), status=status, content_type="application/json"
    )


def error_response(exc: MusubiError) -> web.Response:
    return json_response({"error": exc.to_dict()}, status=exc.http_status)


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
        return error_response(
            NotFound(
                f"no such route {request.method} {request.path}; see docs/api.md.", code="no_route"
            )
        )
    except web.HTTPMethodNotAllowed:
        return error_response(
            BadRequest(
                f"method {request.method} is not allowed on {request.path}.",
                code="method_not_allowed",
            )
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # Any other refusal aiohttp raises gets the JSON error shape too.
        err = MusubiError(
            f"{request.method} {request.path}: {exc.reason}.",
            code=exc.reason.lower().replace(" ", "_"),
        )
        err.http_status = exc.status
        return error_response(err)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("internal error on %s %s", request.method, request.path)
        err = MusubiError(
            f"internal engine error: {type(exc).__name__}: {exc}. Details are in the engine log.",
            code="internal",
        )
        return error_response(err)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a repeated key (json would silently keep the last one)."""
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for k, _v in pairs:
            if k in seen:
                raise BadRequest(
                    f"request body repeats the key {k!r}; give each key once.", field=k
                )
            seen.add(k)
    return d


def _constant(name: str) -> Any:
    raise BadRequest(f"request body contains {name}, which is not JSON; give numbers as digits.")


def _float(text: str) -> float:
    f = float(text)
    if math.isinf(f):
        raise BadRequest(
            f"number {text[:40]} in the request body is too large for any field; see docs/api.md#ranges."
        )
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
            raise BadRequest(
                f"request body is nested more than {MAX_DEPTH} levels deep; no request needs that."
            )
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
        raise BadRequest(
            f"request body is not UTF-8 text (bad byte at offset {exc.start}); send JSON encoded as UTF-8."
        ) from None
    try:
        data = _DECODER.decode(text)
    except json.JSONDecodeError:
        raise BadRequest("request body is not valid JSON.") from None
    except RecursionError:
        raise BadRequest(
            f"request body is nested more than {MAX_DEPTH} levels deep; no request needs that."
        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise BadRequest(
            f"request body has a number no field can hold ({exc}); see docs/api.md#ranges."
        ) from None
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
            raise BadRequest(
                "request body contains invalid Unicode (a lone surrogate); send UTF-8 text."
            ) from None
    return data


_EXPORT_TYPES = {
    "jsonl": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


async def stream_export(request: web.Request, out: ExportContent) -> web.StreamResponse:
    """Send an export's content with its length (so the client can tell a cut-off stream) and event count."""
    resp = web.StreamResponse(
        headers={
            "Content-Type": _EXPORT_TYPES.get(out.format, "application/octet-stream"),
            "X-Musubi-Events": str(out.events),
            "X-Musubi-Format": out.format,
        }
    )
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


class Asked(NamedTuple):
    """What the client's headers ask for (never who it is: that is the socket peer).

    A NamedTuple: made once per request, and cheaper to make than a dataclass.
    """

    tenant: str
    as_user: str | None
    cwd: str | None
    project: str | None


def asked(request: web.Request, tenant: str | None = None) -> Asked:
    """The identity headers of ``request`` (``X-Musubi-Tenant``, ``-As``, ``-Cwd``, ``-Project``)."""
    h = request.headers
    return Asked(
        tenant or h.get("X-Musubi-Tenant") or "default", h.get("X-Musubi-As") or None,
        h.get("X-Musubi-Cwd"), h.get("X-Musubi-Project") or None,
    )


class Api:
    """The engine as every route handler sees it: the engine (its services), its op runner,
    the stop event and the caller's context."""

    def __init__(self, engine: Engine, stop: asyncio.Event) -> None:
        self.e = engine
        self.r = engine.runner
        self.stop = stop

    async def ctx(
        self, request: web.Request, tenant: str | None = None, *, outsiders: bool = False
    ) -> Caller:
        """The caller's context; with ``outsiders`` also for someone with no role in the tenant.

        identity / SSO: ``sso`` is the live session the ``X-Musubi-Sso-Session`` header names for this
        peer; except on ``outsiders`` routes, a tenant requiring SSO refuses a caller without one.
        """
        real = peer_user(request)
        token = request.headers.get(SESSION_HEADER)
        if token:  # a remote session (docs/remote.md): the engine acts as the session's user
            return await self.session_ctx(request, real, token, tenant, outsiders)
        a = asked(request, tenant)
        tenant, as_user = a.tenant, a.as_user
        sso = self.e.identity.resolve(request.headers.get(SSO_SESSION_HEADER), real)

        def make() -> Caller:
            try:
                c = self.r.make_ctx(real, as_user, tenant, a.cwd, a.project, outsiders=outsiders)
                c.sso = sso
                if not outsiders:
                    self.e.identity.gate(c)
                return c
            except PermissionDenied as exc:
                exc.extra["route"] = f"{request.method} {request.path}"  # recorded with the denial
                raise

        try:
            return make()  # writes nothing, so it needs no op of its own unless it is refused
        except PermissionDenied as exc:
            # Running it as an op audits the refusal: in the tenant asked for, or in the system
            # log when there is no such tenant (so probing for names is on record too, for system
            # owners, without flooding the log of 'default').
            where = tenant if tenant in self.r.state.tenants else SYSTEM_LOG
            if (
                exc.extra.get("permission") == "impersonate"
            ):  # refused impersonation: the real user acted
                return await self.r.run(
                    Caller(real, real, where), "impersonate", f"user:{as_user}", make
                )
            return await self.r.run(
                Caller(real, as_user or real, where), "tenant.access", f"tenant:{tenant}", make
            )

    async def session_ctx(
        self, request: web.Request, peer: str, token: str, tenant: str | None, outsiders: bool
    ) -> Caller:
        """The context of a request carrying a session token: its user, in its one tenant.

        A refused token is audited (in the session's tenant when the token is known, else in
        the system log); the first accepted request of a session is audited once.
        """
        a = asked(request, tenant)
        explicit = tenant or request.headers.get("X-Musubi-Tenant")
        sessions = self.e.sessions
        # tutorials (issue 18): a session may also act in its user's live sandbox tenants (docs/remote.md)
        lent = await self.e.tutorials.live_sandboxes() if explicit else {}
        try:
            s = sessions.resolve(token, peer, explicit, lent)
        except SessionRefused as exc:
            if not sessions.audit_refusal(exc):
                raise
            refused = exc
            refused.extra["route"] = f"{request.method} {request.path}"
            where = refused.extra.get("tenant") or SYSTEM_LOG

            def refuse() -> Caller:
                raise refused

            resource = f"session:{refused.extra.get('session', '?')}"
            return await self.r.run(Caller(peer, peer, where), "session.use", resource, refuse)

        where = explicit or s.tenant  # resolve accepted it: the session's tenant or one of its user's sandboxes

        def make() -> Caller:
            c = self.r.make_ctx(s.user, a.as_user, where, a.cwd, a.project, outsiders=outsiders)
            c.session, c.auth = s.id, s.auth
            if not outsiders:  # "SSO required" counts only a SAML/OIDC sign-in (core/identity/gate.py)
                self.e.identity.gate(c)
            return c

        try:
            c = make()
        except PermissionDenied:  # e.g. the user lost their role, or a refused --as: audited
            return await self.r.run(Caller(s.user, s.user, where, session=s.id), "tenant.access",
                                    f"tenant:{where}", make)
        if sessions.unused_in(s, c.tenant):
            await self.r.run(c, "session.use", f"session:{s.id}", lambda: sessions.first_use(c, s))
        return c
