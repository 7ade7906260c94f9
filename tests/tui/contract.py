"""The scenarios of the engine API contract: the same typed calls, sent to the TUI's fake and to a real engine.

:func:`run_scenarios` drives an :class:`~core.async_client.EngineApi` through the calls the
TUI and CLI make — tenants, roles, members, quotas, usage, audit, trace, models, and the
refusals (bad input, not found, permission denied, quota exceeded) — and returns, per
step, the call, its answer (or the typed error's code, status and exit code) and the
values that must agree.  tests/tui/test_api_contract.py runs it against both and checks
every answer against the route's response model and the values against each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.api import calls
from core.api.calls import Call
from core.api.runs import RUN_STATES
from core.async_client import EngineApi
from core.errors import MusubiError
from core.jobs.model import STATES as JOB_STATES

# Names no fixed data uses, so both sides start from nothing for them.
TENANT = "contract-co"
USER = "dora"
VIEWER = "vic"
MODEL = "gpt-5.4-mini"
PROJECT = "contract-code"  # registered by the scenario, never indexed
NO_RUN = "r-000000000000"  # a well-formed run id no engine has
TUTORIAL = "first-steps"  # its first steps are a key and a mode step (the app reports them)
CHECKED_STEP = "role"  # a state step of the team tutorial (the engine checks it)


@dataclass
class Step:
    """One call of a scenario: what was sent, what came back, and the values compared across engines."""

    name: str
    call: Call[Any]
    answer: Any = None
    error: dict[str, Any] | None = None
    values: Any = None


def _error(exc: MusubiError) -> dict[str, Any]:
    return {"type": type(exc).__name__, "code": exc.code, "http_status": exc.http_status, "exit_code": exc.exit_code}


async def run_scenarios(api: EngineApi, repo: str) -> list[Step]:
    """Every scenario, in order, on ``api``; ``repo`` is a repository built by tests/trace/fixture.py."""
    steps: list[Step] = []
    me = ""

    async def step(name: str, call: Call[Any], values: Callable[[Any], Any] = lambda a: None) -> Any:
        s = Step(name, call)
        try:
            s.answer = await api.call(call)
        except MusubiError as exc:
            s.error = _error(exc)
        else:
            try:
                # The caller's own name differs between the fake (alice) and a real engine (the OS user).
                s.values = _anonymous(values(s.answer), me)
            except (KeyError, TypeError, IndexError) as exc:
                s.values = f"unreadable answer ({type(exc).__name__}: {exc})"
        steps.append(s)
        return s.answer

    who = await step("whoami", calls.whoami(), lambda a: ("owner" in a["roles"], "quotas.manage" in a["permissions"],
                                                                 a["system_admin"]))
    me = who["user"]

    # -- tenants
    await step("tenant list", calls.tenants(), lambda a: all(t["status"] in ("active", "suspended") for t in a))
    await step("tenant create", calls.tenant_create(TENANT),
               lambda a: (a["name"], a["status"], a["created_by"], a["status_reason"]))
    await step("tenant list after create", calls.tenants(),
               lambda a: [(t["name"], t["members"], t["your_roles"]) for t in a if t["name"] == TENANT])
    await step("tenant create again", calls.tenant_create(TENANT))
    await step("tenant create bad name", calls.tenant_create("Not A Name!"))
    await step("tenant show unknown", calls.tenant_show("no-such-tenant"))

    # -- roles
    await step("role list", calls.roles(), lambda a: sorted(r["name"] for r in a if r["builtin"]))
    await step("role show", calls.role_show("viewer"),
               lambda a: (a["name"], a["builtin"], sorted(a["permissions"]),
                          sorted(k for k, v in a["matrix"].items() if v)))
    await step("role show unknown", calls.role_show("no-such-role"))

    # -- members
    await step("member add", calls.member_add(USER, "member"),
               lambda a: (a["user"], a["role"], a["project"], a["action"]))
    await step("member list", calls.members(),
               lambda a: [(m["user"], m["role"], m["project"]) for m in a if m["user"] == USER])
    await step("member change role", calls.member_add(USER, "viewer"), lambda a: (a["user"], a["role"], a["action"]))
    await step("member add unknown role", calls.member_add(USER, "no-such-role"))
    await step("member add bad name", calls.member_add("", "member"))
    await step("member remove", calls.member_remove(USER), lambda a: (a["user"], a["project"], a["removed_role"]))
    await step("member remove again", calls.member_remove(USER))

    # -- quotas and usage
    await step("quota set", calls.quota_set("tokens", "minute", 1000, alerts=[0.8]),
               lambda a: (a["metric"], a["period"], a["scope"], a["user"], a["limit"], a["used"], a["alerts"]))
    await step("quota set bad limit", calls.quota_set("tokens", "minute", -5))
    await step("quota set bad metric", calls.quota_set("bananas", "minute", 5))
    await step("usage record", calls.usage_record(MODEL, 100, 50, cost_usd="0.001"),
               lambda a: (a["recorded"], a["model"], a["tokens"], a["requests"], a["cost_usd"]))
    await step("quota status", calls.quota_status(), lambda a: [
        (q["metric"], q["period"], q["limit"], q["used"], q["remaining"])
        for q in a["quotas"] if q["period"] == "minute"
    ])
    await step("usage over quota", calls.usage_record(MODEL, 2000, 0, cost_usd="0"))
    await step("usage record bad tokens", calls.usage_record(MODEL, -1, 0))
    await step("quota remove", calls.quota_remove("tokens", "minute"),
               lambda a: (a["removed"], a["metric"], a["period"], a["user"]))
    await step("quota remove again", calls.quota_remove("tokens", "minute"))

    # -- permission denied: a viewer may read, not manage
    await step("member add viewer", calls.member_add(VIEWER, "viewer"), lambda a: (a["user"], a["role"]))
    api.identity.as_user = VIEWER
    try:
        await step("viewer whoami", calls.whoami(),
                   lambda a: (a["user"], a["roles"], "quotas.manage" in a["permissions"], a["system_admin"]))
        await step("viewer quota set", calls.quota_set("tokens", "day", 10))
        await step("viewer member add", calls.member_add(USER, "member"))
    finally:
        api.identity.as_user = None
    await step("member remove viewer", calls.member_remove(VIEWER), lambda a: (a["user"], a["removed_role"]))

    # -- identity / SSO (Admin ▸ SSO): the rules and the policy
    await step("sso rule set", calls.sso_rule_set("grp-contract", "member"),
               lambda a: (a["claim"], a["value"], a["role"], a["provider"], a["action"]))
    await step("sso rule set again", calls.sso_rule_set("grp-contract", "viewer"), lambda a: (a["role"], a["action"]))
    await step("sso rule set unknown role", calls.sso_rule_set("grp-x", "no-such-role"))
    await step("sso rule set bad claim", calls.sso_rule_set("grp-x", "member", claim="email"))
    await step("sso rules", calls.sso_rules(),
               lambda a: [(r["claim"], r["value"], r["role"]) for r in a if r["value"] == "grp-contract"])
    await step("sso rule remove", calls.sso_rule_remove("grp-contract"), lambda a: (a["value"], a["action"]))
    await step("sso rule remove again", calls.sso_rule_remove("grp-contract"))
    await step("sso policy", calls.sso_policy(), lambda a: (a["sso_required"], a["break_glass"]))
    await step("sso policy on without break-glass", calls.sso_policy_set(True))

    # -- notify (issue 17): Admin ▸ Integrations
    await step("integrations list", calls.integrations(),
               lambda a: [(r["system"], r["configured"], r["settings"], r["secrets"]) for r in a["integrations"]])
    await step("integration test unconfigured", calls.integration_test("teams"))
    await step("integration set secret as setting", calls.integration_set("slack", settings={"token": "x"}))
    await step("integration set", calls.integration_set("slack", settings={"channel": "C0123"}),
               lambda a: (a["system"], a["settings"], a["secrets"]))

    # -- audit
    await step("audit list", calls.audit_list(limit=50), lambda a: _audit_trail(a))
    await step("audit list bad filter", calls.audit_list(since="yesterday-ish"))
    await step("audit verify", calls.audit_verify(), lambda a: (a["ok"], a["first_bad_seq"], a["reason"]))

    # -- trace and models
    await step("trace report", calls.trace_report(repo),
               lambda a: sorted(r["id"] for r in a["requirements"]))
    await step("trace summary", calls.trace_report(repo, view="summary"), lambda a: " ".join(sorted(a)))
    await step("trace impact unknown", calls.trace_impact("REQ-NOPE-999", repo))
    # -- code search, in no registered project (a real engine's client runs in /): no index is built
    await step("index status, no project", calls.index_status())
    await step("search, no project", calls.search("anything"))
    # -- code search in a registered project that was never indexed (issue 11)
    await step("project add", calls.project_add(repo, name=PROJECT), lambda a: (a["name"], a["path"] == repo))
    api.identity.project = PROJECT
    try:
        await step("index status, not indexed", calls.index_status(),
                   lambda a: (a["project"], a["root"] == repo, a["state"], a["files"], a["chunks"], a["dense_chunks"],
                              a["dense_coverage"], a["model"], a["updated_at"], a["job"]))
        await step("search, not indexed", calls.search("anything"))
        await step("search, not indexed, bad k", calls.search("anything", k=0))
    finally:
        api.identity.project = None
    await step("project remove", calls.project_remove(PROJECT), lambda a: (a["name"], a["path"] == repo))
    await step("models list", calls.models_list(), lambda a: (sorted(m["id"] for m in a["models"]), a["allowed"]))

    # -- providers (the Dashboard's next steps): never a key; hints name a variable or config table
    await step("providers list", calls.providers_list(), lambda a: all(
        "OPENAI_API_KEY" in h["hint"] for h in a["hints"] if h["provider"] == "openai"))
    # -- orchestration runs (the Dashboard): refusals, and a start with no provider configured
    await step("runs list", calls.runs(limit=5), lambda a: all(r["state"] in RUN_STATES for r in a) and len(a) <= 5)
    await step("runs list bad state", calls.runs(state="sleeping"))
    await step("run start, no provider", calls.run_start("spec", "add a --json flag"))
    await step("run start, empty feature", calls.run_start("spec", ""))
    await step("run show unknown", calls.run_show(NO_RUN))
    await step("run show bad id", calls.run_show("run-1"))
    await step("run approve unknown", calls.run_decide(NO_RUN, "approve", comment="ok"))
    await step("run request changes unknown", calls.run_decide(NO_RUN, "request_changes", comment="why"))
    await step("run cancel unknown", calls.run_cancel(NO_RUN))
    await step("run resume unknown", calls.run_resume(NO_RUN))
    await step("run logs unknown", calls.run_logs(NO_RUN))
    # -- the Dashboard's CI line (issue 17 gaps)
    await step("run pipeline unknown", calls.run_pipeline(NO_RUN))
    await step("run pipeline bad id", calls.run_pipeline("run-1"))
    # -- runs gaps (issue 12): output so far, retry one step, provider latency, the audit-text switch
    await step("run output unknown", calls.run_output(NO_RUN, "1"))
    await step("run output bad id", calls.run_output("run-1", "1"))
    await step("run output no step", calls.run_output(NO_RUN, ""))
    await step("run retry unknown", calls.run_retry(NO_RUN, "1"))
    await step("run retry no step", calls.run_retry(NO_RUN, ""))
    await step("provider stats", calls.provider_stats(), lambda a: all(
        r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] and r["count"] > 0 for r in a))
    await step("run settings", calls.run_settings(), lambda a: a["audit_text"])
    # -- background jobs (issue 19: the Dashboard's fine-tuning line reads GET /v1/jobs)
    await step("jobs list", calls.get("/v1/jobs", limit=50), lambda a: all(
        j["state"] in JOB_STATES and j["progress"]["done"] >= 0 for j in a))
    await step("jobs list bad state", calls.get("/v1/jobs", state="sleeping"))
    await step("jobs list bad limit", calls.get("/v1/jobs", limit=0))

    # -- tutorials (issue 18): the catalogue, a start, client-seen steps, refusals, reset (mode 5 and its panel)
    await step("tutorials list", calls.tutorials(),
               lambda a: sorted((t["id"], t["steps"], t["version"], t["progress"]["state"]) for t in a))
    await step("tutorial show unknown", calls.tutorial_show("no-such-tutorial"))
    await step("tutorial show bad id", calls.tutorial_show("Not An Id!"))
    await step("tutorial complete before start", calls.tutorial_complete(TUTORIAL, "open-help"))
    await step("tutorial check a key step", calls.tutorial_check(TUTORIAL, "open-help"))
    await step("tutorial complete an engine-checked step", calls.tutorial_complete("team", CHECKED_STEP))
    await step("tutorial start", calls.tutorial_start(TUTORIAL), lambda a: (
        a["resumed"], a["completed_now"], a["progress"]["state"], a["progress"]["current"],
        a["sandbox"]["tenant"] == f"tut-{me}-{TUTORIAL}", a["sandbox"]["project"],
        a["progress"]["sandbox"] is not None))
    await step("tutorial show started", calls.tutorial_show(TUTORIAL), lambda a: [
        (s["id"], s["kind"], s["state"], s["key"], s["mode"], s["action"],
         [c.replace(me, "<me>") for c in s["command"] or []]) for s in a["steps"]])
    await step("tutorial complete key step", calls.tutorial_complete(TUTORIAL, "open-help"),
               lambda a: (a["step"], a["state"], a["progress"]["current"], a["progress"]["done"], a["completed_now"]))
    await step("tutorial complete again", calls.tutorial_complete(TUTORIAL, "open-help"),
               lambda a: (a["state"], a["progress"]["done"]))
    await step("tutorial complete unknown step", calls.tutorial_complete(TUTORIAL, "no-such-step"))
    await step("tutorial skip", calls.tutorial_skip(TUTORIAL, "switch-mode"),
               lambda a: (a["step"], a["state"], a["progress"]["current"], a["progress"]["skipped"]))
    await step("tutorial start again resumes", calls.tutorial_start(TUTORIAL),
               lambda a: (a["resumed"], a["progress"]["current"], a["progress"]["done"]))
    await step("tutorial progress", calls.tutorial_progress(TUTORIAL),
               lambda a: (a["state"], a["current"], a["done"], a["skipped"], a["total"]))
    await step("tutorial reset", calls.tutorial_reset(TUTORIAL),
               lambda a: (a["cleaned"] is not None, a["progress"]["state"], a["progress"]["done"]))
    await step("tutorial complete after reset", calls.tutorial_complete(TUTORIAL, "open-help"))
    return steps


def _audit_trail(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The scenario's own audit events (those naming its tenant, member or model), oldest first."""
    mine = (f"tenant:{TENANT}", f"member:{USER}", f"member:{VIEWER}", f"model:{MODEL}")
    return [(e["action"], e["resource"], e["outcome"]) for e in reversed(events) if e["resource"] in mine]


def _anonymous(value: Any, me: str) -> Any:
    """``value`` with the caller's own name replaced by ``<me>``."""
    if isinstance(value, str):
        return "<me>" if value == me and me else value
    if isinstance(value, (list, tuple)):
        return type(value)(_anonymous(v, me) for v in value)
    return value


def route_for(method: str, path: str) -> Any:
    """The engine's route (:class:`core.engine.routing.Route`) that serves ``method path``."""
    import re

    from core.engine.server import all_routes

    for route in all_routes():
        pattern = re.sub(r"\{(\w+)(:[^}]*)?\}", lambda mt: f"(?P<{mt[1]}>{(mt[2] or ':[^/]+')[1:]})", route.path)
        if route.method == method and re.fullmatch(pattern, path):
            return route
    raise LookupError(f"no engine route serves {method} {path}")
