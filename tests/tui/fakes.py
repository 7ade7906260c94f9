"""A fake engine for TUI tests: fixed data (so snapshots never change run to run), recorded writes,
switchable availability and a live event queue.  Integration tests use the real engine instead."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.async_client import AsyncEngineClient
from core.errors import EngineUnavailable, PermissionDenied
from core.orchestration.provider_settings import hint_for
from core.paths import HomePaths
from core.rbac import PERMISSIONS
from core.wire import Identity
from tests.tui.fake_engine import FakeEngine, role_json
from tests.tui.fake_jobs import FakeJobs
from tests.tui.fake_runs import FakeRuns
from tests.tui.fake_search import FakeSearch
from tests.tui.fake_tune import FakeTune
from tests.tui.fake_tutorials import FakeTutorials
from tui.config import ColorDecision, Settings
from tui.context import AppContext

NOW = datetime(2026, 1, 15, 14, 30, 0, tzinfo=UTC)
HOME = Path("/tmp/musubi-snap-home")


def _quota(qid: int, metric: str, period: str, limit: Any, used: Any, frac: float, ws: str, resets: str, alerts: list[float], user: str | None = None) -> dict[str, Any]:
    return {
        "id": qid, "metric": metric, "period": period, "scope": "user" if user else "tenant", "user": user,
        "limit": limit, "used": used, "reserved": 0, "remaining": 0, "fraction_used": frac,
        "window_start": ws, "resets_at": resets, "alerts": alerts,
    }


def fixed_data() -> dict[str, Any]:
    quotas = [
        _quota(1, "tokens", "day", 100_000, 62_000, 0.62, "2026-01-15T00:00:00.000000Z", "2026-01-16T00:00:00.000000Z", [0.8, 1.0]),
        _quota(2, "requests", "hour", 100, 91, 0.91, "2026-01-15T14:00:00.000000Z", "2026-01-15T15:00:00.000000Z", [0.9]),
        _quota(3, "cost_usd", "month", "50.000000", "12.500000", 0.25, "2026-01-01T00:00:00.000000Z", "2026-02-01T00:00:00.000000Z", []),
    ]
    audit = [
        {"tenant_id": "acme", "seq": s, "ts": f"2026-01-15T14:{s:02d}:00.000000Z", "actor": a, "action": act, "resource": res,
         "outcome": out, "details": det, "prev_hash": f"{s - 1:064x}", "hash": f"{s:064x}"}
        for s, a, act, res, out, det in [
            (1, "engine", "tenant.create", "tenant:acme", "success", {"owner": "alice"}),
            (2, "engine", "member.add", "member:alice", "success", {"role": "owner"}),
            (3, "alice", "member.add", "member:bob", "success", {"role": "member"}),
            (4, "alice", "quota.set", "quota:1", "success", {"limit": 100000, "metric": "tokens", "period": "day"}),
            (5, "bob", "quota.set", "quota:1", "denied", {"code": "permission_denied", "permission": "quotas.manage"}),
            (6, "bob", "usage.record", "model:gpt-4o", "success", {"tokens": 1200}),
        ]
    ][::-1]
    return {
        "health": {"ok": True, "version": "0.1.0", "pid": 4242, "home": str(HOME), "socket": str(HOME / "engine.sock"),
                   "schema_version": 1, "started_at": "2026-01-15T08:00:00.000000Z", "user": "alice"},
        "whoami": {"user": "alice", "real_user": "alice", "tenant": "acme", "tenant_status": "active", "project": "webshop",
                   "roles": ["owner"], "permissions": sorted(PERMISSIONS), "tenant_permissions": sorted(PERMISSIONS),
                   "system_admin": True},
        "tenants": [
            {"name": "acme", "status": "active", "created_at": "2026-01-02T09:00:00.000000Z", "created_by": "alice",
             "status_changed_at": None, "status_reason": None, "members": 3, "projects": 1, "your_roles": ["owner"]},
            {"name": "default", "status": "active", "created_at": "2026-01-01T08:00:00.000000Z", "created_by": "alice",
             "status_changed_at": None, "status_reason": None, "members": 1, "projects": 0, "your_roles": ["owner"]},
            {"name": "legacy", "status": "suspended", "created_at": "2026-01-03T10:00:00.000000Z", "created_by": "alice",
             "status_changed_at": "2026-01-10T12:00:00.000000Z", "status_reason": "migrated", "members": 2, "projects": 0,
             "your_roles": []},
        ],
        "members": [
            {"user": "alice", "project": None, "role": "owner", "since": "2026-01-02T09:00:00.000000Z", "added_by": "engine"},
            {"user": "bob", "project": None, "role": "member", "since": "2026-01-05T11:00:00.000000Z", "added_by": "alice"},
            {"user": "carol", "project": "webshop", "role": "viewer", "since": "2026-01-06T12:00:00.000000Z", "added_by": "alice"},
        ],
        "projects": [{"name": "webshop", "path": "/src/webshop", "current": True}],
        "quotas": {"tenant": "acme", "user": "alice", "quotas": quotas, "tightest": quotas[1]},
        "audit": audit,
        "history": {"tenant": "acme", "bucket": "hour", "rows": [
            {"bucket": f"2026-01-15T{h:02d}:00:00.000000Z", "tokens": t, "requests": r, "cost_micros": c}
            for h, t, r, c in [(6, 4000, 4, 120000), (9, 12000, 10, 900000), (11, 26000, 30, 2100000), (13, 18000, 40, 1500000), (14, 2000, 7, 200000)]
        ]},
        # GET /v1/providers of an engine with nothing configured: what to set, per registry provider.
        "providers": {"providers": [], "hints": [{"provider": p, "hint": hint_for(p)} for p in ("anthropic", "openai")],
                      "config": "/home/alice/.config/musubi/config.toml", "config_error": None, "generation": 1,
                      "in_flight": 0},
        "verify": {"tenant_id": "acme", "ok": True, "checked": 6, "first_bad_seq": None, "reason": None, "start_seq": 1,
                   "last_seq": 6, "last_hash": f"{6:064x}", "quarantined": [], "checkpoints": 0,
                   "checkpoint_signatures_ok": True, "anchor_seq": None},
    }


class FakeEngineApi(AsyncEngineClient):
    """The TUI's engine API on :class:`FakeEngine` instead of a socket.

    Only the transport is fake (``_send``): the typed calls of :mod:`core.api.calls`, the
    write counting and the decoding path are the real client's.  Answers come in the
    engine's shapes (tests/tui/test_api_contract.py holds it to that); every write is
    recorded; availability switches (``set_down``), refusals come on demand (``denied``),
    writes can be held (``hold``) and live events queued (``queue``).
    """

    def __init__(self) -> None:
        super().__init__(HomePaths(HOME), Identity(tenant="acme", cwd="/src/webshop"))
        self.data = fixed_data()
        self.engine = FakeEngine(self.data)
        self.writes: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = []
        self.reads: list[tuple[str, dict[str, Any] | None]] = []
        self.down = False
        self.denied: set[tuple[str, str]] = set()  # (method, path) answered with 403
        self.hold = asyncio.Event()  # cleared: writes wait (to test quitting while work runs)
        self.hold.set()
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.starts = 0
        self.code = FakeSearch()  # the code-search routes (the Search screen)
        self.runs = FakeRuns()  # the orchestration runs (the Dashboard)
        self.tutorials = FakeTutorials()  # the tutorials (mode 5 and the tutorial panel)
        self.tutorials.probe = self._probe
        self.jobs = FakeJobs()  # background jobs (the Dashboard's fine-tuning line, issue 19)
        self.tune: FakeTune | None = None  # issue 19, Search ▸ v: off (404, as an older engine) unless a test sets it

    def _check(self) -> None:
        if self.down:
            raise EngineUnavailable("the engine is not running; press ctrl+r to start it, or run: musubi engine start")

    async def start(self) -> dict[str, Any]:
        self.starts += 1
        self._check()
        return copy.deepcopy(self.data["health"])

    async def probe(self) -> dict[str, Any]:
        self._check()
        return copy.deepcopy(self.data["health"])

    def set_down(self, down: bool) -> None:
        self.down = down
        if down:
            self.queue.put_nowait(None)

    async def _send(self, method: str, path: str, body: dict[str, Any] | None, query: dict[str, Any] | None) -> Any:
        self._check()
        if (method, path) in self.denied:
            raise PermissionDenied(f"permission denied: alice lacks 'x' for {method} {path}.", permission="x")
        if path.startswith(("/v1/models", "/v1/cost/")):
            from tests.models.fake_cost import answer  # model and cost routes (the Cost screen)

            return answer(method, path, body, self.data["quotas"])
        if path.startswith(("/v1/index", "/v1/search")):
            registered = {p["name"]: p["path"] for p in self.data["projects"]}
            return await self.code.answer(method, path, body, self.identity.project, registered)
        if path.startswith("/v1/tune/embedders") and self.tune is not None:
            return self.tune.answer(method, path, self.code.project)
        if path.startswith(("/v1/trace", "/v1/spec/")):
            from tests.trace.fake_trace import answer as trace_answer  # the Trace screen's routes

            if method != "GET":
                self.writes.append((method, path, body, query))
            return trace_answer(method, path, body, query)
        if method == "GET":
            self.reads.append((path, query))
        else:
            await self.hold.wait()
            self.writes.append((method, path, body, query))
        if path.startswith("/v1/tutorials"):
            try:
                return await self.tutorials.answer(method, path, body)
            finally:
                self._sandbox_tenants()
        if path == "/v1/health":  # what a tutorial's check may read (the app itself uses start/probe)
            return copy.deepcopy(self.data["health"])
        if path == "/v1/whoami" and self.tutorials.live_sandbox(self.identity.tenant):
            # In a tutorial's sandbox the user is its owner (the engine makes it so at start).
            return {**self.engine.answer(method, path, body, query, self.identity.as_user),
                    "tenant": self.identity.tenant}
        if path == "/v1/jobs":  # issue 19: the Dashboard's fine-tuning line (tests/tui/fake_jobs.py)
            return self.jobs.answer(method, path, query)
        if path.startswith("/v1/runs") or path in ("/v1/providers/stats", "/v1/run-settings"):  # + runs gaps
            user = self.identity.as_user or self.engine.owner
            return copy.deepcopy(self.runs.answer(method, path, body, query, user, self.engine.permissions_of(user)))
        return self.engine.answer(method, path, body, query, self.identity.as_user)

    def _sandbox_tenants(self) -> None:
        """The tutorials' sandbox tenants in the tenant list, as the engine lists them (cleaned: suspended)."""
        rows = {t["name"]: t for t in self.data["tenants"]}
        for name in self.tutorials.sandboxes:
            live = self.tutorials.live_sandbox(name)
            row = rows.get(name)
            if row is None:
                row = {"name": name, "status": "active", "created_at": "2026-01-15T14:30:00.000000Z",
                       "created_by": "alice", "status_changed_at": None, "status_reason": None, "members": 1,
                       "projects": 1, "your_roles": ["owner"]}
                self.data["tenants"].append(row)
            if not live and row["status"] == "active":
                row.update(status="suspended", status_changed_at="2026-01-15T14:30:00.000000Z",
                           status_reason="tutorial sandbox cleaned")
        self.data["tenants"].sort(key=lambda t: t["name"])

    async def _probe(self, route: str, query: dict[str, str], tenant: str) -> Any:
        """A tutorial check's GET, answered by the rest of the fake as it answers the app."""
        saved = self.identity.tenant
        self.identity.tenant = tenant
        try:
            return await self._send("GET", route, None, query)
        finally:
            self.identity.tenant = saved

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            self._check()
            ev = await self.queue.get()
            if ev is None:
                raise EngineUnavailable("event stream lost: connection reset")
            yield ev

    async def export_audit(self, fmt: str, filters: dict[str, Any], output: str, *, force: bool = False) -> dict[str, Any]:
        body = {"format": fmt, "path": output, "filters": filters, "force": force}
        await self.hold.wait()
        self.writes.append(("POST", "/v1/audit/export", body, None))
        return {"format": fmt, "path": output, "events": 6}

    def events(self, types: str = "audit,quota.alert") -> AsyncIterator[dict[str, Any]]:
        return self._events()

    async def close(self) -> None:
        """Nothing to release."""


__all__ = ["FakeEngineApi", "fake_ctx", "fixed_data", "role_json"]


def fake_ctx(api: FakeEngineApi | None = None, settings: Settings | None = None, color: str = "truecolor") -> AppContext:
    """A context on the fake engine with a frozen clock and animations off."""
    return AppContext(
        api or FakeEngineApi(),
        settings or Settings(),
        ColorDecision(color, "test"),
        animations=False,
        clock=lambda: NOW,
        config_file=None,
    )
