"""Engine-minted session tokens: how a remote session (``musubi serve ssh|web``) acts as a musubi user.

The serve process runs as the engine's own OS user.  For each SSH connection or
browser session it asks the engine (``POST /v1/sessions``, which only that OS
user acting as themself may call) for a token bound to one (user, tenant) pair
and one purpose, and hands it to the TUI process it starts through an inherited
pipe, never an environment variable.  The TUI sends it as ``X-Musubi-Session``;
the engine then builds the caller as that user (``core/engine/http.py``), with
``Caller.session`` set so the engine's OS-user powers are never lent
(``access.is_engine_user``).

Tokens live only in the engine's memory: an engine restart voids them all (the
TUI then says its session ended).  Only a SHA-256 of each token is kept; the
token itself is returned once, to the minting call, and never logged or audited.
Every mint, first use, refusal and revocation is audited (docs/remote.md).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.audit import ts_text
from core.engine import access
from core.engine.access import Caller
from core.engine.runner import OpRunner
from core.errors import NotFound, PermissionDenied
from core.identity import gate as policy
from core.rbac import SYSTEM_LOG

TOKEN_PREFIX = "mst_"  # musubi session token: recognisable in a leak report
SESSION_HEADER = "X-Musubi-Session"
# A TUI left running past its session's end keeps refreshing: its refusals are recognised (and
# audited once) for this long after expiry, not turned into "unknown token" events forever.
KEEP_EXPIRED = timedelta(days=1)
# (user, auth, subject, {"groups": ..., "roles": ...}) -> the mapping changes (IdentityService.map_remote)
Mapper = Callable[[str, str, str, dict[str, set[str]]], list[Any]]


@dataclass
class Session:
    """One minted token's record (the token itself is not kept, only its hash)."""

    id: str
    user: str
    tenant: str
    purpose: str
    client: str
    created_at: datetime
    expires_at: datetime
    auth: str = "ssh-key"  # how the user was authenticated: ssh-key, web-token, saml:IDP, oidc:PROVIDER
    used: bool = False
    revoked: str | None = None  # why, once revoked (kept until expiry for a clear refusal)
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """The session as answered (never the token)."""
        return {
            "id": self.id, "user": self.user, "tenant": self.tenant, "purpose": self.purpose,
            "client": self.client, "created_at": ts_text(self.created_at),
            "expires_at": ts_text(self.expires_at), "used": self.used, "auth": self.auth,
        }


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class SessionRefused(PermissionDenied):
    """A session token that cannot be used (unknown, expired, revoked, wrong peer or tenant)."""

    code = "session_invalid"


