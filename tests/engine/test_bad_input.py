"""Bad input on every kind of route answers 4xx with a message naming the problem, and changes nothing.

Also: a suspended tenant refuses writes (exit code 4) but allows admin reads, and resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from core.errors import EXIT_DENIED, TenantSuspended

from .helpers import Home


@dataclass
class Bad:
    method: str
    path: str
    body: Any = None
    status: int = 400
    says: str = ""
    raw: bytes | None = None
    tenant: str | None = None  # None: the test's tenant
    as_user: str | None = None
    project: str | None = None


U = "/v1/usage"
CASES: dict[str, Bad] = {
    # tenants and names
    "unknown-tenant": Bad("GET", "/v1/quotas", status=404, says="unknown tenant 'no-such-tenant'", tenant="no-such-tenant"),
    "bad-tenant-header": Bad("GET", "/v1/quotas", says="invalid tenant name 'Bad_Name'", tenant="Bad_Name"),
    "tenant-create-space": Bad("POST", "/v1/tenants", {"name": "Bad Name"}, says="invalid tenant name"),
    "tenant-create-dash": Bad("POST", "/v1/tenants", {"name": "-x"}, says="invalid tenant name"),
    "tenant-create-long": Bad("POST", "/v1/tenants", {"name": "x" * 64}, says="1-63 characters"),
    "tenant-create-missing": Bad("POST", "/v1/tenants", {}, says="tenant name is missing"),
    "tenant-create-int": Bad("POST", "/v1/tenants", {"name": 5}, says="tenant name"),
    "tenant-create-exists": Bad("POST", "/v1/tenants", {"name": "default"}, status=409, says="already exists"),
    "tenant-show-unknown": Bad("GET", "/v1/tenants/no-such-tenant", status=404, says="unknown tenant"),
    "tenant-suspend-unknown": Bad("POST", "/v1/tenants/no-such-tenant/suspend", {}, status=404, says="unknown tenant"),
    "tenant-resume-active": Bad("POST", "/v1/tenants/{t}/resume", {}, status=409, says="already active"),
    "suspend-default": Bad("POST", "/v1/tenants/default/suspend", {}, status=409, says="cannot be suspended"),
    "bad-as-user": Bad("GET", "/v1/quotas", says="invalid user name", as_user="bad user"),
    "bad-project-header": Bad("GET", "/v1/quotas", says="invalid project name", project="bad/project"),
    "unknown-project-header": Bad("GET", "/v1/quotas", status=404, says="unknown project 'nope'", project="nope"),
    # members and roles
    "member-bad-user": Bad("POST", "/v1/members", {"user": "a b", "role": "viewer"}, says="invalid user name 'a b'"),
    "member-bad-role": Bad("POST", "/v1/members", {"user": "ok", "role": "Admin!"}, says="invalid role name"),
    "member-unknown-role": Bad("POST", "/v1/members", {"user": "ok", "role": "nosuch"}, status=404, says="unknown role 'nosuch'"),
    "member-missing-role": Bad("POST", "/v1/members", {"user": "ok"}, says="role name is missing"),
    "member-unknown-project": Bad("POST", "/v1/members", {"user": "ok", "role": "viewer", "project": "nope"}, status=404, says="unknown project"),
    "member-already": Bad("POST", "/v1/members", {"user": "ua", "role": "member"}, status=409, says="already has role"),
    "member-remove-unknown": Bad("DELETE", "/v1/members/ghost", status=404, says="ghost has no binding"),
    "role-perms-not-list": Bad("POST", "/v1/roles", {"name": "r1", "permissions": "specs.read"}, says="must be a list"),
    "role-no-perms": Bad("POST", "/v1/roles", {"name": "r1", "permissions": []}, says="at least one permission"),
    "role-unknown-perm": Bad("POST", "/v1/roles", {"name": "r1", "permissions": ["specs.eat"]}, says="unknown permission(s): specs.eat"),
    "role-bad-name": Bad("POST", "/v1/roles", {"name": "Bad", "permissions": ["specs.read"]}, says="invalid role name"),
    "role-builtin-name": Bad("POST", "/v1/roles", {"name": "owner", "permissions": ["specs.read"]}, status=409, says="already exists"),
    "role-show-unknown": Bad("GET", "/v1/roles/nosuch", status=404, says="unknown role 'nosuch'"),
    "role-delete-builtin": Bad("DELETE", "/v1/roles/admin", status=409, says="built in"),
    # quotas
    "quota-negative": Bad("PUT", "/v1/quotas", {"metric": "tokens", "limit": -5, "period": "day"}, says="negative"),
    "quota-unknown-metric": Bad("PUT", "/v1/quotas", {"metric": "bananas", "limit": 5, "period": "day"}, says="unknown metric 'bananas'"),
    "quota-unknown-period": Bad("PUT", "/v1/quotas", {"metric": "tokens", "limit": 5, "period": "week"}, says="unknown period 'week'"),
    "quota-limit-text": Bad("PUT", "/v1/quotas", {"metric": "tokens", "limit": "lots", "period": "day"}, says="not a whole number"),
    "quota-limit-bool": Bad("PUT", "/v1/quotas", {"metric": "tokens", "limit": True, "period": "day"}, says="not a whole number"),
    "quota-limit-missing": Bad("PUT", "/v1/quotas", {"metric": "tokens", "period": "day"}, says="not a whole number"),
    "quota-limit-fraction": Bad("PUT", "/v1/quotas", {"metric": "tokens", "limit": 1.5, "period": "day"}, says="not a whole number"),
    "quota-cost-precision": Bad("PUT", "/v1/quotas", {"metric": "cost_usd", "limit": "0.0000001", "period": "day"}, says="6 decimal places"),
    "quota-bad-alert": Bad("PUT", "/v1/quotas", {"metric": "tokens", "limit": 5, "period": "day", "alerts": "x"}, says="alert threshold 'x'"),
    "quota-bad-user": Bad("PUT", "/v1/quotas", {"metric": "tokens", "limit": 5, "period": "day", "user": "a b"}, says="invalid user name"),
    "quota-remove-unknown": Bad("DELETE", "/v1/quotas?metric=tokens&period=minute", status=404, says="no tokens per minute quota"),
    "quota-remove-bad-metric": Bad("DELETE", "/v1/quotas?metric=x&period=day", says="unknown metric"),
    # usage
    "usage-negative": Bad("POST", U, {"model": "m", "input_tokens": -1}, says="negative"),
    "usage-text": Bad("POST", U, {"model": "m", "input_tokens": "abc"}, says="not a whole number"),
    "usage-list": Bad("POST", U, {"model": "m", "input_tokens": [1]}, says="input_tokens"),
    "usage-float": Bad("POST", U, {"model": "m", "input_tokens": 1.5}, says="input_tokens"),
    "usage-object": Bad("POST", U, {"model": "m", "output_tokens": {"n": 1}}, says="output_tokens"),
    "usage-null": Bad("POST", U, {"model": "m", "input_tokens": None}, says="input_tokens"),
    "usage-bool": Bad("POST", U, {"model": "m", "input_tokens": True}, says="input_tokens"),
    "usage-huge": Bad("POST", U, {"model": "m", "input_tokens": 10**16}, says="is out of range: give a whole number of tokens from 0 to"),
    "usage-requests-negative": Bad("POST", U, {"model": "m", "input_tokens": 1, "requests": -1}, says="negative"),
    "usage-no-model": Bad("POST", U, {"input_tokens": 1}, says="model is missing"),
    "usage-model-int": Bad("POST", U, {"model": 5, "input_tokens": 1}, says="model"),
    "usage-model-long": Bad("POST", U, {"model": "m" * 201, "input_tokens": 1}, says="too long"),
    "usage-cost-text": Bad("POST", U, {"model": "m", "input_tokens": 1, "cost_usd": "abc"}, says="not a number"),
    "usage-cost-negative": Bad("POST", U, {"model": "m", "input_tokens": 1, "cost_usd": "-0.5"}, says="negative"),
    "usage-lone-surrogate": Bad("POST", U, raw=b'{"model": "\\ud800", "input_tokens": 5}', says="invalid Unicode"),
    # The same surrogate encoded as raw bytes (CESU-style), not as an escape: still refused.
    "usage-utf8-surrogate": Bad("POST", U, raw=b'{"model": "\xed\xa0\x80", "input_tokens": 5}', says="not UTF-8 text"),
    "usage-latin1-body": Bad("POST", U, raw=b'{"model": "caf\xe9", "input_tokens": 5}', says="not UTF-8 text"),
    "usage-escaped-backslash-u": Bad("POST", U, raw=b'{"model": "a\\\\u", "input_tokens": -5}', says="negative"),
    "history-bad-bucket": Bad("GET", "/v1/usage/history?bucket=week", says="unknown bucket 'week'"),
    "history-bad-hours": Bad("GET", "/v1/usage/history?since_hours=abc", says="since_hours"),
    "reserve-negative": Bad("POST", "/v1/reservations", {"tokens": -1}, says="negative"),
    "settle-bad-id": Bad("POST", "/v1/reservations/bogus/settle", {"input_tokens": 1}, says="not a reservation id"),
    "settle-unknown": Bad("POST", "/v1/reservations/rsv_nope/settle", {"input_tokens": 1}, status=404, says="no open reservation"),
    "release-unknown": Bad("POST", "/v1/reservations/rsv_nope/release", {}, status=404, says="no open reservation"),
    # audit
    "audit-limit-text": Bad("GET", "/v1/audit?limit=abc", says="limit 'abc'"),
    "audit-limit-zero": Bad("GET", "/v1/audit?limit=0", says="out of range"),
    "audit-outcome": Bad("GET", "/v1/audit?outcome=maybe", says="outcome 'maybe'"),
    "audit-since": Bad("GET", "/v1/audit?since=yesterday", says="is not a date"),
    "audit-since-after-until": Bad("GET", "/v1/audit?since=2026-02-01&until=2026-01-01", says="before --until"),
    # projects
    "project-relative": Bad("POST", "/v1/projects", {"path": "relative/dir"}, says="absolute path"),
    "project-missing-dir": Bad("POST", "/v1/projects", {"path": "/no/such/dir/anywhere"}, says="not an existing directory"),
    "project-bad-name": Bad("POST", "/v1/projects", {"path": "/tmp", "name": "bad name"}, says="invalid project name"),
    "project-remove-unknown": Bad("DELETE", "/v1/projects/nope", status=404, says="unknown project 'nope'"),
    # the request itself
    "not-json": Bad("POST", "/v1/members", raw=b"{not json", says="not valid JSON"),
    "json-array": Bad("POST", "/v1/members", raw=b"[1, 2]", says="must be a JSON object"),
    "json-string": Bad("POST", "/v1/members", raw=b'"user"', says="must be a JSON object"),
    "not-utf8": Bad("POST", "/v1/members", raw=b'{"user": "\xff\xfe"}', says="not UTF-8 text"),
    "unknown-route": Bad("GET", "/v1/nope", status=404, says="no such route GET /v1/nope"),
    "wrong-method": Bad("PATCH", "/v1/quotas", {}, says="method PATCH is not allowed"),
}


@pytest.fixture(scope="module")
def tenant(eng: Home) -> str:
    return eng.new_tenant("bi", {"ua": "member"})


def _snapshot(eng: Home, t: str) -> tuple[Any, ...]:
    c = eng.client(t)
    return (
        eng.head_seq(t),
        eng.head_seq("default"),
        c.get("/v1/members"),
        c.get("/v1/roles"),
        c.get("/v1/projects"),
        [(q["id"], q["limit"], q["used"], q["reserved"]) for q in c.get("/v1/quotas")["quotas"]],
        sorted(x["name"] for x in eng.client().get("/v1/tenants")),
    )


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_clearly_and_changes_nothing(eng: Home, tenant: str, name: str) -> None:
    case = CASES[name]
    before = _snapshot(eng, tenant)
    status, body = eng.raw(
        case.method,
        case.path.replace("{t}", tenant),
        case.body,
        raw_body=case.raw,
        tenant=case.tenant or tenant,
        as_user=case.as_user,
        project=case.project,
    )
    assert status == case.status, body
    err = body["error"]
    assert case.says in err["message"], err
    assert err["code"] != "internal" and "Traceback" not in err["message"]
    assert _snapshot(eng, tenant) == before


def test_engine_still_healthy_after_bad_input(eng: Home, tenant: str) -> None:
    # The lone-surrogate body once left a poisoned write behind that failed the next commit.
    c = eng.client(tenant)
    assert c.post("/v1/usage", {"model": "fine", "input_tokens": 1})["recorded"] is True
    assert c.post("/v1/audit/verify", {})["ok"] is True


# -- suspended tenants ---------------------------------------------------------------------


def test_suspended_tenant_refuses_writes_allows_admin_reads_and_resumes(eng: Home) -> None:
    t = eng.new_tenant("sus", {"adm": "admin", "mem": "member"})
    root = eng.client()
    s = root.post(f"/v1/tenants/{t}/suspend", {"reason": "unpaid invoice"})
    assert s["status"] == "suspended" and s["status_reason"] == "unpaid invoice"
    used = eng.quota(t, "tokens", "day")["used"]

    with pytest.raises(TenantSuspended) as ei:
        eng.client(t, as_user="mem").post("/v1/usage", {"model": "m", "input_tokens": 5})
    assert ei.value.exit_code == EXIT_DENIED == 4
    assert f"tenant {t!r} is suspended" in ei.value.message and "resume" in ei.value.message
    status, body = eng.raw("POST", "/v1/members", {"user": "new", "role": "guest"}, tenant=t, as_user="adm")
    assert status == 403 and body["error"]["code"] == "tenant_suspended"
    # Even the tenant's owner cannot write while it is suspended.
    status, body = eng.raw("PUT", "/v1/quotas", {"metric": "tokens", "limit": 9, "period": "day"}, tenant=t)
    assert status == 403 and body["error"]["code"] == "tenant_suspended"
    q = eng.quota(t, "tokens", "day")
    assert q["used"] == used and q["limit"] == 100_000
    assert "new" not in {m["user"] for m in eng.client(t).get("/v1/members")}

    adm = eng.client(t, as_user="adm")
    assert adm.get("/v1/quotas")["tenant"] == t
    assert adm.get("/v1/members")
    assert adm.post("/v1/audit/verify", {})["ok"] is True
    refused = [e for e in adm.get("/v1/audit", {"outcome": "denied"}) if e["details"].get("code") == "tenant_suspended"]
    assert {e["actor"] for e in refused} >= {"mem", "adm"}
    assert adm.get("/v1/whoami")["tenant_status"] == "suspended"

    # A tenant admin cannot lift the suspension; a system owner can.
    status, body = eng.raw("POST", f"/v1/tenants/{t}/resume", {}, tenant=t, as_user="adm")
    assert status == 403 and body["error"]["permission"] == "tenant.manage"
    assert root.post(f"/v1/tenants/{t}/resume", {})["status"] == "active"
    assert eng.client(t, as_user="mem").post("/v1/usage", {"model": "m", "input_tokens": 5})["tokens"] == 5
    actions = [e["action"] for e in eng.audit(t, outcome="success")]
    assert actions.index("tenant.suspend") < actions.index("tenant.resume")
