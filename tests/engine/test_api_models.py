"""The typed API models against the real engine: answers have the response shapes, requests parse as documented."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import msgspec
import pytest

from core.api import models as m
from core.api.responses import Streamed
from core.engine.engine import Engine
from core.engine.server import all_routes
from core.errors import BadRequest
from core.rbac import PERMISSIONS
from tests.trace.fixture import build_repo

from .helpers import Home, unique, utc_iso, wait_gone


def _typeddict(tp: Any) -> Any:
    """The TypedDict inside ``tp`` (``X``, ``X | None``), else None."""
    for t in (tp, *typing.get_args(tp)):
        if typing.is_typeddict(t):
            return t
    return None


def _exactly(answer: Any, shape: Any) -> None:
    """``answer`` converts to ``shape`` (types checked) and no object in it has a key its shape does not name."""
    msgspec.convert(answer, shape)
    _no_extra(answer, shape)


def _no_extra(answer: Any, shape: Any) -> None:
    if typing.get_origin(shape) is list:
        (inner,) = typing.get_args(shape)
        for item in answer:
            _no_extra(item, inner)
        return
    td = _typeddict(shape)
    if td is None or answer is None:
        return
    hints = typing.get_type_hints(td)
    assert set(answer) <= set(hints), f"{td.__name__}: unexpected {sorted(set(answer) - set(hints))}"
    for key, value in answer.items():
        _no_extra(value, hints[key])


# Routes whose answer is not JSON: the export's file content and the event stream.
STREAMED = {("POST", "/v1/audit/export"), ("GET", "/v1/events")}
# Job routes need a job kind, which only an engine with the test hook runs: tests/jobs checks their answers.
JOBS = {("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/v1/jobs/{id}"), ("POST", "/v1/jobs/{id}/cancel")}
# Index and search routes need the search worker: tests/index/test_index_api.py checks their answers.
JOBS |= {("POST", "/v1/index"), ("GET", "/v1/index/status"), ("POST", "/v1/search"), ("POST", "/v1/search/batch")}


# A context pack needs an indexed project: tests/index/test_context_engine.py checks its answers.
JOBS |= {("POST", "/v1/context")}
# Signing in and out needs an identity provider: tests/identity/test_engine_sso.py checks their answers.
JOBS |= {("POST", "/v1/sso/session"), ("DELETE", "/v1/sso/session")}
# Verifying a browser's ID token needs an identity provider: tests/identity/test_web_oidc.py checks its answer.
JOBS |= {("POST", "/v1/sso/verify")}
# Runs need the scripted provider of the runs test hook: tests/runs/test_runs_shapes.py checks their answers.
JOBS |= {(r.method, r.path) for r in all_routes() if r.path.startswith("/v1/runs")}
# Integrations need a connector and a vendor (fakes): tests/connectors/test_cli_sync.py checks their answers.
JOBS |= {("GET", "/v1/integrations"), ("PUT", "/v1/integrations/{system}"), ("POST", "/v1/integrations/{system}/test"),
         ("GET", "/v1/integrations/{system}/pipelines"), ("POST", "/v1/sync/{system}"),
         ("POST", "/v1/integrations/{system}/notify")}
# notify (issue 17): inbound calls need a signed vendor request: tests/notify/test_notify_engine.py checks them.
JOBS |= {("POST", "/v1/inbound/slack"), ("POST", "/v1/inbound/gitlab"), ("GET", "/v1/integrations/users"),
         ("PUT", "/v1/integrations/{system}/users/{external}")}
# A device-flow sign-in needs Entra ID (a fake): tests/connectors/test_entra_login.py checks its answers.
JOBS |= {("POST", "/v1/integrations/{system}/login"), ("GET", "/v1/integrations/{system}/login")}
# provider fine-tuning (issue 19) needs approved runs and a fake vendor: tests/finetune/test_tune_engine.py checks them.
JOBS |= {(r.method, r.path) for r in all_routes() if r.path.startswith("/v1/tune/")}
JOBS |= {("POST", "/v1/inbound/teams")}  # teams bot: a signed activity, tests/notify/test_teams_bot.py


def _drive_every_route(h: Home, repo: Path) -> dict[tuple[str, str], list[Any]]:
    """Each route once (some twice: another variant of the answer) against the real engine; its answers."""
    t = h.new_tenant("am")
    got: dict[tuple[str, str], list[Any]] = {}

    def call(method: str, route: str, url: str | None = None, body: Any = None, tenant: str | None = t) -> Any:
        status, answer = h.raw(method, url or route, body, tenant=tenant)
        assert status in (200, 201), f"{method} {url or route}: {status} {answer}"
        got.setdefault((method, route), []).append(answer)
        return answer

    call("GET", "/v1/health")
    call("GET", "/v1/whoami")
    # tenants, projects, roles, members
    other = unique("zz")
    call("POST", "/v1/tenants", body={"name": other}, tenant=None)
    call("GET", "/v1/tenants", tenant=None)
    call("GET", "/v1/tenants/{name}", f"/v1/tenants/{t}")
    call("POST", "/v1/tenants/{name}/suspend", f"/v1/tenants/{other}/suspend", {"reason": "x"}, tenant=None)
    call("POST", "/v1/tenants/{name}/resume", f"/v1/tenants/{other}/resume", tenant=None)
    call("POST", "/v1/projects", body={"path": str(repo), "name": "r"})
    call("POST", "/v1/projects", body={"path": str(repo.parent), "name": "gone"})
    call("GET", "/v1/projects")
    call("DELETE", "/v1/projects/{name}", "/v1/projects/gone")
    call("POST", "/v1/roles", body={"name": "rr", "permissions": ["quotas.read"], "description": "d"})
    call("GET", "/v1/roles")
    call("GET", "/v1/roles/{name}", "/v1/roles/rr")
    call("POST", "/v1/members", body={"user": "mia", "role": "rr"})
    call("POST", "/v1/members", body={"user": "bo", "role": "member", "project": "r"})
    call("GET", "/v1/members")
    call("DELETE", "/v1/members/{user}", "/v1/members/mia")
    call("DELETE", "/v1/roles/{name}", "/v1/roles/rr")
    # quotas, usage, reservations
    call("PUT", "/v1/quotas", body={"metric": "tokens", "limit": 10_000, "period": "day", "alerts": [0.5]})
    call("PUT", "/v1/quotas", body={"metric": "cost_usd", "limit": "5", "period": "month"})
    call("DELETE", "/v1/quotas", "/v1/quotas?metric=cost_usd&period=month")
    call("POST", "/v1/usage", body={"model": "gpt-4o", "input_tokens": 5, "cost_usd": "0.01"})
    call("GET", "/v1/quotas")
    call("GET", "/v1/usage/history")
    rid = call("POST", "/v1/reservations", body={"tokens": 10})["reservation_id"]
    rid2 = call("POST", "/v1/reservations", body={"tokens": 10, "cost_usd": "0.5"})["reservation_id"]
    call("GET", "/v1/reservations")
    settle = {"input_tokens": 15, "model": "gpt-5.4"}  # over the reservation: an overshoot
    call("POST", "/v1/reservations/{rid}/settle", f"/v1/reservations/{rid}/settle", settle)
    call("POST", "/v1/reservations/{rid}/release", f"/v1/reservations/{rid2}/release")
    # audit
    call("GET", "/v1/audit", "/v1/audit?limit=5")
    call("POST", "/v1/audit/verify", body={})
    call("POST", "/v1/audit/checkpoint", body={"dry_run": True})
    call("POST", "/v1/audit/checkpoint", body={})
    call("POST", "/v1/audit/prune", body={"before": utc_iso()})
    # traceability
    p = f"path={repo}"
    for view in ("full", "summary", "changes"):
        call("GET", "/v1/trace", f"/v1/trace?{p}&view={view}")
    call("GET", "/v1/trace/requirements/{id}", f"/v1/trace/requirements/REQ-AUTH-002?{p}")
    call("GET", "/v1/trace/gaps", f"/v1/trace/gaps?{p}")
    call("GET", "/v1/trace/impact/{id}", f"/v1/trace/impact/REQ-AUTH-002?{p}")
    call("GET", "/v1/trace/export", f"/v1/trace/export?{p}&format=json")
    call("GET", "/v1/spec/lint", f"/v1/spec/lint?{p}")
    call("POST", "/v1/trace/review", body={"path": str(repo), "id": "REQ-AUTH-002"})
    link = {"path": str(repo), "requirement": "REQ-AUTH-002", "kind": "code", "target": "src/crlf.py"}
    call("POST", "/v1/trace/links", body=link)
    call("POST", "/v1/trace/links/remove", body=link)
    # models and cost
    call("GET", "/v1/models")
    call("GET", "/v1/models/{id:.+}", "/v1/models/gpt-5.4")
    call("PUT", "/v1/models/allowed", body={"models": ["gpt-5.4"]})
    call("GET", "/v1/models/allowed")
    call("DELETE", "/v1/models/allowed")
    call("POST", "/v1/models/route", body={"task": "review", "input_tokens": 1000})
    call("GET", "/v1/cost/workflows")
    estimate = {"models": ["gpt-5.4"], "paths": [str(repo / "src" / "crlf.py")], "workflow": "review"}
    call("POST", "/v1/cost/estimate", body=estimate)
    table = {"gpt-5.4": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 3e-6,
                         "output_cost_per_token": 1e-5, "max_input_tokens": 100_000, "max_output_tokens": 1000}}
    call("POST", "/v1/models/import", body={"table": table, "source": "x.json", "dry_run": True})
    call("POST", "/v1/models/import", body={"table": table, "source": "x.json"})
    # providers (issue 12): reload with no variables first, so the test never calls a real vendor
    call("POST", "/v1/engine/reload", body={"env": {}}, tenant=None)
    call("GET", "/v1/providers")
    call("POST", "/v1/providers/test", body={}, tenant=None)
    # runs gaps (issue 12): latency per tenant (no calls here) and the audit-text switch
    call("GET", "/v1/providers/stats")
    call("PUT", "/v1/run-settings", body={"audit_text": False})
    call("GET", "/v1/run-settings")
    # identity / SSO (no provider is configured here)
    call("GET", "/v1/sso/providers")
    call("GET", "/v1/sso/session")
    call("PUT", "/v1/sso/rules", body={"value": "grp-x", "role": "member"})
    call("GET", "/v1/sso/rules")
    call("DELETE", "/v1/sso/rules", "/v1/sso/rules?value=grp-x")
    call("PUT", "/v1/sso/policy", body={"required": False})
    call("GET", "/v1/sso/policy")
    # remote sessions (docs/remote.md)
    sid = call("POST", "/v1/sessions", body={"user": "bo", "tenant": t, "purpose": "ssh"})["id"]
    call("GET", "/v1/sessions")
    call("DELETE", "/v1/sessions/{id}", f"/v1/sessions/{sid}?reason=test")
    call("POST", "/v1/remote/events", body={"mode": "ssh", "event": "login", "user": "bo", "tenant": t})
    # tutorials (issue 18): the whole life of one tutorial, as user "tut-am" (own progress, own sandbox)
    def tut(method: str, route: str, url: str, body: Any = None) -> Any:
        status, answer = h.raw(method, url, body, as_user="tut-am")
        assert status == 200, f"{method} {url}: {status} {answer}"
        got.setdefault((method, route), []).append(answer)
        return answer

    tut("GET", "/v1/tutorials", "/v1/tutorials")
    tut("POST", "/v1/tutorials/{id}/start", "/v1/tutorials/team/start")
    tut("GET", "/v1/tutorials/{id}", "/v1/tutorials/team")
    tut("POST", "/v1/tutorials/{id}/check", "/v1/tutorials/team/check", {"step": "role"})
    tut("POST", "/v1/tutorials/{id}/complete", "/v1/tutorials/team/complete", {"step": "tenant"})
    tut("POST", "/v1/tutorials/{id}/skip", "/v1/tutorials/team/skip", {"step": "verify"})
    tut("GET", "/v1/tutorials/{id}/progress", "/v1/tutorials/team/progress")
    tut("POST", "/v1/tutorials/{id}/reset", "/v1/tutorials/team/reset")
    tut("POST", "/v1/tutorials/{id}/reset", "/v1/tutorials/team/reset")  # nothing to clean: cleaned is null
    return got


def test_real_answers_have_the_response_shapes(eng: Home, tmp_path: Path) -> None:
    got = _drive_every_route(eng, build_repo(tmp_path / "r", git=False))
    routes = {(r.method, r.path): r.response for r in all_routes()}
    assert {k for k, v in routes.items() if v is Streamed} == STREAMED
    assert None not in routes.values(), "every route names its answer (or Streamed)"
    # Every route with a JSON answer was driven here, but engine/stop (below, on its own engine).
    assert set(routes) - STREAMED - JOBS - {("POST", "/v1/engine/stop")} == set(got)
    for key, answers in got.items():
        for answer in answers:
            _exactly(answer, routes[key])
    # The optional parts were there to be checked.
    assert got[("GET", "/v1/quotas")][0]["quotas"]
    assert got[("GET", "/v1/trace")][0]["requirements"]
    assert got[("GET", "/v1/usage/history")][0]["rows"]


def test_engine_stop_answers_its_shape(home: Home) -> None:
    home.start()
    status, answer = home.raw("POST", "/v1/engine/stop")
    assert status == 200
    _exactly(answer, m.Stopping)
    wait_gone(answer["pid"])


def test_a_wrong_shape_is_caught() -> None:
    with pytest.raises(msgspec.ValidationError):
        _exactly({"reservation_id": "rsv_1", "released": "yes"}, m.Released)
    with pytest.raises(AssertionError):
        _exactly({"reservation_id": "rsv_1", "released": True, "extra": 1}, m.Released)


def test_defaults_live_in_the_request_model() -> None:
    r = m.parse(m.UsageRecord, {"model": "gpt-4o"})
    assert r.args() == {
        "model": "gpt-4o",
        "input_tokens": 0,
        "output_tokens": 0,
        "requests": 1,
        "cost_micros": None,  # left out: the engine prices it from the registry (docs/quotas.md#pricing)
        "task_kind": None,
    }
    assert (
        m.parse(m.UsageRecord, {"model": "x", "requests": None}).requests == 1
    )  # null: the default
    assert m.parse(m.Reserve, {}).args()["ttl_s"] == m.DEFAULT_TTL_S
    assert (
        m.parse(m.UsageRecord, {"model": "x", "input_tokens": "1_000", "cost_usd": "0.5"}).args()[
            "cost_micros"
        ]
        == 500_000
    )


@pytest.mark.parametrize(
    ("model", "data", "field", "says"),
    [
        (m.UsageRecord, {"model": "x", "input_tokens": -1}, "input_tokens", "is negative"),
        (
            m.UsageRecord,
            {"model": "x", "input_tokens": [1]},
            "input_tokens",
            "is not a whole number",
        ),
        (m.UsageRecord, {}, "model", "pass --model NAME"),
        (m.Settle, {}, "rid", "rid is missing"),
        (m.RoleCreate, {"name": 5}, "name", "name must be a string (got int)"),
        (m.MemberRemove, {"user": "u", "project": ["p"]}, "project", "project must be a string"),
        (m.ProjectAdd, {"path": "/x", "shared": "yes"}, "shared", "shared must be true or false"),
        (m.AuditCheckpoint, {"path": 5}, "path", "path must be a string"),
    ],
)
def test_refusals_are_bad_requests_naming_the_field(
    model: type[m.Request], data: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(BadRequest) as exc:
        m.parse(model, data)
    assert exc.value.extra["field"] == field
    assert says in exc.value.message


def test_every_route_names_a_real_operation_and_permission() -> None:
    special = {"open", "member", "system", "engine"}
    for r in all_routes():
        assert (r.op is None) != (r.handler is None), (
            f"{r.method} {r.path}: an op or a handler, not both"
        )
        if r.op is not None:
            service, _, method = r.op.partition(".")
            op = getattr(Engine.SERVICES.get(service), method, None)
            assert callable(op) and not method.startswith("_"), (
                f"{r.method} {r.path}: no operation {r.op} (<service>.<method> of Engine.SERVICES)"
            )
            args = set(r.request.__struct_fields__) - {"__none__"}
            params = set(typing.get_type_hints(op)) - {"ctx", "return"}
            renamed = {r.request.RENAME.get(a, a) for a in args}
            if r.request not in (
                m.AuditList,
                m.RoleCreate,
                m.AuditCheckpoint,
            ):  # these map their own args
                assert renamed <= params, (
                    f"{r.method} {r.path}: {sorted(renamed - params)} are not arguments of {r.op}"
                )
        assert r.permission in special or r.permission in PERMISSIONS, (
            f"{r.method} {r.path}: {r.permission}"
        )
