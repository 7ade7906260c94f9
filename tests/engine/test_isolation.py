"""Tenant isolation over every route of the engine's route table.

A user of tenant A asks for tenant B (header ``X-Musubi-Tenant: B``, working
directory inside one of B's projects) on each route ``build_app`` registers:
the answer is 403/404 and carries none of B's data.  A route added to the
table without a case here fails ``test_every_route_has_a_case``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .helpers import Home, routes_app, unique

# Which users of A play the intruder: plain member, and the strongest roles of A.
INTRUDER_ROLES = ("member", "admin", "owner")


def route_table() -> list[tuple[str, str]]:
    app = routes_app()
    return sorted({(r.method, r.resource.canonical) for r in app.router.routes()})  # type: ignore[union-attr]


@dataclass
class World:
    h: Home
    a: str
    b: str
    b_project_dir: Path
    rid: str
    markers: list[str]
    scratch: Path


# (method, canonical path) -> (concrete path, body).  {rid} etc. are filled from World.
CASES: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("GET", "/v1/health"): ("/v1/health", None),
    ("GET", "/v1/whoami"): ("/v1/whoami", None),
    ("POST", "/v1/engine/stop"): ("/v1/engine/stop", {}),
    ("GET", "/v1/tenants"): ("/v1/tenants", None),
    ("POST", "/v1/tenants"): ("/v1/tenants", {"name": "{newtenant}"}),
    ("GET", "/v1/tenants/{name}"): ("/v1/tenants/{b}", None),
    ("POST", "/v1/tenants/{name}/suspend"): ("/v1/tenants/{b}/suspend", {"reason": "x"}),
    ("POST", "/v1/tenants/{name}/resume"): ("/v1/tenants/{b}/resume", {}),
    ("GET", "/v1/projects"): ("/v1/projects", None),
    ("POST", "/v1/projects"): ("/v1/projects", {"path": "{scratch}", "name": "intruder"}),
    ("DELETE", "/v1/projects/{name}"): ("/v1/projects/secretproj", None),
    ("GET", "/v1/roles"): ("/v1/roles", None),
    ("POST", "/v1/roles"): ("/v1/roles", {"name": "evil", "permissions": ["specs.read"]}),
    ("GET", "/v1/roles/{name}"): ("/v1/roles/secretrole", None),
    ("DELETE", "/v1/roles/{name}"): ("/v1/roles/secretrole", None),
    ("GET", "/v1/members"): ("/v1/members", None),
    ("POST", "/v1/members"): ("/v1/members", {"user": "intruder", "role": "viewer"}),
    ("DELETE", "/v1/members/{user}"): ("/v1/members/bobsecret", None),
    ("GET", "/v1/quotas"): ("/v1/quotas?user=bobsecret", None),
    ("PUT", "/v1/quotas"): ("/v1/quotas", {"metric": "tokens", "limit": 1, "period": "day"}),
    ("DELETE", "/v1/quotas"): ("/v1/quotas?metric=tokens&period=day", None),
    ("POST", "/v1/usage"): ("/v1/usage", {"model": "m", "input_tokens": 1}),
    ("GET", "/v1/usage/history"): ("/v1/usage/history?user=bobsecret&since_hours=48", None),
    ("GET", "/v1/reservations"): ("/v1/reservations", None),
    ("POST", "/v1/reservations"): ("/v1/reservations", {"tokens": 1}),
    ("POST", "/v1/reservations/{rid}/settle"): ("/v1/reservations/{rid}/settle", {"input_tokens": 1}),
    ("POST", "/v1/reservations/{rid}/release"): ("/v1/reservations/{rid}/release", {}),
    ("GET", "/v1/audit"): ("/v1/audit?limit=50", None),
    ("POST", "/v1/audit/verify"): ("/v1/audit/verify", {}),
    ("POST", "/v1/audit/export"): ("/v1/audit/export", {"format": "jsonl", "path": "{scratch}/leak.jsonl"}),
    ("POST", "/v1/audit/prune"): ("/v1/audit/prune", {"before": "2000-01-01"}),
    ("POST", "/v1/audit/checkpoint"): ("/v1/audit/checkpoint", {"path": "{scratch}/leak-cp.json"}),
    ("GET", "/v1/events"): ("/v1/events", None),
    ("GET", "/v1/trace"): ("/v1/trace?path={bdir}", None),
    ("GET", "/v1/trace/requirements/{id}"): ("/v1/trace/requirements/REQ-A-001?path={bdir}", None),
    ("GET", "/v1/trace/gaps"): ("/v1/trace/gaps?path={bdir}", None),
    ("GET", "/v1/trace/impact/{id}"): ("/v1/trace/impact/REQ-A-001?path={bdir}", None),
    ("GET", "/v1/trace/export"): ("/v1/trace/export?format=csv&path={bdir}", None),
    ("POST", "/v1/trace/review"): ("/v1/trace/review", {"id": "REQ-A-001", "path": "{bdir}"}),
    ("POST", "/v1/trace/links"): ("/v1/trace/links", {"requirement": "REQ-A-001", "kind": "code", "target": "src/x.py", "path": "{bdir}"}),
    ("POST", "/v1/trace/links/remove"): ("/v1/trace/links/remove", {"requirement": "REQ-A-001", "kind": "code", "target": "src/x.py", "path": "{bdir}"}),
    ("GET", "/v1/spec/lint"): ("/v1/spec/lint?path={bdir}", None),
    ("GET", "/v1/models"): ("/v1/models", None),
    ("GET", "/v1/models/{id}"): ("/v1/models/gpt-5.4", None),
    ("GET", "/v1/models/allowed"): ("/v1/models/allowed", None),
    ("PUT", "/v1/models/allowed"): ("/v1/models/allowed", {"models": ["gpt-5.4"]}),
    ("DELETE", "/v1/models/allowed"): ("/v1/models/allowed", None),
    ("POST", "/v1/models/route"): ("/v1/models/route", {"task": "review", "input_tokens": 1000}),
    ("POST", "/v1/models/import"): ("/v1/models/import", {"source": "x.json", "table": {"gpt-x": {
        "litellm_provider": "openai", "mode": "chat", "max_input_tokens": 1000, "input_cost_per_token": 1e-6,
        "output_cost_per_token": 1e-6}}}),
    ("GET", "/v1/jobs"): ("/v1/jobs", None),
    ("POST", "/v1/jobs"): ("/v1/jobs", {"kind": "index"}),
    ("GET", "/v1/jobs/{id}"): ("/v1/jobs/j-000000000000", None),
    ("POST", "/v1/jobs/{id}/cancel"): ("/v1/jobs/j-000000000000/cancel", None),
    ("POST", "/v1/index"): ("/v1/index", {"path": "{bdir}"}),
    ("GET", "/v1/index/status"): ("/v1/index/status", None),
    ("POST", "/v1/search"): ("/v1/search", {"query": "secret"}),
    ("POST", "/v1/search/batch"): ("/v1/search/batch", {"queries": ["secret"]}),
    ("GET", "/v1/cost/workflows"): ("/v1/cost/workflows", None),
    ("POST", "/v1/cost/estimate"): ("/v1/cost/estimate", {"models": ["gpt-5.4"], "paths": ["{scratch}/secretdir/src"]}),
    ("POST", "/v1/context"): ("/v1/context", {"task": "secret", "budget": 1000, "model": "gpt-5.4"}),
    # providers: a read for the tenant's members; test and reload for the engine's OS user only
    ("GET", "/v1/providers"): ("/v1/providers", None),
    ("POST", "/v1/providers/test"): ("/v1/providers/test", {}),
    ("POST", "/v1/engine/reload"): ("/v1/engine/reload", {"env": {}}),
    # identity / SSO: the session routes are the caller's own (see CALLERS_OWN)
    ("GET", "/v1/sso/providers"): ("/v1/sso/providers", None),
    ("POST", "/v1/sso/session"): ("/v1/sso/session", {"provider": "corp", "id_token": "a.b.c"}),
    ("GET", "/v1/sso/session"): ("/v1/sso/session", None),
    ("DELETE", "/v1/sso/session"): ("/v1/sso/session", None),
    ("GET", "/v1/sso/rules"): ("/v1/sso/rules", None),
    ("PUT", "/v1/sso/rules"): ("/v1/sso/rules", {"value": "grp-secret", "role": "owner"}),
    ("DELETE", "/v1/sso/rules"): ("/v1/sso/rules?value=grp-secret", None),
    ("GET", "/v1/sso/policy"): ("/v1/sso/policy", None),
    ("PUT", "/v1/sso/policy"): ("/v1/sso/policy", {"required": True}),
    # orchestration runs
    ("GET", "/v1/runs"): ("/v1/runs", None),
    ("POST", "/v1/runs"): ("/v1/runs", {"workflow": "spec", "feature": "secret"}),
    ("GET", "/v1/runs/{id}"): ("/v1/runs/r-000000000000", None),
    ("GET", "/v1/runs/{id}/logs"): ("/v1/runs/r-000000000000/logs", None),
    ("POST", "/v1/runs/{id}/cancel"): ("/v1/runs/r-000000000000/cancel", {}),
    ("POST", "/v1/runs/{id}/resume"): ("/v1/runs/r-000000000000/resume", {}),
    ("POST", "/v1/runs/{id}/approve"): ("/v1/runs/r-000000000000/approve", {}),
    ("POST", "/v1/runs/{id}/reject"): ("/v1/runs/r-000000000000/reject", {}),
    ("POST", "/v1/runs/{id}/request_changes"): ("/v1/runs/r-000000000000/request_changes", {"comment": "x"}),
    ("POST", "/v1/runs/{id}/apply"): ("/v1/runs/r-000000000000/apply", {}),
    # runs gaps (issue 12): output so far, retry one step, latency per tenant, the audit-text switch
    ("GET", "/v1/runs/{id}/output"): ("/v1/runs/r-000000000000/output?step=1", None),
    ("POST", "/v1/runs/{id}/retry"): ("/v1/runs/r-000000000000/retry", {"step": "1"}),
    ("GET", "/v1/providers/stats"): ("/v1/providers/stats", None),
    ("GET", "/v1/run-settings"): ("/v1/run-settings", None),
    ("PUT", "/v1/run-settings"): ("/v1/run-settings", {"audit_text": True}),
    # integrations (issue 17)
    ("GET", "/v1/integrations"): ("/v1/integrations", None),
    ("PUT", "/v1/integrations/{system}"): ("/v1/integrations/jira", {"settings": {"email": "secret@example.com"}}),
    ("POST", "/v1/integrations/{system}/test"): ("/v1/integrations/jira/test", {}),
    ("POST", "/v1/integrations/{system}/notify"): ("/v1/integrations/slack/notify", {"title": "t", "text": "secret"}),
    ("GET", "/v1/integrations/{system}/pipelines"): ("/v1/integrations/gitlab/pipelines?ref=main", None),
    ("POST", "/v1/sync/{system}"): ("/v1/sync/jira", {"project_key": "PROJ", "dry_run": True}),
    ("GET", "/v1/integrations/users"): ("/v1/integrations/users", None),
    ("PUT", "/v1/integrations/{system}/users/{external}"): ("/v1/integrations/slack/users/U0SECRET", {"user": "x"}),
    ("POST", "/v1/inbound/slack"): ("/v1/inbound/slack", {"body": "payload=secret"}),
    ("POST", "/v1/inbound/gitlab"): ("/v1/inbound/gitlab", {"body": "{}", "token": "secret"}),
    ("POST", "/v1/inbound/teams"): ("/v1/inbound/teams", {"body": "{}", "authorization": "Bearer secret"}),
    # remote sessions (docs/remote.md): the engine's OS user only, never someone acting --as
    ("POST", "/v1/sessions"): ("/v1/sessions", {"user": "bobsecret", "tenant": "{b}", "purpose": "ssh"}),
    ("GET", "/v1/sessions"): ("/v1/sessions", None),
    ("DELETE", "/v1/sessions/{id}"): ("/v1/sessions/nosuchsession", None),
    ("POST", "/v1/remote/events"): ("/v1/remote/events", {"mode": "ssh", "event": "login", "user": "bobsecret",
                                                          "tenant": "{b}"}),
    ("POST", "/v1/sso/verify"): ("/v1/sso/verify", {"provider": "corp", "id_token": "a.b.c", "nonce": "n"}),
    # tutorials (issue 18): the caller's own progress and sandbox, never the asked tenant's data
    ("GET", "/v1/tutorials"): ("/v1/tutorials", None),
    ("GET", "/v1/tutorials/{id}"): ("/v1/tutorials/team", None),
    ("GET", "/v1/tutorials/{id}/progress"): ("/v1/tutorials/team/progress", None),
    ("POST", "/v1/tutorials/{id}/start"): ("/v1/tutorials/team/start", {}),
    ("POST", "/v1/tutorials/{id}/check"): ("/v1/tutorials/team/check", {"step": "role"}),
    ("POST", "/v1/tutorials/{id}/complete"): ("/v1/tutorials/team/complete", {"step": "tenant"}),
    ("POST", "/v1/tutorials/{id}/skip"): ("/v1/tutorials/team/skip", {"step": "verify"}),
    ("POST", "/v1/tutorials/{id}/reset"): ("/v1/tutorials/team/reset", {}),
    # provider fine-tuning (issue 19)
    ("POST", "/v1/tune/datasets"): ("/v1/tune/datasets", {"base_model": "gpt-4.1-mini"}),
    ("POST", "/v1/tune/jobs"): ("/v1/tune/jobs", {"dataset": "d-000000000000", "provider": "openai"}),
    ("GET", "/v1/tune/jobs"): ("/v1/tune/jobs", None),
    ("GET", "/v1/tune/jobs/{id}"): ("/v1/tune/jobs/t-000000000000", None),
    ("POST", "/v1/tune/jobs/{id}/cancel"): ("/v1/tune/jobs/t-000000000000/cancel", {}),
    # -- run pipelines (issue 17 gaps): the CI pipeline of a run's git ref
    ("GET", "/v1/runs/{id}/pipeline"): ("/v1/runs/r-000000000000/pipeline", None),
    ("PUT", "/v1/runs/{id}/pipeline"): ("/v1/runs/r-000000000000/pipeline", {"ref": "main"}),
    # -- Entra sign-in (issue 17 gaps): msal device flow for Teams and Azure DevOps
    ("POST", "/v1/integrations/{system}/login"): ("/v1/integrations/teams/login", {}),
    ("GET", "/v1/integrations/{system}/login"): ("/v1/integrations/teams/login", None),
    # local embedder (issue 19)
    ("GET", "/v1/tune/embedders"): ("/v1/tune/embedders", None),
    ("POST", "/v1/tune/embedders"): ("/v1/tune/embedders", {"budget_s": 60}),
    ("POST", "/v1/tune/embedders/activate"): ("/v1/tune/embedders/activate", {"version": 1}),
    ("POST", "/v1/tune/embedders/rollback"): ("/v1/tune/embedders/rollback", {}),
    ("DELETE", "/v1/tune/embedders/{version}"): ("/v1/tune/embedders/1", None),
}
# HEAD runs the GET handler; it must be refused the same way.
for (_m, _p), _case in list(CASES.items()):
    if _m == "GET":
        CASES[("HEAD", _p)] = (_case[0], None)

# Routes with no tenant to protect, or that list only the caller's own tenants.
NOT_TENANT_SCOPED = {"/v1/health", "/v1/tenants", "/v1/whoami"}
# Routes about the caller's own sign-in (no tenant's data): the statuses they may answer.
CALLERS_OWN = {
    ("GET", "/v1/sso/providers"): (200,), ("HEAD", "/v1/sso/providers"): (200,),
    ("POST", "/v1/sso/session"): (400,),  # no [sso] provider here: sso_not_configured
    ("GET", "/v1/sso/session"): (200, 404), ("HEAD", "/v1/sso/session"): (200, 404),
    ("DELETE", "/v1/sso/session"): (404,),
    # tutorials (issue 18): the caller's own; 409 when this caller has not started the tutorial (yet)
    ("GET", "/v1/tutorials"): (200,), ("HEAD", "/v1/tutorials"): (200,),
    ("GET", "/v1/tutorials/{id}"): (200,), ("HEAD", "/v1/tutorials/{id}"): (200,),
    ("GET", "/v1/tutorials/{id}/progress"): (200,), ("HEAD", "/v1/tutorials/{id}/progress"): (200,),
    ("POST", "/v1/tutorials/{id}/start"): (200,), ("POST", "/v1/tutorials/{id}/reset"): (200,),
    ("POST", "/v1/tutorials/{id}/check"): (200, 409), ("POST", "/v1/tutorials/{id}/complete"): (200, 409),
    ("POST", "/v1/tutorials/{id}/skip"): (200, 409),
}


@pytest.fixture(scope="module")
def world(eng: Home, tmp_path_factory: pytest.TempPathFactory) -> World:
    scratch = tmp_path_factory.mktemp("iso")
    a = eng.new_tenant("iso-a", {f"alice-{r}": r for r in INTRUDER_ROLES})
    b = eng.new_tenant("iso-b")
    pdir = scratch / "secretdir"
    (pdir / "src").mkdir(parents=True)
    cb = eng.client(b)
    cb.post("/v1/projects", {"path": str(pdir), "name": "secretproj"})
    cb.post("/v1/roles", {"name": "secretrole", "permissions": ["specs.read"], "description": "secretdesc"})
    cb.post("/v1/members", {"user": "bobsecret", "role": "member"})
    cb.put("/v1/quotas", {"metric": "tokens", "limit": 777_777, "period": "day", "user": "bobsecret"})
    bob = eng.client(b, as_user="bobsecret")
    bob.post("/v1/usage", {"model": "secretmodel", "input_tokens": 4242})
    rid = bob.post("/v1/reservations", {"tokens": 3131, "ttl_s": 3600})["reservation_id"]
    head = eng.client(b).post("/v1/audit/verify", {})["last_hash"]
    markers = ["secretproj", "secretrole", "secretdesc", "bobsecret", "secretmodel", "secretdir", rid, head,
               "777777", "777,777", "4242", "3131"]
    return World(eng, a, b, pdir, rid, markers, scratch)


def fill(s: str, w: World) -> str:
    s = s.replace("{b}", w.b).replace("{rid}", w.rid).replace("{scratch}", str(w.scratch))
    return s.replace("{newtenant}", unique("intr")).replace("{bdir}", str(w.b_project_dir))


def test_every_route_has_a_case() -> None:
    missing = [f"{m} {p}" for m, p in route_table() if (m, p) not in CASES]
    assert not missing, f"add an isolation case for these routes: {missing}"
    stale = [f"{m} {p}" for m, p in CASES if (m, p) not in route_table()]
    assert not stale, f"cases for routes that no longer exist: {stale}"


@pytest.mark.parametrize("route", route_table(), ids=lambda r: f"{r[0]} {r[1]}")
@pytest.mark.parametrize("role", INTRUDER_ROLES)
def test_member_of_a_reads_nothing_of_b(world: World, role: str, route: tuple[str, str]) -> None:
    w, h = world, world.h
    if route not in CASES:
        pytest.fail(f"no isolation case for {route}")
    path_t, body_t = CASES[route]
    path = fill(path_t, w)
    body = json.loads(fill(json.dumps(body_t), w)) if body_t is not None else None
    before = h.head_seq(w.b)
    status, resp = h.raw(route[0], path, body, tenant=w.b, as_user=f"alice-{role}", cwd=str(w.b_project_dir / "src"))
    text = json.dumps(resp, ensure_ascii=False) if resp is not None else ""
    asked = path + json.dumps(body)
    leaked = [m for m in w.markers if m in text and m not in asked]
    assert not leaked, f"{route} leaked {leaked}: {text[:500]}"
    if route in CALLERS_OWN:
        assert status in CALLERS_OWN[route], f"{route}: {status} {text[:300]}"
    elif route[1] in NOT_TENANT_SCOPED and route[0] in ("GET", "HEAD"):
        assert status == 200, resp
        if route[1] == "/v1/tenants" and route[0] == "GET":
            assert [t["name"] for t in resp] == [w.a]
        if route[1] == "/v1/whoami" and route[0] == "GET":
            assert resp["roles"] == [] and resp["permissions"] == []
            assert resp["project"] is None and resp["tenant_status"] is None
    else:
        assert status in (403, 404), f"{route}: {status} {text[:300]}"
        if route[0] != "HEAD":
            assert resp["error"]["code"] in ("permission_denied", "not_found"), resp
    # Nothing of B changed: at most the denial itself was audited.
    assert h.head_seq(w.b) - before <= 1


def test_b_is_intact_after_the_intrusions(world: World) -> None:
    w, h = world, world.h
    cb = h.client(w.b)
    assert cb.get(f"/v1/tenants/{w.b}")["status"] == "active"
    assert [p["name"] for p in cb.get("/v1/projects")] == ["secretproj"]
    assert {(m["user"], m["role"]) for m in cb.get("/v1/members")} == {(h.client().get("/v1/whoami")["user"], "owner"), ("bobsecret", "member")}
    assert "secretrole" in {r["name"] for r in cb.get("/v1/roles")}
    assert [r["reservation_id"] for r in cb.get("/v1/reservations")] == [w.rid]
    assert h.quota(w.b, "tokens", "day", "bobsecret")["limit"] == 777_777
    assert h.quota(w.b, "tokens", "day")["used"] == 4242
    assert not (w.scratch / "leak.jsonl").exists() and not (w.scratch / "leak-cp.json").exists()
    assert "intruder" not in {p["name"] for p in h.client(w.a).get("/v1/projects")}
    # Every intrusion is on B's record, under the intruders' names.
    denied = h.audit(w.b, outcome="denied")
    assert {e["actor"] for e in denied} >= {f"alice-{r}" for r in INTRUDER_ROLES}
    assert h.client(w.b).post("/v1/audit/verify", {})["ok"] is True
    assert h.raw("GET", "/v1/health")[0] == 200  # the engine survived /v1/engine/stop attempts


def test_a_member_reads_its_own_tenant(world: World) -> None:
    """Control: the same requests succeed in A, so the refusals above are about B."""
    w, h = world, world.h
    for path in ("/v1/whoami", "/v1/projects", "/v1/roles", "/v1/members", "/v1/quotas", "/v1/usage/history", "/v1/reservations"):
        status, resp = h.raw("GET", path, tenant=w.a, as_user="alice-member")
        assert status == 200, (path, resp)
    assert h.raw("POST", "/v1/usage", {"model": "m", "input_tokens": 1}, tenant=w.a, as_user="alice-member")[0] == 201


def test_tenant_data_folders_are_separate(world: World) -> None:
    w, h = world, world.h
    da = Path(h.client(w.a).get(f"/v1/tenants/{w.a}")["data_dir"])
    db = Path(h.client(w.b).get(f"/v1/tenants/{w.b}")["data_dir"])
    assert da.is_dir() and db.is_dir() and da != db
    assert da.parent == db.parent == h.paths.tenants


# Names an outsider might probe: the real one of B, and one that exists nowhere.
PROBES: list[tuple[str, str, str, dict[str, Any] | None]] = [
    # (method, path with {n}, the real value of {n}, body)
    ("GET", "/v1/tenants/{n}", "{b}", None),
    ("POST", "/v1/tenants/{n}/suspend", "{b}", {"reason": "x"}),
    ("POST", "/v1/tenants/{n}/resume", "{b}", {}),
    ("DELETE", "/v1/projects/{n}", "secretproj", None),
    ("GET", "/v1/roles/{n}", "secretrole", None),
    ("DELETE", "/v1/roles/{n}", "secretrole", None),
    ("DELETE", "/v1/members/{n}", "bobsecret", None),
    ("GET", "/v1/quotas?user={n}", "bobsecret", None),
    ("GET", "/v1/usage/history?user={n}", "bobsecret", None),
    ("POST", "/v1/reservations/{n}/settle", "{rid}", {"input_tokens": 1}),
    ("POST", "/v1/reservations/{n}/release", "{rid}", {}),
]


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: f"{p[0]} {p[1]}")
def test_an_outsider_cannot_tell_which_names_exist(world: World, probe: tuple[str, str, str, dict[str, Any] | None]) -> None:
    """A user with no role in B gets the same refusal for B's real names as for made-up ones."""
    w, h = world, world.h
    method, path_t, real_t, body = probe
    real = fill(real_t, w)
    fake = "rsv_" + "0" * 24 if real.startswith("rsv_") else unique("nosuch")
    answers = []
    for name in (real, fake):
        status, resp = h.raw(method, path_t.replace("{n}", name), body, tenant=w.b, as_user="alice-member")
        err = resp["error"] if isinstance(resp, dict) and "error" in resp else {}
        answers.append((status, err.get("code"), err.get("message", "").replace(name, "<name>")))
    assert answers[0] == answers[1], answers


