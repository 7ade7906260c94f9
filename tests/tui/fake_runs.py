"""The runs routes (``/v1/runs``, issue 12) for the TUI's fake engine: fixed runs in the engine's shapes.

:class:`FakeRuns` answers list, show, logs, start, cancel, resume, approve, reject, request_changes, apply,
output, retry, provider stats and run settings the way :class:`core.orchestration.service.RunService` does:
the answers have the keys of :mod:`core.api.runs` (tests/tui/test_dashboard_runs.py holds a real engine's run
to the same keys), the refusals are the engine's typed errors and codes (400 for a malformed id, 404
``run_not_found`` / ``gate_not_found``, 403 naming the permission, 409 ``run_finished`` / ``run_state`` /
``gate_answered``; ``provider_not_configured``), and a write changes what the next read returns.
:meth:`FakeRuns.event` builds ``run.*`` events for tests to queue.
"""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

from core.api import runs as rq
from core.api.models import parse
from core.errors import BadRequest, Conflict, NotFound, PermissionDenied, ProviderNotConfigured
from core.orchestration.service import no_provider_message
from tests.tui import fake_pipeline

Json = dict[str, Any]
TS = "2026-01-15T14:30:00.000000Z"
RUN_A, RUN_B, RUN_C, RUN_D = "r-0000000000a1", "r-0000000000b2", "r-0000000000c3", "r-0000000000d4"
DIFF = """\
--- a/tui/commands/runs.py
+++ b/tui/commands/runs.py
@@ -12,7 +12,9 @@ def runs_list(state: CliState, status: str | None) -> None:
     rows = state.client().call(calls.runs(state=status))
-    for r in rows:
-        line(f"{r['id']} {r['state']}")
+    def human(rs: list[dict[str, Any]]) -> None:
+        for r in rs:
+            line(f"{r['id']} {r['workflow']:<12} {r['state']}")
+    emit(state, rows, human)
"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _run(rid: str, workflow: str, state: str, created: str, started: str | None, elapsed: float | None,
         tokens: int, cost: str, est: tuple[int, str], *, stop: str | None = None, reason: str | None = None,
         pending: str | None = None, turns: int = 0, feature: str = "Add a --json flag to musubi runs list",
         finished: str | None = None) -> Json:
    return {
        "id": rid, "tenant": "acme", "project": "webshop", "workflow": workflow, "feature": feature, "state": state,
        "stop_code": stop, "reason": reason, "created_by": "alice", "created_at": created, "started_at": started,
        "finished_at": finished, "updated_at": TS, "elapsed_s": elapsed, "model": None, "tokens": tokens,
        "cost_usd": cost, "turns": turns, "estimate": {"tokens": est[0], "cost_usd": est[1]},
        "limits": {"budget_tokens": 60_000, "budget_usd": "1.000000", "max_turns": 200, "max_step_turns": 25,
                   "gate_timeout_s": 86_400},
        "pending_gate": pending, "job": f"job-{rid[-2:]}", "attempts": 1,
    }


def step(path: str, title: str, status: str, *, agent: str | None = None, type_: str = "agent",
         model: str | None = None, tokens: tuple[int, int] = (0, 0), cost: str = "0.000000",
         latency: float | None = None, elapsed: float | None = None, est: int | None = 4000,
         budget: str | None = None, reason: str | None = None) -> Json:
    """One step row (``RunStep``) for fixed data and tests' ``run.step`` events."""
    parent = path.rsplit("/", 1)[0] if "/" in path else None
    started = None if status == "pending" else "2026-01-15T14:28:00.000000Z"
    ended = "2026-01-15T14:29:00.000000Z" if status in ("done", "failed", "rejected", "stopped") else None
    return {"path": path, "parent": parent, "title": title, "type": type_, "agent": agent, "status": status,
            "model": model, "input_tokens": tokens[0], "output_tokens": tokens[1], "cost_usd": cost,
            "turns": 1 if model else 0, "estimate": {"tokens": est, "cost_usd": "0.030000" if est else None},
            "budget": {"tokens": None, "cost_usd": budget}, "latency_ms": latency, "started_at": started,
            "ended_at": ended, "elapsed_s": elapsed, "reason": reason}


