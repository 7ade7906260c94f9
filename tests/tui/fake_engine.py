"""What the TUI tests' fake engine answers: the engine's own shapes and refusals, from fixed data that writes change.

:class:`FakeEngine` answers the admin routes (tenants, roles, members, quotas, usage,
audit) the way the engine does: a write answers the route's response shape (a
``MemberAdded``, a ``QuotaRow``...), changes the data the next read returns, is refused
with the engine's typed error (400 bad input through the engine's own checks in
:mod:`core.names`, :mod:`core.quotas` and the request models, 404, 409, 403 for a
missing permission, 429 over a quota), and leaves an audit event (denied ones too).
tests/tui/test_api_contract.py runs the same scenarios here and on a real engine and
compares the answers, so a TUI test can only rely on what the engine really says.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from core import names
from core.api import models as m
from core.errors import BadRequest, Conflict, NotFound, PermissionDenied, QuotaExceeded
from core.quotas import (
    check_metric,
    check_period,
    micros_to_usd,
    parse_alerts,
    parse_limit,
    quota_resource,
)
from core.rbac import BUILTIN_ROLES, PERMISSIONS, ROLE_DESCRIPTIONS

Json = dict[str, Any]
TS = "2026-01-15T14:30:00.000000Z"  # the fake's clock (tests/tui/fakes.py NOW)


def role_json(name: str) -> Json:
    perms = BUILTIN_ROLES[name]
    return {"name": name, "builtin": True, "permissions": sorted(perms), "description": ROLE_DESCRIPTIONS[name],
            "matrix": {p: p in perms for p in PERMISSIONS}}


class FakeEngine:
    """The admin routes over ``data`` (tests/tui/fakes.py ``fixed_data``) for one tenant, as ``owner`` sees it."""

    def __init__(self, data: Json, owner: str = "alice") -> None:
        self.data = data
        self.owner = owner  # the engine's OS user: may create, suspend and resume tenants
        w = r"([^/]+)"
        table: list[tuple[str, str, str, Callable[..., Any]]] = [
            ("GET", "/v1/whoami", "open", self.whoami),
            ("GET", "/v1/tenants", "open", lambda user, b, q: self.data["tenants"]),
            ("POST", "/v1/tenants", "system", self.tenant_create),
            ("GET", f"/v1/tenants/{w}", "member", self.tenant_show),
            ("POST", f"/v1/tenants/{w}/suspend", "system",
             lambda name, user, b, q: self.tenant_status(name, user, "suspended", b.get("reason"))),
            ("POST", f"/v1/tenants/{w}/resume", "system",
             lambda name, user, b, q: self.tenant_status(name, user, "active", None)),
            ("GET", "/v1/projects", "member", lambda user, b, q: self.data["projects"]),
            ("POST", "/v1/projects", "projects.manage", self.project_add),
            ("DELETE", f"/v1/projects/{w}", "projects.manage", self.project_remove),
            ("GET", "/v1/providers", "member", lambda user, b, q: self.data["providers"]),
            ("GET", "/v1/roles", "member",
             lambda user, b, q: [{k: v for k, v in role_json(r).items() if k != "matrix"} for r in BUILTIN_ROLES]),
            ("GET", f"/v1/roles/{w}", "member", self.role_show),
            ("GET", "/v1/members", "member", lambda user, b, q: self.data["members"]),
            ("POST", "/v1/members", "members.manage", self.member_add),
            ("DELETE", f"/v1/members/{w}", "members.manage", self.member_remove),
            ("GET", "/v1/quotas", "quotas.read", lambda user, b, q: self.data["quotas"]),
            ("PUT", "/v1/quotas", "quotas.manage", self.quota_set),
            ("DELETE", "/v1/quotas", "quotas.manage", self.quota_remove),
            ("POST", "/v1/usage", "usage.record", self.usage_record),
            ("GET", "/v1/usage/history", "quotas.read", lambda user, b, q: self.data["history"]),
            ("GET", "/v1/audit", "audit.read", self.audit_list),
            ("POST", "/v1/audit/verify", "audit.read", lambda user, b, q: self.data["verify"]),
            # identity / SSO (Admin ▸ SSO)
            ("GET", "/v1/sso/rules", "members.manage", lambda user, b, q: self.data.setdefault("sso_rules", [])),
            ("PUT", "/v1/sso/rules", "members.manage", self.sso_rule_set),
            ("DELETE", "/v1/sso/rules", "members.manage", self.sso_rule_remove),
            ("GET", "/v1/sso/policy", "members.manage", lambda user, b, q: self._sso_policy()),
            ("PUT", "/v1/sso/policy", "tenant.manage", self.sso_policy_set),
            # notify (issue 17): Admin ▸ Integrations
            ("GET", "/v1/integrations", "integrations.manage", self.integrations_list),
            ("PUT", f"/v1/integrations/{w}", "integrations.manage", self.integration_set),
            ("POST", f"/v1/integrations/{w}/test", "integrations.manage", self.integration_test),
        ]
        self.routes = [(meth, re.compile(f"^{pat}$"), perm, fn) for meth, pat, perm, fn in table]

    # -- dispatch -----------------------------------------------------------------------------

    def answer(self, method: str, path: str, body: Json | None, query: Json | None, as_user: str | None) -> Any:
        """The engine's answer to one request (a deep copy), or its typed error."""
        user = as_user or self.owner
        for meth, pattern, perm, fn in self.routes:
            match = pattern.match(path)
            if meth != method or match is None:
                continue
            self._check(user, perm, method, path, body or query or {})
            # Query values arrive as text on the wire, whatever type the caller gave them.
            q = {k: str(v) for k, v in (query or {}).items() if v is not None}
            return copy.deepcopy(fn(*(unquote(g) for g in match.groups()), user, body or {}, q))
        raise NotFound(f"fake engine has no route {method} {path}")

    def _check(self, user: str, perm: str, method: str, path: str, req: Json) -> None:
        if perm == "open" or (perm == "member" and self.roles_of(user)):
            return
        if perm == "system" and user == self.owner:
            return
        if perm in self.permissions_of(user):
            return
        if method != "GET":
            self.audit(user, self._action(method, path), self._resource(path, req), "denied",
                       {"code": "permission_denied", "permission": perm})
        raise PermissionDenied(f"permission denied: {user} lacks '{perm}' in tenant 'acme'.", permission=perm)

    @staticmethod
    def _action(method: str, path: str) -> str:
        return {"/v1/members": "member.add" if method == "POST" else "member.remove", "/v1/quotas": "quota.set"
                if method == "PUT" else "quota.remove", "/v1/usage": "usage.record"}.get(
            "/".join(path.split("/")[:3]), f"{method.lower()}:{path}")

    @staticmethod
    def _resource(path: str, req: Json) -> str:
        if path.startswith("/v1/quotas"):
            return quota_resource(req.get("metric"), req.get("period"), req.get("user"))
        if path.startswith("/v1/members"):
            return f"member:{req.get('user') or path.rsplit('/', 1)[1]}"
        return f"model:{req.get('model')}" if path == "/v1/usage" else path

    def roles_of(self, user: str) -> list[str]:
        return [b["role"] for b in self.data["members"] if b["user"] == user and b["project"] is None]

    def permissions_of(self, user: str) -> list[str]:
        return sorted({p for r in self.roles_of(user) for p in BUILTIN_ROLES.get(r, ())})

    def audit(
        self, actor: str, action: str, resource: str, outcome: str = "success", details: Json | None = None
    ) -> None:
        """Append one event (the list is newest first, as ``GET /v1/audit`` answers)."""
        events = self.data["audit"]
        seq = (events[0]["seq"] if events else 0) + 1
        events.insert(0, {"tenant_id": "acme", "seq": seq, "ts": TS, "actor": actor, "action": action,
                          "resource": resource, "outcome": outcome, "details": details or {},
                          "prev_hash": f"{seq - 1:064x}", "hash": f"{seq:064x}"})

    # -- projects (registration only: the code-search routes are tests/tui/fake_search.py) ------------

    def project_add(self, user: str, body: Json, query: Json) -> Json:
        path = str(body.get("path") or "")
        name = str(body.get("name") or path.rstrip("/").rsplit("/", 1)[-1])
        if any(p["name"] == name for p in self.data["projects"]):
            raise Conflict(f"project {name!r} already exists in tenant 'acme'.")
        self.data["projects"].append({"name": name, "path": path, "current": False})
        return {"name": name, "path": path, "tenant": "acme"}

    def project_remove(self, name: str, user: str, body: Json, query: Json) -> Json:
        row = next((p for p in self.data["projects"] if p["name"] == name), None)
        if row is None:
            raise NotFound(f"no project {name!r} in tenant 'acme'.", resource="project")
        self.data["projects"].remove(row)
        return {"name": name, "path": row["path"], "bindings_removed": 0}

    # -- identity and tenants -----------------------------------------------------------------

    def whoami(self, user: str, body: Json, query: Json) -> Json:
        perms = self.permissions_of(user)
        return {**self.data["whoami"], "user": user, "roles": self.roles_of(user), "permissions": perms,
                "tenant_permissions": perms, "system_admin": user == self.owner}

    def tenant_create(self, user: str, body: Json, query: Json) -> Json:
        name = m.parse(m.TenantCreate, body).name
        if any(t["name"] == name for t in self.data["tenants"]):
            raise Conflict(f"tenant {name!r} already exists.")
        tenant = {"name": name, "status": "active", "created_at": TS, "created_by": user,
                  "status_changed_at": None, "status_reason": None}
        self.data["tenants"].append({**tenant, "members": 1, "projects": 0, "your_roles": ["owner"]})
        self.data["tenants"].sort(key=lambda t: t["name"])
        self.audit(user, "tenant.create", f"tenant:{name}")
        return tenant

    def _tenant(self, name: str) -> Json:
        t = next((t for t in self.data["tenants"] if t["name"] == name), None)
        if t is None:
            raise NotFound(f"unknown tenant {name!r}. See: musubi tenant list")
        return t

    def tenant_show(self, name: str, user: str, body: Json, query: Json) -> Json:
        t = self._tenant(name)
        return {**{k: v for k, v in t.items() if k != "your_roles"}, "projects": ["webshop"], "quotas": 3,
                "audit_head_seq": self.data["audit"][0]["seq"], "data_dir": f"/tmp/musubi-snap-home/tenants/{name}"}

    def tenant_status(self, name: str, user: str, status: str, reason: str | None) -> Json:
        t = self._tenant(name)
        t.update(status=status, status_changed_at=TS, status_reason=reason)
        self.audit(user, "tenant.suspend" if status == "suspended" else "tenant.resume", f"tenant:{name}")
        return {k: v for k, v in t.items() if k not in ("members", "projects", "your_roles")}

    def role_show(self, name: str, user: str, body: Json, query: Json) -> Json:
        if name not in BUILTIN_ROLES:
            raise NotFound(f"unknown role {name!r} in tenant 'acme'. See: musubi role list")
        return role_json(name)

    # -- members ------------------------------------------------------------------------------

    def member_add(self, user: str, body: Json, query: Json) -> Json:
        req = m.parse(m.MemberAdd, body)
        who, role = names.user_name(req.user), names.role_name(req.role)
        if role not in BUILTIN_ROLES:
            raise NotFound(f"unknown role {role!r} in tenant 'acme'. Built-in roles: {', '.join(BUILTIN_ROLES)}")
        binding = next((b for b in self.data["members"] if b["user"] == who and b["project"] == req.project), None)
        if binding is not None and binding["role"] == role:
            raise Conflict(f"{who} already has role {role!r}.")
        action = "member.update" if binding else "member.add"
        if binding:
            binding["role"] = role
        else:
            self.data["members"].append({"user": who, "project": req.project, "role": role, "since": TS,
                                         "added_by": user})
        self.audit(user, action, f"member:{who}", details={"role": role})
        return {"tenant": "acme", "user": who, "role": role, "project": req.project, "action": action}

    def member_remove(self, who: str, user: str, body: Json, query: Json) -> Json:
        project = query.get("project") or None
        binding = next((b for b in self.data["members"] if b["user"] == who and b["project"] == project), None)
        if binding is None:
            raise NotFound(f"{who} has no role in tenant 'acme'" + (f" project {project!r}." if project else "."))
        self.data["members"].remove(binding)
        self.audit(user, "member.remove", f"member:{who}", details={"role": binding["role"]})
        return {"tenant": "acme", "user": who, "project": project, "removed_role": binding["role"]}

    # -- quotas and usage ---------------------------------------------------------------------

    def _quotas(self) -> list[Json]:
        rows: list[Json] = self.data["quotas"]["quotas"]
        return rows

    def quota_set(self, user: str, body: Json, query: Json) -> Json:
        metric, period = check_metric(body.get("metric")), check_period(body.get("period"))
        limit, alerts = parse_limit(metric, body.get("limit")), list(parse_alerts(body.get("alerts")))
        who = body.get("user") or None
        row = next((q for q in self._quotas() if (q["metric"], q["period"], q["user"]) == (metric, period, who)), None)
        if row is None:
            row = {"id": max((q["id"] for q in self._quotas()), default=0) + 1, "metric": metric, "period": period,
                   "scope": "user" if who else "tenant", "user": who, "used": _show(metric, 0), "reserved": 0,
                   "window_start": TS, "resets_at": TS}
            self._quotas().append(row)
        used = _micros(metric, row["used"])
        row.update(limit=_show(metric, limit), alerts=alerts, remaining=_show(metric, max(limit - used, 0)),
                   fraction_used=round(used / limit, 4) if limit else 1.0)
        self.audit(user, "quota.set", quota_resource(metric, period, who), details={"limit": row["limit"]})
        return row

    def quota_remove(self, user: str, body: Json, query: Json) -> Json:
        req = m.parse(m.QuotaRemove, query)
        metric, period = check_metric(req.metric), check_period(req.period)
        row = next((q for q in self._quotas() if (q["metric"], q["period"], q["user"]) == (metric, period, req.user)),
                   None)
        if row is None:
            raise NotFound(f"no {metric} per {period} quota to remove.")
        self._quotas().remove(row)
        self.audit(user, "quota.remove", quota_resource(metric, period, req.user))
        return {"removed": True, "quota_id": row["id"], "metric": metric, "period": period, "user": req.user}

    def usage_record(self, user: str, body: Json, query: Json) -> Json:
        req = m.parse(m.UsageRecord, body)
        tokens = req.input_tokens + req.output_tokens
        cost = req.cost_usd or 0  # the fake prices nothing: a usage without a cost is charged $0, unpriced
        charge = {"tokens": tokens, "requests": req.requests, "cost_usd": cost}
        applies = [q for q in self._quotas() if q["user"] in (None, user)]
        for q in applies:
            if _micros(q["metric"], q["used"]) + charge[q["metric"]] > _micros(q["metric"], q["limit"]):
                self.audit(user, "usage.record", f"model:{req.model}", "denied", {"code": "quota_exceeded"})
                raise QuotaExceeded(f"quota exceeded: {q['metric']} per {q['period']}; nothing was charged.",
                                    metric=q["metric"], period=q["period"])
        for q in applies:
            used = _micros(q["metric"], q["used"]) + charge[q["metric"]]
            limit = _micros(q["metric"], q["limit"])
            q.update(used=_show(q["metric"], used), remaining=_show(q["metric"], max(limit - used, 0)),
                     fraction_used=round(used / limit, 4) if limit else 1.0)
        self.audit(user, "usage.record", f"model:{req.model}", details={"tokens": tokens})
        return {"recorded": True, "tenant": "acme", "user": user, "model": req.model, "tokens": tokens,
                "requests": req.requests, "cost_usd": micros_to_usd(cost), "entry_id": len(self.data["audit"]),
                "ts": TS, "priced": req.cost_usd is not None,
                "warning": None if req.cost_usd is not None else "not priced"}

    # -- audit --------------------------------------------------------------------------------

    def audit_list(self, user: str, body: Json, query: Json) -> list[Json]:
        req = m.parse(m.AuditList, query)
        for field in ("since", "until"):
            value = getattr(req, field)
            if value is not None:
                try:
                    datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    raise BadRequest(f"{field} {value!r} is not a UTC time like 2026-01-15T14:00:00.",
                                     field=field) from None
        events: list[Json] = [
            e for e in self.data["audit"]
            if req.actor in (None, e["actor"]) and req.outcome in (None, e["outcome"])
            and (req.action is None or e["action"] == req.action
                 or req.action.endswith(".*") and e["action"].startswith(req.action[:-1]))
        ]
        return events[: int(req.limit or 100)]

    # -- identity / SSO: the rules and the policy, as core/identity/service.py answers them ------

    def _sso_policy(self) -> Json:
        return self.data.setdefault("sso_policy", {"tenant": "acme", "sso_required": False, "break_glass": None,
                                                   "updated_at": None, "updated_by": None})

    def sso_rule_set(self, user: str, body: Json, query: Json) -> Json:
        value, role = str(body.get("value") or ""), str(body.get("role") or "")
        claim, provider = str(body.get("claim") or "groups"), str(body.get("provider") or "")
        if claim not in ("groups", "roles"):
            raise BadRequest(f"claim must be one of groups, roles (got {claim!r}).", field="claim")
        if role not in BUILTIN_ROLES:
            raise NotFound(f"unknown role {role!r} in tenant 'acme'.")
        rules = self.data.setdefault("sso_rules", [])
        old = next((r for r in rules if (r["claim"], r["value"], r["provider"] or "") == (claim, value, provider)),
                   None)
        row = {"tenant": "acme", "provider": provider or None, "claim": claim, "value": value, "role": role,
               "created_at": TS, "created_by": user}
        if old is not None:
            rules[rules.index(old)] = row
        else:
            rules.append(row)
        self.audit(user, "sso.rule.set", f"sso_rule:{claim}:{value}", details={"role": role})
        return {**row, "action": "updated" if old else "added"}

    def sso_rule_remove(self, user: str, body: Json, query: Json) -> Json:
        value, claim, provider = query.get("value", ""), query.get("claim") or "groups", query.get("provider") or ""
        rules = self.data.setdefault("sso_rules", [])
        old = next((r for r in rules if (r["claim"], r["value"], r["provider"] or "") == (claim, value, provider)),
                   None)
        if old is None:
            raise NotFound(f"no rule maps {claim} {value!r} in tenant 'acme'. See: musubi sso list")
        rules.remove(old)
        self.audit(user, "sso.rule.remove", f"sso_rule:{claim}:{value}", details={"role": old["role"]})
        return {**old, "action": "removed"}

    def sso_policy_set(self, user: str, body: Json, query: Json) -> Json:
        bg = body.get("break_glass")
        if bg is not None and "owner" not in self.roles_of(str(bg)):
            raise BadRequest(f"break-glass user {bg!r} is not an owner of tenant 'acme'.", field="break_glass")
        if body.get("required") and not bg:
            raise BadRequest("turning SSO on without a break-glass owner while you are not signed in would lock "
                             "you out.", field="break_glass")
        pol = {"tenant": "acme", "sso_required": bool(body.get("required")), "break_glass": bg,
               "updated_at": TS, "updated_by": user}
        self.data["sso_policy"] = pol
        self.audit(user, "sso.policy", "tenant:acme", details={"sso_required": pol["sso_required"]})
        return pol


    # -- notify (issue 17): integrations as core/integrations/service.py answers them ------------

    def _integrations(self) -> dict[str, dict[str, Any]]:
        return self.data.setdefault("integrations", {})

    def integrations_list(self, user: str, body: Json, query: Json) -> Json:
        from core.integrations.contracts import SYSTEMS

        have = self._integrations()
        rows = [{"system": s, "configured": bool(have.get(s, {}).get("settings") or have.get(s, {}).get("secrets")),
                 "installed": True, "settings": dict(have.get(s, {}).get("settings", {})),
                 "secrets": sorted(have.get(s, {}).get("secrets", {}))} for s in SYSTEMS]
        return {"tenant": "acme", "integrations": rows}

    def integration_set(self, system: str, user: str, body: Json, query: Json) -> Json:
        from core.integrations.store import SECRET_NAMES, check_pairs, check_system

        check_system(system)
        settings, secrets = check_pairs(body.get("settings") or {}, "settings"), check_pairs(
            body.get("secrets") or {}, "secrets")
        bad = [k for k in secrets if k not in SECRET_NAMES[system]]
        if bad:
            raise BadRequest(f"{system} has no secret {', '.join(bad)}; its secrets: "
                             f"{', '.join(SECRET_NAMES[system])}.", field="secrets")
        leaked = [k for k in settings if k in SECRET_NAMES[system]]
        if leaked:
            raise BadRequest(f"{', '.join(leaked)} is a secret: pass it with --secret (read from stdin), "
                             "never as a plain setting.", field="settings")
        row = self._integrations().setdefault(system, {"settings": {}, "secrets": {}})
        row["settings"] = {k: v for k, v in {**row["settings"], **settings}.items() if v != ""}
        row["secrets"] = {k: v for k, v in {**row["secrets"], **secrets}.items() if v != ""}
        self.audit(user, "integration.set", f"integration:{system}",
                   details={"settings": sorted(settings), "secrets": sorted(secrets), "unset": []})
        return {"system": system, "settings": dict(row["settings"]), "secrets": sorted(row["secrets"])}

    def integration_test(self, system: str, user: str, body: Json, query: Json) -> Json:
        from core.integrations.contracts import IntegrationError

        row = self._integrations().get(system)
        if not row or not (row["settings"] or row["secrets"]):
            raise NotFound(f"{system} is not set up for tenant 'acme'; set it with "
                           f"`musubi integrations set {system} KEY=VALUE ... --secret token`.",
                           resource=f"integration:{system}")
        vendor = self.data.get("integration_refusal")
        if vendor:
            raise IntegrationError(vendor, kind="auth", system=system, status=401)
        return {"system": system, "ok": True, "detail": {"system": system, "account": "Musubi Bot"}}


def _micros(metric: str, value: int | str) -> int:
    """A quota amount as the integer the engine compares: tokens and requests, or micro-dollars."""
    return int(Decimal(str(value)) * 1_000_000) if metric == "cost_usd" else int(value)


def _show(metric: str, value: int) -> int | str:
    """An amount as the engine answers it: an integer, or dollars as text for cost_usd."""
    return micros_to_usd(value) if metric == "cost_usd" else value
