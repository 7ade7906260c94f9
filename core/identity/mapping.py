"""Group and role claims -> tenant roles: the admin's rules, evaluated at each sign-in.

Pure functions over the engine's state.  A rule says: a signed-in identity whose ``claim``
(``groups`` or ``roles``) holds ``value`` gets ``role`` in ``tenant`` (through ``provider``, or
any provider when ''). Per tenant the matching rule whose role carries the most permissions wins
(ties: the role name), so several groups never stack into something no rule named.  Default deny:
a value no rule names grants nothing; a tenant without rules is never touched.

Bindings made by a sign-in are marked ``created_by = "sso:<provider>"``; only those are
changed or removed by later sign-ins.  A binding an admin made by hand is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CLAIMS = ("groups", "roles")
MANAGED_PREFIX = "sso:"


@dataclass(frozen=True)
class Change:
    """What one sign-in does to one tenant's binding of the user."""

    tenant: str
    action: str  # grant | update | revoke | keep_manual | keep_last_owner | unchanged
    role: str | None
    previous: str | None
    matched: tuple[str, ...]  # the claim values whose rules matched ("groups:grp-dev")


def values_of(claims: dict[str, Any], groups_claim: str, roles_claim: str,
              groups: Iterable[str] | None = None) -> dict[str, set[str]]:
    """The claim values rules look at: ``groups`` (or the overage result) and ``roles``."""

    def as_set(v: Any) -> set[str]:
        return {str(x) for x in v} if isinstance(v, list) else ({v} if isinstance(v, str) else set())

    return {"groups": set(groups) if groups is not None else as_set(claims.get(groups_claim)),
            "roles": as_set(claims.get(roles_claim))}


def plan(state: Any, user: str, provider: str, values: dict[str, set[str]]) -> list[Change]:
    """The change to each tenant that has rules (``state`` is the engine's State)."""
    out: list[Change] = []
    for tenant, rules in sorted(state.sso_rules.items()):
        if tenant not in state.tenants or not rules:
            continue
        matched = [(r["role"], f"{claim}:{value}") for (prov, claim, value), r in sorted(rules.items())
                   if prov in ("", provider) and value in values.get(claim, set())
                   and state.role_permissions(tenant, r["role"]) is not None]
        best = None
        if matched:
            best = max({role for role, _ in matched},
                       key=lambda role: (len(state.role_permissions(tenant, role) or ()), role))
        why = tuple(m for role, m in matched if role == best)
        cur = state.members.get(tenant, {}).get((user, ""))
        managed = cur is not None and str(cur["created_by"]).startswith(MANAGED_PREFIX)
        prev = cur["role"] if cur else None
        if best is not None:
            if cur is None:
                out.append(Change(tenant, "grant", best, None, why))
            elif prev == best:
                out.append(Change(tenant, "unchanged", best, prev, why))
            elif managed:
                last = prev == "owner" and _owners(state, tenant) == [user]
                out.append(Change(tenant, "keep_last_owner" if last else "update", prev if last else best, prev, why))
            else:
                out.append(Change(tenant, "keep_manual", prev, prev, why))
        elif managed:
            last = prev == "owner" and _owners(state, tenant) == [user]
            out.append(Change(tenant, "keep_last_owner" if last else "revoke", prev if last else None, prev, ()))
    return out


def _owners(state: Any, tenant: str) -> list[str]:
    return [u for (u, p), b in state.members.get(tenant, {}).items() if p == "" and b["role"] == "owner"]