def test_an_outsider_cannot_tell_which_tenants_exist(world: World) -> None:
    """The engine's own check, as a user with no role anywhere would meet it over the socket.

    (Over HTTP every caller here is the engine's OS user, who owns the system tenant and so
    may know every tenant; other users arrive through --as, which needs an existing tenant.)
    """
    from core.engine.engine import Engine
    from core.errors import PermissionDenied
    from core.paths import HomePaths
    from core.storage.duckdb_store import DuckDBStorage

    paths = HomePaths(world.scratch / "own")
    paths.ensure()
    e = Engine(paths, DuckDBStorage(paths.db))
    try:
        e.tenancy.bootstrap("root")
        e.tenancy.tenant_create(e.runner.make_ctx("root", None, "default", None, None), "realone")
        answers = []
        for tenant in ("realone", "nosuchone"):
            with pytest.raises(PermissionDenied) as ei:
                e.runner.make_ctx("alice", None, tenant, None, "someproject")
            answers.append((ei.value.code, ei.value.message.replace(tenant, "<t>")))
            with pytest.raises(PermissionDenied) as ei:
                e.tenancy.tenant_show(e.runner.make_ctx("alice", None, "default", None, None, outsiders=True), tenant)
            answers.append((ei.value.code, ei.value.message.replace(tenant, "<t>")))
        assert answers[:2] == answers[2:], answers
        # Who may see every tenant still learns that one does not exist.
        from core.errors import NotFound

        with pytest.raises(NotFound):
            e.runner.make_ctx("root", None, "nosuchone", None, None)
    finally:
        e.runner.storage.close()
