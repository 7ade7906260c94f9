"""The engine's in-memory working state, rebuilt from storage at start.

Only the event loop thread touches it.  Quota counters are per UTC calendar
window; open reservations count against every window until closed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from core.audit import GENESIS_HASH
from core.quotas import METRICS, PERIODS, Charge, Quota, Reservation, window_start
from core.rbac import BUILTIN_ROLES, acting_permissions, scope_permissions, scope_roles
from core.storage.base import Snapshot

_MINUTE = timedelta(minutes=1)
CounterKey = tuple[str, str | None, str, str, datetime]  # tenant, user|None, metric, period, window


@dataclass
class Tenant:
    name: str
    status: str
    created_at: datetime
    created_by: str
    status_changed_at: datetime | None = None
    status_reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        from core.audit import format_ts, ts_text

        return {
            "name": self.name,
            "status": self.status,
            "created_at": format_ts(self.created_at),
            "created_by": self.created_by,
            "status_changed_at": ts_text(self.status_changed_at),
            "status_reason": self.status_reason,
        }


@dataclass
class State:
    tenants: dict[str, Tenant] = field(default_factory=dict)
    custom_roles: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    projects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    # tenant -> (user, project or '') -> role
    members: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    quotas: dict[str, dict[int, Quota]] = field(default_factory=lambda: defaultdict(dict))
    used: dict[CounterKey, int] = field(default_factory=lambda: defaultdict(int))
    reserved: dict[tuple[str, str | None, str], int] = field(default_factory=lambda: defaultdict(int))
    reservations: dict[str, Reservation] = field(default_factory=dict)
    alerts_sent: set[tuple[int, datetime, float]] = field(default_factory=set)
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)
    pruned_through: dict[str, int] = field(default_factory=dict)
    next_quota_id: int = 1
    next_ledger_id: int = 1
    # -- identity / SSO (core/identity): tenant -> (provider, claim, value) -> rule row; tenant -> policy row
    sso_rules: dict[str, dict[tuple[str, str, str], dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    sso_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    _windows: tuple[datetime, datetime, dict[str, datetime]] | None = None

    @classmethod
    def from_snapshot(cls, snap: Snapshot) -> State:
        st = cls()
        for t in snap.tenants:
            st.tenants[t["tenant_id"]] = Tenant(
                t["tenant_id"], t["status"], t["created_at"], t["created_by"], t["status_changed_at"], t["status_reason"]
            )
        for r in snap.roles:
            st.custom_roles[r["tenant_id"]][r["role"]] = {
                "permissions": frozenset(r["permissions"]),
                "description": r["description"],
            }
        for p in snap.projects:
            st.projects[p["tenant_id"]][p["name"]] = {"name": p["name"], "path": p["path"]}
        for m in snap.members:
            st.members[m["tenant_id"]][(m["user_name"], m["project"])] = {
                "role": m["role"],
                "created_at": m["created_at"],
                "created_by": m["created_by"],
            }
        for q in snap.quotas:
            st.quotas[q["tenant_id"]][q["quota_id"]] = Quota(
                q["quota_id"], q["tenant_id"], q["metric"], q["period"], int(q["limit_value"]),
                q["user_name"] or None, tuple(q["alerts"] or ()),
            )
        for (tenant, user), per in snap.usage.items():
            for period, (ws, tokens, requests, cost) in per.items():
                for metric, val in (("tokens", tokens), ("requests", requests), ("cost_usd", cost)):
                    if val:
                        st.used[(tenant, None, metric, period, ws)] += val
                        st.used[(tenant, user, metric, period, ws)] += val
        for r in snap.reservations:
            res = Reservation(
                r["reservation_id"], r["tenant_id"], r["user_name"],
                Charge(int(r["tokens"]), int(r["requests"]), int(r["cost_micros"])),
                r["created_at"], r["expires_at"], r["project"],
            )
            st.add_reservation(res)
        for a in snap.alerts:
            st.alerts_sent.add((int(a["quota_id"]), a["window_start"], float(a["threshold"])))
        st.heads = dict(snap.audit_heads)
        st.pruned_through = dict(snap.pruned_through)
        st.next_quota_id = snap.max_ids.get("quota", 0) + 1
        st.next_ledger_id = snap.max_ids.get("ledger", 0) + 1
        for r in snap.sso_rules:
            st.sso_rules[r["tenant_id"]][(r["provider"], r["claim"], r["value"])] = r
        st.sso_policies = {p["tenant_id"]: p for p in snap.sso_policies}
        return st

    # -- roles and permissions -------------------------------------------------------------

    def role_permissions(self, tenant: str, role: str) -> frozenset[str] | None:
        if role in BUILTIN_ROLES:
            return BUILTIN_ROLES[role]
        r = self.custom_roles.get(tenant, {}).get(role)
        return r["permissions"] if r else None

    def roles_of(self, tenant: str, user: str, project: str | None) -> list[str]:
        """Roles covering a resource at scope ``project`` (None: tenant-wide), see core.rbac."""
        return scope_roles(self.members.get(tenant, {}), user, project)

    def permissions_of(self, tenant: str, user: str, project: str | None) -> frozenset[str]:
        """Permissions ``user`` holds for a resource at scope ``project`` (None: tenant-wide)."""
        return scope_permissions(self.members.get(tenant, {}), partial(self.role_permissions, tenant), user, project)

    def acting_permissions(self, tenant: str, real_user: str, user: str, project: str | None) -> frozenset[str]:
        """Like :meth:`permissions_of` for a request that may be impersonated (see core.rbac)."""
        return acting_permissions(self.members.get(tenant, {}), partial(self.role_permissions, tenant), real_user, user, project)

    def is_member(self, tenant: str, user: str) -> bool:
        """Has any binding in the tenant, at tenant or project scope (asked on every request)."""
        mem = self.members.get(tenant)
        if not mem:
            return False
        if (user, "") in mem:  # the common case, without walking the tenant's bindings
            return True
        return any(u == user for (u, _p) in mem)

    def head(self, tenant: str) -> tuple[int, str]:
        return self.heads.get(tenant, (0, GENESIS_HASH))

    # -- quota counters -------------------------------------------------------------------

    def windows(self, now: datetime) -> dict[str, datetime]:
        """Start of each period's window containing ``now``.

        Cached for the current minute: every charge needs all four, and
        ``datetime.replace`` is slow enough to show up at thousands of charges a second.
        """
        cache = self._windows
        if cache is not None and cache[0] <= now < cache[1]:
            return cache[2]
        wins = {p: window_start(p, now) for p in PERIODS}
        minute = wins["minute"]
        self._windows = (minute, minute + _MINUTE, wins)
        return wins

    def add_usage(self, tenant: str, user: str, charge: Charge, now: datetime) -> None:
        values = [(m, v) for m in METRICS if (v := charge.get(m))]
        used = self.used
        for period, ws in self.windows(now).items():
            for metric, v in values:
                used[(tenant, None, metric, period, ws)] += v
                used[(tenant, user, metric, period, ws)] += v

    def add_reservation(self, res: Reservation) -> None:
        self.reservations[res.id] = res
        for metric in METRICS:
            v = res.amount.get(metric)
            if v:
                self.reserved[(res.tenant_id, None, metric)] += v
                self.reserved[(res.tenant_id, res.user, metric)] += v

    def drop_reservation(self, rid: str) -> Reservation | None:
        res = self.reservations.pop(rid, None)
        if res is None:
            return None
        for metric in METRICS:
            v = res.amount.get(metric)
            if v:
                self.reserved[(res.tenant_id, None, metric)] -= v
                self.reserved[(res.tenant_id, res.user, metric)] -= v
        return res

    def usage_for(self, q: Quota, now: datetime) -> tuple[int, int, datetime]:
        """(used in the current window, reserved now, window start) for one quota."""
        ws = self.windows(now)[q.period]
        used = self.used.get((q.tenant_id, q.user, q.metric, q.period, ws), 0)
        reserved = self.reserved.get((q.tenant_id, q.user, q.metric), 0)
        return used, reserved, ws

    def applicable_quotas(self, tenant: str, user: str) -> list[Quota]:
        return [q for q in self.quotas.get(tenant, {}).values() if q.user is None or q.user == user]

    def forget_old_windows(self, now: datetime) -> None:
        """Drop counters of windows that have ended (keeps memory flat on a long-running engine)."""
        current = self.windows(now)
        for k in [k for k in self.used if k[4] < current[k[3]]]:
            del self.used[k]
        month = current["month"]
        self.alerts_sent = {a for a in self.alerts_sent if a[1] >= month}
