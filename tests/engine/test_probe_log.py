"""Probes of tenants that do not exist go to the system log, not to the log of 'default' (issue 9, item 9).

The members and auditors of 'default' are not flooded with strangers' probes;
the probes stay on record, hash-chained, for system owners to read with
``musubi audit list --system`` (``GET /v1/audit?system=true``).
"""

from __future__ import annotations

from typing import Any

from .helpers import Home, unique
from .other_user import OTHER, need_root, open_to_others, raw_as_other


def system_log(h: Home, **filters: Any) -> list[dict[str, Any]]:
    return list(h.client("default").get("/v1/audit", {"system": "true", "ascending": "1", "limit": 10_000, **filters}))


def test_probes_of_unknown_tenants_go_to_the_system_log(home: Home) -> None:
    need_root()  # the engine's OS user is a system owner, to whom unknown tenants are a plain 404
    home.start()
    open_to_others(home)
    home.client("default").post("/v1/members", {"user": "aud", "role": "auditor"})
    ghost = unique("ghost")
    # A refused impersonation in a tenant that does not exist.
    status, _ = raw_as_other(home, "GET", "/v1/quotas", tenant=ghost, as_user="alice")
    assert status == 403
    (ev,) = system_log(home, action="impersonate")
    assert ev["tenant_id"] == "_system" and ev["outcome"] == "denied" and ev["resource"] == "user:alice"
    assert ev["actor"] == OTHER
    # Nothing of it in the log of 'default', for its owner or its auditor.
    assert not [e for e in home.audit("default") if ghost in str(e) or e["action"] == "impersonate"]
    status, rows = home.raw("GET", "/v1/audit", tenant="default", as_user="aud")
    assert status == 200 and not [e for e in rows if e["action"] == "impersonate"]
    # The system log is the system owners' alone.
    status, body = home.raw("GET", "/v1/audit?system=true", tenant="default", as_user="aud")
    assert status == 403 and body["error"]["permission"] == "tenant.manage"
    status, body = home.raw("POST", "/v1/audit/verify", {"system": True}, tenant="default", as_user="aud")
    assert status == 403 and body["error"]["permission"] == "tenant.manage"
    # It is a chain like any other, survives a restart, and is no tenant.
    assert home.client().post("/v1/audit/verify", {"system": True})["ok"]
    home.stop()
    home.start()
    assert [e["seq"] for e in system_log(home)] == [1]
    v = home.client().post("/v1/audit/verify", {"system": True})
    assert v["ok"] and v["tenant_id"] == "_system" and v["last_seq"] == 1
    assert "_system" not in {t["name"] for t in home.client().get("/v1/tenants")}
    status, body = home.raw("GET", "/v1/audit?system=maybe", tenant="default")
    assert status == 400 and body["error"]["field"] == "system"


def test_an_outsiders_probe_is_on_record_for_system_owners_only(home: Home) -> None:
    need_root()
    home.start()
    open_to_others(home)
    real = home.new_tenant("real")
    ghost = unique("ghost")
    for t in (real, ghost):
        status, body = raw_as_other(home, "GET", "/v1/quotas", tenant=t)
        assert status == 403 and body["error"]["permission"] == "any role in the tenant"
    # A probe of an existing tenant is that tenant's business; of a made-up one, the system log's.
    (in_real,) = home.audit(real, action="tenant.access")
    assert in_real["actor"] == OTHER
    (probe,) = system_log(home, action="tenant.access")
    assert probe["actor"] == OTHER and probe["resource"] == f"tenant:{ghost}"
    assert probe["details"]["route"] == "GET /v1/quotas"
    assert not home.audit("default", action="tenant.access")
    # The prober cannot read the system log either.
    status, body = raw_as_other(home, "GET", "/v1/audit?system=true")
    assert status == 403