class SessionService:
    """Mint, resolve, list and revoke session tokens; audit remote log-ins (``engine.sessions``)."""

    def __init__(self, runner: OpRunner) -> None:
        self.r = runner
        self._by_hash: dict[str, Session] = {}
        self._by_id: dict[str, Session] = {}

    # -- housekeeping -----------------------------------------------------------------------

    def _sweep(self, now: datetime) -> None:
        """Forget sessions a day past their expiry (until then a late use is refused as expired, not unknown)."""
        gone = [h for h, s in self._by_hash.items() if s.expires_at + KEEP_EXPIRED <= now]
        for h in gone:
            s = self._by_hash.pop(h)
            self._by_id.pop(s.id, None)

    @staticmethod
    def _engine_only(ctx: Caller, what: str) -> None:
        if not access.is_engine_user(ctx):
            raise PermissionDenied(
                f"permission denied: only the OS user who runs the engine ({access.engine_os_user()}), acting as "
                f"themself, may {what}; it is what `musubi serve` does for each remote session.",
                permission="engine",
            )

    # -- operations (run by OpRunner.run: refusals raised here are audited) --------------------

    def mint(
        self, ctx: Caller, user: str, tenant: str, purpose: str, ttl_s: int, client: str, auth: str | None = None,
        groups: list[str] | None = None, roles: list[str] | None = None, subject: str = "",
        mapper: Mapper | None = None,
    ) -> dict[str, Any]:
        """A new token for ``user`` in ``tenant``; the engine's OS user only; audited as ``session.mint``.

        A SAML/OIDC sign-in (``auth`` ``saml:IDP``/``oidc:NAME``) first goes through the tenants' SSO
        mapping rules (``mapper``: :meth:`IdentityService.map_remote`), so a rule can grant the role
        the session needs; its user then counts as signed in through SSO (core/identity/gate.py).
        The mapping stands even when the mint is then refused (the sign-in happened, as with
        ``musubi login``); a missing or suspended tenant is refused before any mapping.
        """
        self._engine_only(ctx, "mint session tokens")
        auth = auth or ("ssh-key" if purpose == "ssh" else "web-token")
        st = self.r.state
        if tenant not in st.tenants:
            raise PermissionDenied(
                f"cannot mint a session in tenant {tenant!r}: there is no such tenant. "
                "Check the tenant named for this key or sign-in (docs/remote.md).",
                permission="engine", resource=f"tenant:{tenant}",
            )
        if st.tenants[tenant].status == "suspended":
            raise PermissionDenied(
                f"cannot mint a session in tenant {tenant!r}: the tenant is suspended.",
                permission="engine", resource=f"tenant:{tenant}",
            )
        mapped: list[Any] = []
        if mapper is not None and auth.startswith(("saml:", "oidc:")):
            mapped = mapper(user, auth, subject or user, {"groups": set(groups or ()), "roles": set(roles or ())})
        if not st.is_member(tenant, user):
            raise PermissionDenied(
                f"cannot mint a session for {user!r} in tenant {tenant!r}: {user} has no role there. "
                f"An owner can add them with: musubi --tenant {tenant} member add {user} --role viewer",
                permission="engine", resource=f"user:{user}",
            )
        # "SSO required": an ssh-key or web-token session is told at once, not at its first request
        # (each request is gated again: the policy may be turned on later; core/engine/http.py)
        policy.gate(st, Caller(user, user, tenant, session="(new)", auth=auth))
        now = self.r.now()
        self._sweep(now)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        s = Session(
            id=secrets.token_hex(8), user=user, tenant=tenant, purpose=purpose, client=client,
            created_at=now, expires_at=now + timedelta(seconds=ttl_s), auth=auth,
        )
        self._by_hash[token_hash(token)] = s
        self._by_id[s.id] = s
        self.r.audit(tenant, ctx, "session.mint", f"session:{s.id}",
                     details={"user": user, "purpose": purpose, "client": client, "auth": auth,
                              "expires_at": ts_text(s.expires_at),
                              **({"mapped": {c.tenant: c.action for c in mapped}} if mapped else {})})
        return {**s.row(), "token": token}

    def revoke(self, ctx: Caller, id: str, reason: str | None) -> dict[str, Any]:
        """End session ``id`` (logout or disconnect): the engine's OS user, or the session itself."""
        s = self._by_id.get(id)
        if ctx.session != id:
            self._engine_only(ctx, "revoke another session")
        if s is None or s.revoked:
            raise NotFound(f"no live session {id!r} (it expired, was revoked, or the engine restarted).",
                           resource=f"session:{id}")
        s.revoked = reason or "revoked"
        self.r.audit(s.tenant, ctx, "session.revoke", f"session:{s.id}",
                     details={"user": s.user, "purpose": s.purpose, "reason": s.revoked})
        return {**s.row(), "revoked": True}

    def list(self, ctx: Caller) -> list[dict[str, Any]]:
        """Live (unexpired, unrevoked) sessions, oldest first; the engine's OS user only."""
        self._engine_only(ctx, "list remote sessions")
        self._sweep(self.r.now())
        now = self.r.now()
        return [s.row() for s in self._by_id.values() if not s.revoked and s.expires_at > now]

    def remote_event(
        self, ctx: Caller, mode: str, event: str, user: str | None, tenant: str | None, client: str,
        reason: str | None,
    ) -> dict[str, Any]:
        """Audit a remote log-in, refusal or log-out reported by ``musubi serve`` (the engine's OS user only).

        Recorded in the tenant named when it exists, else in the system log (a refused
        stranger names none).
        """
        self._engine_only(ctx, "report remote log-ins")
        where = tenant if tenant and tenant in self.r.state.tenants else SYSTEM_LOG
        details: dict[str, Any] = {"mode": mode, "client": client}
        if user:
            details["user"] = user
        if reason:
            details["reason"] = reason
        ev = self.r.audit(where, ctx, f"remote.{event}", f"remote:{mode}",
                          "denied" if event == "refused" else "success", details)
        return {"tenant": where, "seq": ev.seq}

    # -- the token on a request (core/engine/http.py) ------------------------------------------

    def resolve(self, token: str, peer: str, tenant: str | None, sandboxes: Mapping[str, str] | None = None) -> Session:
        """The live session of ``token`` presented by OS user ``peer``, or :class:`SessionRefused`.

        ``tenant`` (the one the request names) must be the session's, or one of ``sandboxes`` (live tutorial
        sandbox tenant -> the user it was made for, from the tutorial service) made for the session's user.

        Only the engine's OS user may present a token: the TUI processes ``musubi serve``
        starts run as that user, so a token leaked to another local user is useless.
        """
        s = self._by_hash.get(token_hash(token)) if token.startswith(TOKEN_PREFIX) else None
        now = self.r.now()
        if s is None:
            raise SessionRefused("session token refused: it is unknown (mistyped, or the engine restarted since it "
                                 "was minted). Sign in again.", reason="unknown")
        if s.expires_at <= now:
            raise SessionRefused(f"session {s.id} has expired; sign in again.", session=s.id, reason="expired",
                                 tenant=s.tenant)
        if s.revoked:
            raise SessionRefused(f"session {s.id} was ended ({s.revoked}); sign in again.", session=s.id,
                                 reason="revoked", tenant=s.tenant)
        if peer != access.engine_os_user():
            raise SessionRefused(f"session {s.id} may be presented only by processes of the engine's OS user; "
                                 f"{peer} may not use it.", session=s.id, reason="wrong_peer", tenant=s.tenant)
        if tenant and tenant != s.tenant and (sandboxes or {}).get(tenant) != s.user:
            raise SessionRefused(f"session {s.id} is for tenant {s.tenant!r}, not {tenant!r}: a remote session acts "
                                 "in the one tenant it was opened for (and in its user's live tutorial sandboxes).",
                                 session=s.id, reason="wrong_tenant",
                                 tenant=s.tenant)
        return s

    def audit_refusal(self, exc: SessionRefused) -> bool:
        """Whether to audit this refusal: always for an unknown token, once per session and reason otherwise
        (a TUI still running after its session ended would otherwise add an event at every refresh)."""
        s = self._by_id.get(str(exc.extra.get("session", "")))
        if s is None:
            return True
        key = f"refused:{exc.extra.get('reason')}"
        if s.extra.get(key):
            return False
        s.extra[key] = True
        return True

    def unused_in(self, s: Session, tenant: str) -> bool:
        """Whether ``s`` has made no request yet in ``tenant`` (its own, or one of its user's tutorial sandboxes)."""
        return not s.used if tenant == s.tenant else not s.extra.get(f"used:{tenant}")

    def first_use(self, ctx: Caller, s: Session) -> None:
        """Audit the first request made with ``s`` (``session.use``); later ones are not (they would flood the log).

        The first request in one of its user's tutorial sandboxes is audited once too, in the sandbox's chain."""
        if ctx.tenant != s.tenant:
            if not s.extra.get(f"used:{ctx.tenant}"):
                s.extra[f"used:{ctx.tenant}"] = True
                self.r.audit(ctx.tenant, ctx, "session.use", f"session:{s.id}",
                             details={"user": s.user, "purpose": s.purpose, "client": s.client,
                                      "sandbox_of": s.tenant})
            return
        if not s.used:
            s.used = True
            self.r.audit(s.tenant, ctx, "session.use", f"session:{s.id}",
                         details={"user": s.user, "purpose": s.purpose, "client": s.client})