def _sdd_steps(last: str) -> list[Json]:
    done = [
        step("1", "requirements", "done", agent="requirements-analyst", model="gpt-5.4-mini", tokens=(3200, 900),
             cost="0.012300", latency=820.0, elapsed=14.2),
        step("2", "design", "done", agent="system-architect", model="claude-sonnet-4.6", tokens=(4100, 1800),
             cost="0.041000", latency=2310.0, elapsed=31.0, budget="0.250000"),
    ]
    if last == "running":
        return [*done,
                step("3", "implement", "running", type_="parallel", elapsed=75.0),
                step("3/1", "developer", "running", agent="software-developer", model="gpt-5.4", tokens=(5200, 1220),
                     cost="0.061000", latency=1940.0, elapsed=75.0, budget="0.500000"),
                step("3/2", "tests", "running", agent="test-engineer", model="gpt-5.4-mini", tokens=(1800, 200),
                     cost="0.028000", latency=640.0, elapsed=40.0),
                step("4", "review", "pending", type_="approval", est=None)]
    return [*done,
            step("3", "implement", "done", agent="software-developer", model="gpt-5.4", tokens=(6000, 2400),
                 cost="0.090000", latency=2050.0, elapsed=88.0, budget="0.500000"),
            step("4", "review", "waiting", type_="approval", est=None, elapsed=12.0)]


def fixed_runs() -> dict[str, Json]:
    """Run id -> ``RunShown``: a running run, one waiting at a gate, a done one and one stopped by a quota."""
    a = _run(RUN_A, "sdd", "running", "2026-01-15T14:28:00.000000Z", "2026-01-15T14:28:00.000000Z", 120.0,
             18_420, "0.142300", (40_000, "0.320000"), turns=5)
    b = _run(RUN_B, "sdd", "waiting", "2026-01-15T14:10:00.000000Z", "2026-01-15T14:10:00.000000Z", 1200.0,
             21_300, "0.184000", (40_000, "0.320000"), pending="review", turns=4,
             feature="Paginate the audit log export")
    c = _run(RUN_C, "bugfix", "done", "2026-01-15T13:00:00.000000Z", "2026-01-15T13:00:00.000000Z", 342.0,
             9_800, "0.051000", (12_000, "0.060000"), turns=3, finished="2026-01-15T13:05:42.000000Z",
             feature="Fix the quota reset off-by-one")
    d = _run(RUN_D, "sdd", "stopped", "2026-01-15T12:00:00.000000Z", "2026-01-15T12:00:00.000000Z", 95.0,
             30_100, "0.260000", (40_000, "0.320000"), stop="quota", turns=6,
             reason="quota exceeded: tokens per day for tenant acme (100,000); resume after it resets",
             feature="Add SSO login")
    gate = {"gate": "review", "step": "4", "state": "pending", "artefact": "a-0000000000b2", "shown_sha256": sha(DIFF),
            "shown": DIFF, "asked_at": "2026-01-15T14:29:00.000000Z", "deadline": "2026-01-16T14:29:00.000000Z",
            "decision": None, "decided_by": None, "decided_at": None, "comment": None}
    art = {"id": "a-0000000000b2", "step": "3", "kind": "diff", "name": "implement.diff", "sha256": sha(DIFF),
           "size": len(DIFF.encode()), "state": "proposed", "content": DIFF, "applied_at": None, "applied_by": None,
           "detail": None}
    req = {"id": "a-0000000000a1", "step": "1", "kind": "requirements", "name": "requirements.md",
           "sha256": sha("x"), "size": 120, "state": "proposed", "applied_at": None, "applied_by": None, "detail": None,
           "content": "REQ-RUNS-001: WHEN the user passes --json THE SYSTEM SHALL print the runs as JSON."}
    done_steps = [step("1", "reproduce", "done", agent="triage", model="gpt-5.4-mini", tokens=(2000, 400),
                       cost="0.010000", latency=700.0, elapsed=20.0),
                  step("2", "fix", "done", agent="software-developer", model="gpt-5.4", tokens=(5400, 2000),
                       cost="0.041000", latency=1800.0, elapsed=300.0)]
    stopped = _sdd_steps("running")[:3] + [step("3/1", "developer", "stopped", agent="software-developer",
                                                model="gpt-5.4", tokens=(9000, 3000), cost="0.100000",
                                                reason="quota exceeded: tokens per day")]
    return {
        RUN_A: {**a, "steps": _sdd_steps("running"), "approvals": [], "artefacts": [req]},
        RUN_B: {**b, "steps": _sdd_steps("waiting"), "approvals": [gate], "artefacts": [req, art]},
        RUN_C: {**c, "steps": done_steps, "approvals": [], "artefacts": []},
        RUN_D: {**d, "steps": stopped, "approvals": [], "artefacts": []},
    }


