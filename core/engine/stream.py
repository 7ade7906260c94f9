"""``GET /v1/events``: a tenant's server-sent event stream (audit events, quota alerts).

The subscription and its caps, revocation and slow-reader handling are in
``core/engine/events.py``; this module is the HTTP side: the permission check
at subscribe, the frames, keep-alives and the closing event.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from core.engine import access
from core.engine.http import Api, asked
from core.errors import PermissionDenied

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


async def events(api: Api, request: web.Request) -> web.StreamResponse:
    """Server-sent events of one tenant: ``audit`` (needs audit.read), ``quota.alert`` (quotas.read).

    Capped per user and in all, closed with a ``stream.closed`` event when the
    subscriber's access is revoked or it reads too slowly (core/engine/events.py).
    """
    c = await api.ctx(request)
    perms = api.r.perms(c)  # the stream is the tenant's: only tenant-scope roles count

    def check() -> None:
        if not perms:
            raise PermissionDenied(
                f"permission denied: {c.user} has no role in tenant {c.tenant!r}; the event stream needs "
                "'audit.read' or 'quotas.read' there.",
                permission="any role in the tenant",
            )
        access.suspended_read_check(api.r.state, c)

    await api.r.run(c, "events.subscribe", "events", check)  # a refusal is audited
    wanted = frozenset(filter(None, request.query.get("types", "").split(","))) or frozenset({"audit", "quota.alert"})
    a = asked(request)

    def may_receive() -> frozenset[str]:
        """What the subscriber may receive now, judged as a new request would be; raises when nothing."""
        now = api.r.make_ctx(c.real_user, a.as_user, c.tenant, a.cwd, a.project)
        perms_now = api.r.perms(now)  # tenant-scope roles only, as at subscribe
        if not perms_now:
            raise PermissionDenied(f"{now.user} has no role in tenant {now.tenant!r} any more.")
        access.suspended_read_check(api.r.state, now)
        return stream_kinds(wanted, perms_now)

    sub = api.r.bus.subscribe(c.tenant, c.real_user, stream_kinds(wanted, perms), may_receive)
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
        api.r.bus.unsubscribe(sub)
        if cut is not None:
            cut.cancel()
    return resp
