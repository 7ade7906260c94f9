"""Admin screens driven by keys against a REAL engine on a temporary home."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.widgets import Input, Select, Static

from core.client import EngineClient, start_engine, stop_engine
from core.paths import HomePaths
from core.wire import Identity
from tests.tui.conftest import open_admin_tab, settle, wait_for
from tui.app import MusubiApp
from tui.config import ColorDecision, EngineSettings, Settings
from tui.context import AppContext, AsyncEngineClient
from tui.screens.admin.audit import AuditPane
from tui.screens.admin.forms import FormModal
from tui.screens.admin.members import MembersPane
from tui.screens.admin.tenants import TenantsPane
from tui.widgets.gauge import QuotaGauge


def real_app(paths: HomePaths, as_user: str | None = None) -> tuple[MusubiApp, AppContext]:
    settings = Settings(engine=EngineSettings(retry_initial_s=0.1, retry_max_s=0.5, poll_s=30))
    ctx = AppContext(AsyncEngineClient(paths, Identity(as_user=as_user)), settings, ColorDecision("truecolor", "test"), animations=False)
    return MusubiApp(ctx), ctx


def notes(app: MusubiApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def engine_eventually(pilot: Any, read: Callable[[], Any], pred: Callable[[Any], bool], what: str) -> Any:
    """Poll the engine (through the sync client, off the UI loop) until ``pred`` holds."""
    box: dict[str, Any] = {}

    async def check() -> bool:
        box["v"] = await asyncio.to_thread(read)
        return pred(box["v"])

    for _ in range(200):
        if await check():
            return box["v"]
        await pilot.pause(0.1)
    raise AssertionError(f"engine never showed: {what} (last: {box.get('v')!r})")


async def submit_form(pilot: Any, app: MusubiApp, **values: str) -> None:
    form = app.screen
    assert isinstance(form, FormModal), f"expected a form, got {form!r}"
    for name, value in values.items():
        w = form.query_one(f"#field-{name}")
        if isinstance(w, Select):
            w.value = value
        else:
            assert isinstance(w, Input)
            w.value = ""
            w.focus()
            await pilot.press(*value)
    await pilot.press("ctrl+s")
    await pilot.pause()


async def test_owner_creates_tenant_adds_member_changes_quota_verifies_and_exports(engine_home: HomePaths, tmp_path: Path) -> None:
    client = EngineClient(engine_home, autostart=False)
    app, ctx = real_app(engine_home)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: ctx.conn.name == "connected", "connected to the real engine")
        await pilot.press("6")
        await settle(pilot)

        # Tenants: create one through the form.
        await pilot.press("n")
        await pilot.pause()
        await submit_form(pilot, app, name="acme")
        await engine_eventually(pilot, lambda: client.get("/v1/tenants"), lambda ts: "acme" in {t["name"] for t in ts}, "tenant acme")
        pane = app.screen.query_one(TenantsPane)
        await wait_for(pilot, lambda: "acme" in {t["name"] for t in pane.tenants}, "acme listed in the table")

        # Members: add bob as member, then change his role to viewer.
        await pilot.press("right_square_bracket")
        await settle(pilot)
        await pilot.press("a")
        await pilot.pause()
        await submit_form(pilot, app, user="bob", role="member")
        await engine_eventually(pilot, lambda: client.get("/v1/members"), lambda ms: any(m["user"] == "bob" and m["role"] == "member" for m in ms), "bob as member")
        members = app.screen.query_one(MembersPane)
        await wait_for(pilot, lambda: any(m["user"] == "bob" for m in members.members), "bob in the table")
        row = next(i for i, m in enumerate(members.members) if m["user"] == "bob")
        members.query_one("#members-table").move_cursor(row=row)
        await pilot.press("c")
        await pilot.pause()
        await submit_form(pilot, app, role="viewer")
        await engine_eventually(pilot, lambda: client.get("/v1/members"), lambda ms: any(m["user"] == "bob" and m["role"] == "viewer" for m in ms), "bob as viewer")
        await wait_for(pilot, lambda: "✓ yes  quotas.read" in str(members.query_one("#role-matrix", Static).render()), "viewer matrix shown")

        # Quotas: the first gauge is requests/hour (limit 100); raise it to 250.
        await pilot.press("right_square_bracket")
        await settle(pilot)
        gauges = list(app.screen.query(QuotaGauge))
        assert [g.quota["metric"] for g in gauges] == ["requests", "tokens"]
        gauges[0].focus()
        await pilot.press("e")
        await pilot.pause()
        await submit_form(pilot, app, limit="250")

        def requests_limit(q: dict[str, Any]) -> Any:
            return next(x["limit"] for x in q["quotas"] if x["metric"] == "requests")

        await engine_eventually(pilot, lambda: client.get("/v1/quotas"), lambda q: requests_limit(q) == 250, "limit 250")
        await wait_for(pilot, lambda: any(g.quota.get("limit") == 250 for g in app.screen.query(QuotaGauge)), "gauge shows 250")

        # Audit: verify the chain, then export it.
        await pilot.press("right_square_bracket")
        await settle(pilot)
        audit = app.screen.query_one(AuditPane)
        assert {"tenant.create", "member.add", "member.update", "quota.set"} <= {e["action"] for e in audit.events}
        await pilot.press("v")
        verify = audit.query_one("#audit-verify", Static)
        try:
            await wait_for(pilot, lambda: "Chain intact" in str(verify.render()), "verify result")
        except AssertionError:
            raise AssertionError(f"{verify.render()!r} {notes(app)}") from None
        expected = await asyncio.to_thread(client.post, "/v1/audit/verify")
        # Verifying is a read: the engine's own answer right after must match what the screen says.
        assert f"{expected['checked']} events checked (seq 1..{expected['last_seq']})" in str(verify.render())
        out = tmp_path / "audit.jsonl"
        await pilot.press("x")
        await pilot.pause()
        await submit_form(pilot, app, path=str(out))
        await wait_for(pilot, lambda: out.exists() and out.stat().st_size > 0, "export file written")
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert {"tenant.create", "quota.set"} <= {e["action"] for e in lines}
        await wait_for(pilot, lambda: any("Exported" in n for n in notes(app)), "export notification")


async def test_viewer_is_refused_with_a_notification_and_nothing_changes(engine_home: HomePaths) -> None:
    client = EngineClient(engine_home, autostart=False)
    client.post("/v1/members", {"user": "vera", "role": "viewer"})
    app, ctx = real_app(engine_home, as_user="vera")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: ctx.conn.name == "connected", "connected as vera")
        assert ctx.user == "vera" and ctx.whoami and ctx.whoami["roles"] == ["viewer"]
        await open_admin_tab(pilot, "quotas")
        await pilot.press("e")
        await pilot.pause()
        # Refused before a form is filled (whoami says vera lacks quotas.manage): no form, a reason.
        assert not isinstance(app.screen, FormModal)
        await wait_for(pilot, lambda: any(n.startswith("Permission needed") and "quotas.manage" in n for n in notes(app)),
                       "refusal before the form")
        limits = {q["metric"]: q["limit"] for q in client.get("/v1/quotas")["quotas"]}
        assert limits == {"requests": 100, "tokens": 100_000}  # the refused change changed nothing
        # The audit tab needs audit.read: it says so, lastingly, and asks the engine for nothing.
        await pilot.press("right_square_bracket")
        await settle(pilot)
        banner = app.screen.query_one("#audit-pane .needs-permission")
        assert banner.display and "needs audit.read" in str(banner.render())  # type: ignore[attr-defined]
        assert app.is_running


async def test_engine_restart_is_survived_and_live_updates_resume(engine_home: HomePaths) -> None:
    client = EngineClient(engine_home, autostart=False)
    app, ctx = real_app(engine_home)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: ctx.conn.name == "connected", "connected")
        await asyncio.to_thread(stop_engine, engine_home)
        await wait_for(pilot, lambda: ctx.conn.name == "reconnecting", "noticed the engine is gone")
        assert "not running" in ctx.conn.reason
        assert app.is_running
        await asyncio.to_thread(start_engine, engine_home)
        await wait_for(pilot, lambda: ctx.conn.name == "connected", "reconnected")
        # The event stream subscribes right after connecting: wait until the engine counts the app's stream.
        await engine_eventually(pilot, lambda: client.get("/v1/health"), lambda h: h["subscribers"] >= 1,
                                "the app's event stream subscribed")
        await asyncio.to_thread(client.post, "/v1/usage", {"model": "m", "input_tokens": 700, "output_tokens": 0})

        def tokens_used() -> int:
            qs = (ctx.quotas or {}).get("quotas") or []
            return next((int(q["used"]) for q in qs if q["metric"] == "tokens"), 0)

        await wait_for(pilot, lambda: tokens_used() == 700, "quota refreshed from the live event stream")


async def test_an_engine_that_cannot_start_is_shown_as_down_with_the_reason(tmp_path: Path) -> None:
    long_home = tmp_path / ("h" * 120)  # the socket path would exceed the 107-byte Unix limit
    app, ctx = real_app(HomePaths.resolve(long_home))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: ctx.conn.name == "down", "down state")
        assert "107 bytes" in ctx.conn.reason and "--home" in ctx.conn.reason
        # The notification follows the state change by a message or two (late on a loaded machine).
        await wait_for(pilot, lambda: any("Engine down" in n for n in notes(app)), "engine-down notification")
        assert app.is_running
