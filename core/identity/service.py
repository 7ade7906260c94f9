"""The engine's identity service: SSO sessions bound to the socket peer, mapping rules, the policy.

How a signed-in session is bound to its caller (docs/identity.md#sessions):

1. the client runs the sign-in flow with the provider and hands the engine the **ID token**
   (``POST /v1/sso/session``); the engine validates it itself (``tokens.py``: signature by
   ``kid`` from the provider's JWKS, ``iss``, ``aud``, times, ``nonce``, issued within
   ``max_token_age_s``) and accepts each token once;
2. the engine makes a random session id (32 bytes), keeps only its SHA-256, and binds the
   session to the OS user on the other end of the socket (SO_PEERCRED), with an expiry
   (``[sso] session_minutes``);
3. later requests carry the id in ``X-Musubi-Sso-Session``; it counts only when the peer is the
   same OS user and the session has not expired.  A session id read by another OS user is
   worth nothing to them; the client keeps it in a 0600 file of its own user.

Sessions are in the engine's memory only: a restart signs everyone out (nothing to leak from
the database).  Rules and policies are in DuckDB (migration 007) and in :class:`State`.
The operations here are synchronous (run by :meth:`OpRunner.run`); the network work (keys,
Graph) happens before, in the route handlers (``routes.py``), in a thread.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from core import names
from core.audit import ts_text
from core.engine import access
from core.engine.access import Caller
from core.engine.runner import OpRunner, utcnow
from core.errors import BadRequest, NotFound, PermissionDenied
from core.identity import gate as policy
from core.identity import mapping, redact
from core.identity.keys import ProviderKeys
from core.identity.settings import ProviderSettings
from core.rbac import BUILTIN_ROLES, SYSTEM_LOG
from core.storage.base import Delete, Insert, Update

SSO_SESSION_HEADER = "X-Musubi-Sso-Session"  # not X-Musubi-Session: that one is a remote-session token
MAX_SESSIONS = 10_000
MAX_VALUE = 256  # a group id, group name or app role
EPOCH = datetime(1970, 1, 1)  # naive UTC, the storage convention
PROVIDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


@dataclass
class Session:
    """One signed-in identity, bound to the OS user that signed in."""

    os_user: str
    provider: str
    subject: str
    name: str | None
    email: str | None
    groups: int
    roles: tuple[str, ...]
    created_at: datetime
    expires_at: datetime

    def public(self) -> dict[str, Any]:
        """What whoami shows (no token, no session id)."""
        return {"provider": self.provider, "subject": self.subject, "name": self.name, "email": self.email,
                "os_user": self.os_user, "signed_in_at": ts_text(self.created_at),
                "expires_at": ts_text(self.expires_at), "groups": self.groups, "app_roles": list(self.roles)}


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


class IdentityService:
    """Sessions (memory), rules and policies (State + DuckDB), over the engine's one runner."""

    def __init__(self, runner: OpRunner) -> None:
        self.r = runner
        self.sessions: dict[str, Session] = {}  # sha256(session id) -> session
        self._used: dict[str, datetime] = {}  # sha256(ID token) -> its exp: each token opens one session
        self._keys: dict[str, tuple[ProviderSettings, ProviderKeys]] = {}
        redact.install("musubi")  # whatever reaches the engine log, no token does

    # -- keys ------------------------------------------------------------------------------

    def keys_for(self, name: str, settings: ProviderSettings) -> ProviderKeys:
        """The provider's key cache; a new one when its settings changed in config.toml."""
        got = self._keys.get(name)
        if got is None or got[0] != settings:
            got = self._keys[name] = (settings, ProviderKeys(settings))
        return got[1]

    # -- sessions --------------------------------------------------------------------------

    def resolve(self, sid: str | None, real_user: str) -> Session | None:
        """The live session ``sid`` names for this socket peer, else None (pure read)."""
        if not sid or len(sid) > 200:
            return None
        s = self.sessions.get(digest(sid))
        if s is None or s.os_user != real_user or s.expires_at <= utcnow():
            return None
        return s

    def _sweep(self, now: datetime) -> None:
        for k in [k for k, s in self.sessions.items() if s.expires_at <= now]:
            del self.sessions[k]
        for k in [k for k, exp in self._used.items() if exp <= now]:
            del self._used[k]

    def signin(self, ctx: Caller, provider: str, claims: dict[str, Any], token_hash: str, minutes: int,
               values: dict[str, set[str]], overage: bool) -> dict[str, Any]:
        """Open a session for the socket peer and apply the mapping rules (an operation)."""
        now = self.r.now()
        self._sweep(now)
        if token_hash in self._used:
            raise PermissionDenied("this ID token was already used to sign in; each token opens one session. "
                                   "Sign in again: musubi login", permission="sso", code="sso_token_replayed")
        if len(self.sessions) >= MAX_SESSIONS:
            raise BadRequest("too many open sign-in sessions on this engine; try again later.", code="sso_busy")
        user = ctx.real_user
        changes = mapping.plan(self.r.state, user, provider, values)
        actor = f"sso:{provider}"
        for ch in changes:
            self._apply(ch, user, actor, claims)
        sid = secrets.token_urlsafe(32)
        exp_token = EPOCH + timedelta(seconds=float(claims["exp"]))
        self._used[token_hash] = max(exp_token, now + timedelta(minutes=10))
        session = Session(user, provider, str(claims["sub"]), _str(claims.get("name")),
                          _str(claims.get("email") or claims.get("preferred_username")), len(values["groups"]),
                          tuple(sorted(values["roles"])), now, now + timedelta(minutes=minutes))
        self.sessions[digest(sid)] = session
        details = {"provider": provider, "subject": session.subject, "email": session.email,
                   "groups": len(values["groups"]), "overage": overage,
                   "tenants": {c.tenant: c.action for c in changes}, "expires_at": ts_text(session.expires_at)}
        self.r.audit(SYSTEM_LOG, ctx, "sso.signin", f"user:{user}", details=details)
        return {"session": sid, **session.public(),
                "tenants": [{"tenant": c.tenant, "action": c.action, "role": c.role, "previous_role": c.previous,
                             "matched": list(c.matched)} for c in changes]}

    @staticmethod
    def engine_only(ctx: Caller) -> None:
        """Refuse anyone but the engine's OS user acting as themself (``musubi serve``)."""
        if not access.is_engine_user(ctx):
            raise PermissionDenied(
                f"permission denied: only the OS user who runs the engine ({access.engine_os_user()}), acting as "
                "themself, may have ID tokens of other people verified; it is what `musubi serve web --oidc` does.",
                permission="engine")

    def verified(self, ctx: Caller, provider: str, claims: dict[str, Any], token_hash: str,
                 values: dict[str, set[str]]) -> dict[str, Any]:
        """A validated ID token of a browser sign-in (``serve web --oidc``): once only; audited, no session opened."""
        self.engine_only(ctx)
        now = self.r.now()
        self._sweep(now)
        if token_hash in self._used:
            raise PermissionDenied("this ID token was already used to sign in; each token signs in once. Sign in "
                                   "again.", permission="sso", code="sso_token_replayed")
        self._used[token_hash] = max(EPOCH + timedelta(seconds=float(claims["exp"])), now + timedelta(minutes=10))
        email = _str(claims.get("email") or claims.get("preferred_username"))
        out = {"provider": provider, "subject": str(claims["sub"]), "email": email, "name": _str(claims.get("name")),
               "groups": sorted(values["groups"]), "roles": sorted(values["roles"])}
        self.r.audit(SYSTEM_LOG, ctx, "sso.verify", f"provider:{provider}",
                     details={"provider": provider, "subject": out["subject"], "email": email,
                              "groups": len(values["groups"])})
        return out

    def _apply(self, ch: mapping.Change, user: str, actor: str, claims: dict[str, Any]) -> None:
        mem = self.r.state.members[ch.tenant]
        key = {"tenant_id": ch.tenant, "user_name": user, "project": ""}
        details: dict[str, Any] = {"action": ch.action, "role": ch.role, "previous_role": ch.previous,
                                   "matched": list(ch.matched), "subject": str(claims["sub"])}
        if ch.action == "grant" and ch.role:
            now = self.r.now()
            mem[(user, "")] = {"role": ch.role, "created_at": now, "created_by": actor}
            self.r.write(Insert("members", {**key, "role": ch.role, "created_at": now, "created_by": actor}))
        elif ch.action == "update" and ch.role:
            mem[(user, "")]["role"] = ch.role
            self.r.write(Update("members", {"role": ch.role}, key))
        elif ch.action == "revoke":
            del mem[(user, "")]
            self.r.write(Delete("members", key))
        elif ch.action == "unchanged":
            return  # nothing to record per tenant; the sign-in event lists it
        self.r.audit(ch.tenant, actor, "sso.map", f"member:{user}", details=details)

    def session_show(self, ctx: Caller) -> dict[str, Any]:
        """The caller's session (from the request's session id), or ``signed_in: false``."""
        s = ctx.sso
        return {"signed_in": s is not None, "os_user": ctx.real_user, **(s.public() if s else {})}

    def signout(self, ctx: Caller, sid: str | None) -> dict[str, Any]:
        """End the caller's session (an operation; audited)."""
        s = self.resolve(sid, ctx.real_user)
        if s is None or sid is None:
            raise NotFound("you are not signed in on this engine (no live session); nothing to sign out of.",
                           code="not_signed_in")
        del self.sessions[digest(sid)]
        self.r.audit(SYSTEM_LOG, ctx, "sso.signout", f"user:{ctx.real_user}",
                     details={"provider": s.provider, "subject": s.subject})
        return {"signed_out": True, "provider": s.provider, "subject": s.subject}

    # -- the sign-in routes' operations (core/identity/routes.py): each one run, answered after its commit --

    async def open_session(self, ctx: Caller, provider: str, claims: dict[str, Any], token_hash: str, minutes: int,
                           values: dict[str, set[str]], overage: bool) -> dict[str, Any]:
        """:meth:`signin` as one operation (``sso.signin``)."""
        return await self.r.run(ctx, "sso.signin", f"provider:{provider}",
                                partial(self.signin, ctx, provider, claims, token_hash, minutes, values, overage))

    async def check_engine_user(self, ctx: Caller, provider: str) -> None:
        """:meth:`engine_only` as one operation (``sso.verify``): a refusal is audited."""
        await self.r.run(ctx, "sso.verify", f"provider:{provider}", partial(self.engine_only, ctx))

    async def verify_token(self, ctx: Caller, provider: str, claims: dict[str, Any], token_hash: str,
                           values: dict[str, set[str]]) -> dict[str, Any]:
        """:meth:`verified` as one operation (``sso.verify``)."""
        return await self.r.run(ctx, "sso.verify", f"provider:{provider}",
                                partial(self.verified, ctx, provider, claims, token_hash, values))

    async def close_session(self, ctx: Caller, sid: str | None) -> dict[str, Any]:
        """:meth:`signout` as one operation (``sso.signout``)."""
        return await self.r.run(ctx, "sso.signout", f"user:{ctx.real_user}", partial(self.signout, ctx, sid))

    # -- the policy ------------------------------------------------------------------------

    def gate(self, ctx: Caller, tenant: str | None = None) -> None:
        """Refuse a caller without SSO in a tenant whose policy requires it (break-glass aside): ``policy.gate``."""
        policy.gate(self.r.state, ctx, tenant)

    def map_remote(self, user: str, auth: str, subject: str, values: dict[str, set[str]]) -> list[Any]:
        """Apply the mapping rules to a remote SAML/OIDC sign-in of musubi user ``user`` (an operation's part).

        ``auth`` is ``saml:<idp>`` or ``oidc:<provider>``; rules match with the provider name
        ``<idp>``/``<provider>`` (``musubi sso map GROUP --provider NAME``), or any provider.
        Each change is audited in its tenant (``sso.map``, actor ``sso:<name>``).
        """
        name = auth.split(":", 1)[1]
        changes = mapping.plan(self.r.state, user, name, values)
        for ch in changes:
            self._apply(ch, user, f"sso:{name}", {"sub": subject or user})
        return changes

    def policy_show(self, ctx: Caller) -> dict[str, Any]:
        self.r.require(ctx, "members.manage", read=True)
        pol = self.r.state.sso_policies.get(ctx.tenant)
        return {"tenant": ctx.tenant, "sso_required": bool(pol and pol["sso_required"]),
                "break_glass": pol["break_glass"] if pol else None,
                "updated_at": ts_text(pol["updated_at"]) if pol else None,
                "updated_by": pol["updated_by"] if pol else None}

    def policy_set(self, ctx: Caller, required: bool, break_glass: str | None = None) -> dict[str, Any]:
        """Turn "SSO required" on or off for the tenant (owners: 'tenant.manage')."""
        self.r.require(ctx, "tenant.manage")
        if break_glass is not None:
            names.user_name(break_glass)
            if "owner" not in self.r.state.roles_of(ctx.tenant, break_glass, None):
                raise BadRequest(f"break-glass user {break_glass!r} is not an owner of tenant {ctx.tenant!r}; "
                                 f"make them owner first (musubi member add {break_glass} --role owner).",
                                 field="break_glass")
        if required and not break_glass and not policy.signed_in(ctx):  # a SAML/OIDC remote session counts
            raise BadRequest("turning SSO on without a break-glass owner while you are not signed in would lock you "
                             "out; give --break-glass OWNER, or sign in first (musubi login).", field="break_glass")
        now = self.r.now()
        row = {"tenant_id": ctx.tenant, "sso_required": required, "break_glass": break_glass,
               "updated_at": now, "updated_by": ctx.user}
        existed = ctx.tenant in self.r.state.sso_policies
        self.r.state.sso_policies[ctx.tenant] = row
        if existed:
            self.r.write(Update("sso_policies", {k: v for k, v in row.items() if k != "tenant_id"},
                                {"tenant_id": ctx.tenant}))
        else:
            self.r.write(Insert("sso_policies", row))
        self.r.audit(ctx.tenant, ctx, "sso.policy", f"tenant:{ctx.tenant}",
                     details={"sso_required": required, "break_glass": break_glass})
        return self.policy_show(ctx)

    # -- rules -----------------------------------------------------------------------------

    def rule_list(self, ctx: Caller) -> list[dict[str, Any]]:
        self.r.require(ctx, "members.manage", read=True)
        return [_rule_row(r) for _k, r in sorted(self.r.state.sso_rules.get(ctx.tenant, {}).items())]

    def rule_set(
        self, ctx: Caller, value: str, role: str, claim: str = "groups", provider: str = ""
    ) -> dict[str, Any]:
        """Map ``claim`` value ``value`` to ``role`` in the tenant (``members.manage``; no role above your own)."""
        _check_rule(value, claim, provider)
        names.role_name(role)
        self.r.require(ctx, "members.manage")
        perms = self.r.state.role_permissions(ctx.tenant, role)
        if perms is None:
            raise NotFound(f"unknown role {role!r} in tenant {ctx.tenant!r}. Built-in roles: "
                           f"{', '.join(BUILTIN_ROLES)}; see: musubi role list")
        extra = sorted(perms - self.r.perms(ctx))
        if extra:
            raise PermissionDenied(f"permission denied: a rule granting {role!r} would give permissions you lack "
                                   f"({', '.join(extra)}).", permission=extra[0])
        rules = self.r.state.sso_rules[ctx.tenant]
        key = (provider, claim, value)
        now = self.r.now()
        where = {"tenant_id": ctx.tenant, "provider": provider, "claim": claim, "value": value}
        old = rules.get(key)
        row = {**where, "role": role, "created_at": now, "created_by": ctx.user}
        rules[key] = row
        if old is not None:
            self.r.write(Update("sso_role_rules", {"role": role, "created_at": now, "created_by": ctx.user}, where))
        else:
            self.r.write(Insert("sso_role_rules", row))
        self.r.audit(ctx.tenant, ctx, "sso.rule.set", f"sso_rule:{claim}:{value}",
                     details={"role": role, "provider": provider or None,
                              "previous_role": old["role"] if old else None})
        return {**_rule_row(row), "action": "updated" if old else "added"}

    def rule_remove(self, ctx: Caller, value: str, claim: str = "groups", provider: str = "") -> dict[str, Any]:
        _check_rule(value, claim, provider)
        self.r.require(ctx, "members.manage")
        rules = self.r.state.sso_rules.get(ctx.tenant, {})
        old = rules.get((provider, claim, value))
        if old is None:
            raise NotFound(f"no rule maps {claim} {value!r}" + (f" of provider {provider!r}" if provider else "")
                           + f" in tenant {ctx.tenant!r}. See: musubi sso list")
        del rules[(provider, claim, value)]
        self.r.write(Delete("sso_role_rules", {"tenant_id": ctx.tenant, "provider": provider, "claim": claim,
                                               "value": value}))
        self.r.audit(ctx.tenant, ctx, "sso.rule.remove", f"sso_rule:{claim}:{value}",
                     details={"role": old["role"], "provider": provider or None})
        return {**_rule_row(old), "action": "removed"}


def _rule_row(r: dict[str, Any]) -> dict[str, Any]:
    return {"tenant": r["tenant_id"], "provider": r["provider"] or None, "claim": r["claim"], "value": r["value"],
            "role": r["role"], "created_at": ts_text(r["created_at"]), "created_by": r["created_by"]}


def _check_rule(value: str, claim: str, provider: str) -> None:
    if claim not in mapping.CLAIMS:
        raise BadRequest(f"claim must be one of {', '.join(mapping.CLAIMS)} (got {claim[:40]!r}).", field="claim")
    if not value or len(value) > MAX_VALUE or not value.isprintable():
        raise BadRequest(f"the group or role value must be 1 to {MAX_VALUE} printable characters, as the token "
                         "carries it (Entra: the group's object id).", field="value")
    if provider and not PROVIDER_NAME.fullmatch(provider):
        raise BadRequest(f"provider {provider[:40]!r} is not a provider name (letters, digits, - and _, as in "
                         "[sso.providers.NAME]).", field="provider")


def _str(v: Any) -> str | None:
    return str(v)[:256] if isinstance(v, str | int) else None