LIVE_3_1 = "Reading tui/commands/runs.py to see how list prints its rows.\n"


def fixed_stats() -> list[Json]:
    """``GET /v1/providers/stats`` for tenant acme: two models, the slower first in the Dashboard."""
    return [
        {"tenant": "acme", "provider": "anthropic", "model": "claude-sonnet-4.6", "count": 9, "p50_ms": 1800.0,
         "p95_ms": 2310.0, "p99_ms": 2400.0},
        {"tenant": "acme", "provider": "openai", "model": "gpt-5.4", "count": 14, "p50_ms": 900.0, "p95_ms": 1940.0,
         "p99_ms": 2050.0},
    ]


def summary(shown: Json) -> Json:
    """The ``Run`` (list row, ``run.state`` payload) of a ``RunShown``."""
    return {k: v for k, v in shown.items() if k not in ("steps", "approvals", "artefacts")}


class FakeRuns:
    """The run routes over :func:`fixed_runs` (or none: ``FakeRuns(empty=True)``)."""

    def __init__(self, empty: bool = False) -> None:
        self.runs: dict[str, Json] = {} if empty else fixed_runs()
        # runs gaps: each running step's stream so far (the engine's live tail), provider latency, settings
        self.live: dict[tuple[str, str], str] = {} if empty else {(RUN_A, "3/1"): LIVE_3_1, (RUN_A, "3/2"): ""}
        self.stats: list[Json] = [] if empty else fixed_stats()
        self.settings: Json = {"tenant": "acme", "audit_text": False, "updated_at": None, "updated_by": None}
        self.providers = False  # a start answers the engine's provider_not_configured refusal unless set
        self.pipelines = fake_pipeline.fixed(RUN_A)  # issue 17 gaps: run id -> GET /v1/runs/{id}/pipeline
        self.logs: dict[str, list[Json]] = {RUN_A: [
            {"n": 1, "ts": TS, "step": None, "kind": "state", "text": "queued: workflow sdd, 4 step(s)"},
        ]}

    def answer(self, method: str, path: str, body: Json | None, query: Json | None, user: str,
               perms: list[str]) -> Any:
        body = body or {}
        if path == "/v1/providers/stats":
            return self.stats
        if path == "/v1/run-settings":
            return self.run_settings(method, user, perms, body)
        if path == "/v1/runs":
            if method == "POST":
                return self.start(user, perms, body)
            req = parse(rq.RunsQuery, {k: v for k, v in (query or {}).items() if v is not None})
            states = set(req.state.split(",")) if req.state else None
            if states and not states <= set(rq.RUN_STATES):
                bad = ", ".join(sorted(states - set(rq.RUN_STATES)))
                raise BadRequest(f"unknown run state {bad}; states are: {', '.join(rq.RUN_STATES)}.", field="state")
            rows = sorted(self.runs.values(), key=lambda r: (r["created_at"], r["id"]), reverse=True)
            return [summary(r) for r in rows if states is None or r["state"] in states][: int(req.limit or 50)]
        m = re.fullmatch(r"/v1/runs/([^/]+)(?:/(\w+))?", path)
        if m is None:
            raise NotFound(f"fake engine has no route {method} {path}")
        rid, verb = m.group(1), m.group(2)
        rq.check_run_id(rid)
        if verb in ("output", "retry"):  # the engine checks the request before it looks for the run
            given = (query or {}) if verb == "output" else body
            parse(rq.RunStepQuery if verb == "output" else rq.RunRetry,
                  {"id": rid, **{k: v for k, v in given.items() if v is not None}})
        run = self.runs.get(rid)
        if run is None:
            raise NotFound(f"no run {rid} in tenant 'acme' that you can see. See your runs with: musubi runs list",
                           resource=f"run:{rid}", code="run_not_found")
        if method == "GET":
            if verb == "pipeline":  # issue 17 gaps: the CI line (tests/tui/fake_pipeline.py)
                return fake_pipeline.answer(self.pipelines, rid)
            if verb == "logs":
                return {"run": rid, "lines": self.logs.get(rid, []), "next_after": len(self.logs.get(rid, []))}
            if verb == "output":
                return self.output(run, query or {})
            return copy.deepcopy(run)
        if verb == "retry":
            return self.retry(run, user, perms, body)
        if verb == "cancel":
            return self.cancel(run, user, perms)
        if verb == "resume":
            return self.resume(run, user, perms)
        if verb in ("approve", "reject", "request_changes"):
            return self.decide(run, verb, user, perms, body)
        if verb == "apply":
            return self.apply(run, user, perms, body)
        raise NotFound(f"fake engine has no route {method} {path}")

    @staticmethod
    def _require(perms: list[str], perm: str, user: str) -> None:
        if perm not in perms:
            raise PermissionDenied(f"permission denied: {user} lacks '{perm}' in tenant 'acme'.", permission=perm)

    def start(self, user: str, perms: list[str], body: Json) -> Json:
        parse(rq.RunStart, body)
        if not self.providers:
            raise ProviderNotConfigured(no_provider_message(None))  # the engine's own words
        self._require(perms, "runs.start", user)
        raise NotFound(f"unknown workflow {body.get('workflow')!r}")

    def cancel(self, run: Json, user: str, perms: list[str]) -> Json:
        self._require(perms, "runs.start" if run["created_by"] == user else "runs.cancel", user)
        if run["state"] in rq.FINAL_STATES:
            raise Conflict(f"run {run['id']} is already {run['state']}; there is nothing to cancel.",
                           code="run_finished", state=run["state"])
        run.update(state="cancelled", stop_code="cancelled", reason=f"cancelled by {user}", finished_at=TS,
                   pending_gate=None)
        for s in run["steps"]:
            if s["status"] in ("pending", "running", "waiting", "interrupted"):
                s["status"] = "cancelled"
        return summary(run)

    # -- runs gaps (issue 12) ---------------------------------------------------------------------

    @staticmethod
    def _step(run: Json, path: str) -> Json:
        s = next((x for x in run["steps"] if x["path"] == path), None)
        if s is None:
            raise NotFound(f"run {run['id']} has no step {path!r}; its steps: "
                           f"{', '.join(sorted(x['path'] for x in run['steps']))}. See them with: musubi runs show "
                           f"{run['id']}", resource=f"run:{run['id']}", code="step_not_found")
        return s

    def output(self, run: Json, query: Json) -> Json:
        """The step's live tail while it streams (``self.live``), else its recorded output (artefact or none)."""
        req = parse(rq.RunStepQuery, {"id": run["id"], **{k: v for k, v in query.items() if v is not None}})
        s = self._step(run, req.step)
        base = {"run": run["id"], "step": s["path"], "status": s["status"]}
        live = self.live.get((run["id"], s["path"]))
        if live is not None:
            return {**base, "source": "live", "text": live, "offset": 0, "end": len(live), "truncated": False}
        arts = [a["content"] for a in run["artefacts"] if a["step"] == s["path"]]
        if s["status"] == "done" and arts:
            text = "\n\n".join(arts)
            return {**base, "source": "record", "text": text, "offset": 0, "end": len(text), "truncated": False}
        return {**base, "source": "none", "text": "", "offset": 0, "end": 0, "truncated": False}

    def retry(self, run: Json, user: str, perms: list[str], body: Json) -> Json:
        req = parse(rq.RunRetry, {"id": run["id"], **body})
        self._require(perms, "runs.start", user)
        s = self._step(run, req.step)
        if run["state"] in ("queued", "running", "waiting"):
            raise Conflict(f"run {run['id']} is {run['state']}; a step can be retried once the run has stopped, "
                           "failed, been cancelled or finished.", code="run_state", state=run["state"])
        if s["status"] not in ("failed", "cancelled", "stopped", "interrupted"):
            raise Conflict(f"step {s['path']} of run {run['id']} is {s['status']}; only a failed, cancelled, stopped "
                           "or interrupted step can be retried.", code="step_state", state=s["status"])
        s.update(status="pending", reason=None, ended_at=None)
        run.update(state="queued", stop_code=None, reason=None, finished_at=None, attempts=run["attempts"] + 1)
        return {"run": summary(run), "step": s["path"], "superseded": []}

    def run_settings(self, method: str, user: str, perms: list[str], body: Json) -> Json:
        if method == "PUT":
            req = parse(rq.RunSettingsSet, body)
            self._require(perms, "tenant.manage", user)
            self.settings.update(audit_text=req.audit_text, updated_at=TS, updated_by=user)
        return self.settings

    def resume(self, run: Json, user: str, perms: list[str]) -> Json:
        self._require(perms, "runs.start", user)
        if run["state"] not in ("stopped", "failed", "interrupted"):
            raise Conflict(f"run {run['id']} is {run['state']}; only a stopped, failed or interrupted run can be "
                           "resumed.", code="run_state", state=run["state"])
        run.update(state="queued", stop_code=None, reason=None, attempts=run["attempts"] + 1)
        return summary(run)

    def apply(self, run: Json, user: str, perms: list[str], body: Json) -> Json:
        """Mark an approved diff applied (the engine checks it with git-apply semantics and writes it)."""
        req = parse(rq.RunApply, {"id": run["id"], **body})
        self._require(perms, "runs.approve", user)
        diffs = [a for a in run["artefacts"] if a["kind"] == "diff" and (req.artefact in (None, a["id"]))]
        if not diffs:
            raise NotFound(f"run {run['id']} has no diff artefact {req.artefact or ''}".rstrip() + ".",
                           code="artefact_not_found")
        art = diffs[0]
        if art["state"] != "approved":
            raise Conflict(f"artefact {art['id']} is {art['state']}: only an approved diff is applied.",
                           code="artefact_state", state=art["state"])
        art.update(state="applied", applied_at=TS, applied_by=user, detail="tui/commands/runs.py")
        return {"run": run["id"], "artefact": art["id"], "state": "applied", "files": ["tui/commands/runs.py"]}

    def decide(self, run: Json, verb: str, user: str, perms: list[str], body: Json) -> Json:
        req = parse(rq.RunDecide, {"id": run["id"], **body})
        name = req.gate or run["pending_gate"]
        ap = next((a for a in run["approvals"] if a["gate"] == name), None)
        if ap is None:
            what = f"gate {req.gate!r}" if req.gate else "pending approval gate"
            raise NotFound(f"run {run['id']} has no {what}. See it with: musubi runs show {run['id']}",
                           code="gate_not_found")
        self._require(perms, "runs.approve", user)
        if ap["state"] != "pending":
            raise Conflict(f"gate {ap['gate']!r} of run {run['id']} was already answered ({ap['state']} by "
                           f"{ap['decided_by']}); a gate is never asked twice.", code="gate_answered",
                           state=ap["state"])
        if req.shown_sha256 and req.shown_sha256 != ap["shown_sha256"]:
            raise Conflict(f"gate {ap['gate']!r} shows other content than you reviewed; look again with: musubi "
                           f"runs show {run['id']}", code="gate_content_changed")
        state = {"approve": "approved", "reject": "rejected", "request_changes": "changes_requested"}[verb]
        ap.update(state=state, decision=state, decided_by=user, decided_at=TS, comment=req.comment)
        run["pending_gate"] = None
        art = next((a for a in run["artefacts"] if a["id"] == ap["artefact"]), None)
        if art is not None and verb == "approve" and art["state"] == "proposed":
            art["state"] = "approved"
        return {"run": summary(run), "gate": ap["gate"], "decision": verb, "by": user}


def event(kind: str, run: str, **fields: Any) -> Json:
    """A ``run.*`` event as the engine's stream carries it (``type``, ``tenant``, ``ts``, ``run`` and the rest)."""
    return {"type": kind, "tenant": "acme", "ts": TS, "run": run, **fields}


def state_event(run: Json) -> Json:
    """A ``run.state`` event: the run's summary after a change."""
    return {"type": "run.state", "tenant": "acme", "ts": TS, "run": summary(run)}
