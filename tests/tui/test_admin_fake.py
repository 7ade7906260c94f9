"""Admin panes on the fake engine: what is sent, what is shown for broken chains and live events."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from tests.tui.conftest import settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.screens.admin.audit import AuditPane, matches, verify_text
from tui.screens.modals import ConfirmModal
from tui.screens.tenant_picker import TenantPicker

NEXT = "right_square_bracket"


async def open_admin(pilot: Any, tabs: int) -> None:
    ctx = pilot.app.ctx
    await wait_for(pilot, lambda: ctx.conn.name == "connected", "connected")
    await pilot.press("6")
    await settle(pilot)
    for _ in range(tabs):
        await pilot.press(NEXT)
        await settle(pilot)


def test_verify_text_names_first_bad_seq_in_words() -> None:
    broken = {"ok": False, "checked": 56, "first_bad_seq": 57, "reason": "hash does not match the event's contents", "start_seq": 1, "last_seq": 56}
    assert verify_text(broken) == "✗ Chain BROKEN at seq 57: hash does not match the event's contents. 56 events checked before it."
    ok = {"ok": True, "checked": 6, "start_seq": 1, "last_seq": 6, "checkpoints": 1}
    assert verify_text(ok) == "✓ Chain intact: 6 events checked (seq 1..6, 1 checkpoint(s))."


def test_live_event_filter_matches_the_engine_semantics() -> None:
    ev = {"actor": "bob", "action": "tenant.create", "outcome": "success", "ts": "2026-01-15T14:00:00.000000Z", "details": {"impersonator": "alice"}}
    assert matches(ev, {"action": "tenant.*", "actor": "alice"})  # the impersonator counts as actor
    assert not matches(ev, {"action": "tenant"})
    assert not matches(ev, {"outcome": "denied"})
    assert not matches(ev, {"since": "2026-01-16"})
    assert not matches(ev, {"until": "2026-02-01"})  # a bounded range never grows live


async def test_broken_chain_is_shown_with_the_first_bad_seq(fake_api: FakeEngineApi) -> None:
    fake_api.data["verify"] = {"ok": False, "checked": 56, "first_bad_seq": 57, "reason": "prev_hash does not match", "start_seq": 1, "last_seq": 56, "checkpoints": 0}
    app = MusubiApp(fake_ctx(fake_api))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_admin(pilot, 3)
        await pilot.press("v")
        await settle(pilot)
        line = app.screen.query_one("#audit-verify", Static)
        assert "BROKEN at seq 57" in str(line.render()) and line.has_class("-broken")
        assert any(n.title == "Audit chain" and n.severity == "error" for n in app._notifications)


async def test_filters_reach_the_engine_and_live_events_join_the_table(fake_api: FakeEngineApi) -> None:
    app = MusubiApp(fake_ctx(fake_api))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_admin(pilot, 3)
        pane = app.screen.query_one(AuditPane)
        assert len(pane.events) == 6
        await pilot.press("slash", *"bob", "enter")
        await settle(pilot)
        assert ("/v1/audit", {"actor": "bob", "limit": 200}) in fake_api.reads
        pane.query_one("#f-actor").value = ""  # type: ignore[attr-defined]
        ev = {"tenant_id": "acme", "seq": 7, "ts": "2026-01-15T14:20:00.000000Z", "actor": "carol", "action": "usage.record",
              "resource": "model:m", "outcome": "success", "details": {}, "prev_hash": "", "hash": ""}
        fake_api.queue.put_nowait({"type": "audit", "tenant": "acme", "event": ev})
        fake_api.queue.put_nowait({"type": "audit", "tenant": "other", "event": {**ev, "seq": 99}})
        await wait_for(pilot, lambda: any(e["seq"] == 7 for e in pane.events), "live event in the table")
        assert pane.events[0]["seq"] == 7 and all(e["seq"] != 99 for e in pane.events)


async def test_export_sends_format_path_and_filters(fake_api: FakeEngineApi, tmp_path: Any) -> None:
    app = MusubiApp(fake_ctx(fake_api))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_admin(pilot, 3)
        pane = app.screen.query_one(AuditPane)
        pane.query_one("#f-action").value = "quota.*"  # type: ignore[attr-defined]
        await pilot.press("x")
        await pilot.pause()
        form = app.screen
        form.query_one("#field-format").value = "csv"  # type: ignore[attr-defined]
        form.query_one("#field-path").value = str(tmp_path / "out.jsonl")  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await settle(pilot)
        body = {"format": "csv", "path": str(tmp_path / "out.csv"), "filters": {"action": "quota.*"}, "force": False}
        assert ("POST", "/v1/audit/export", body, None) in fake_api.writes


async def test_removing_a_project_binding_is_confirmed_and_scoped(fake_api: FakeEngineApi) -> None:
    app = MusubiApp(fake_ctx(fake_api))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_admin(pilot, 1)
        await pilot.press("down", "down")  # carol, viewer on project webshop
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")  # cancelling sends nothing
        await settle(pilot)
        assert fake_api.writes == []
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert fake_api.writes == [("DELETE", "/v1/members/carol", None, {"project": "webshop"})]


async def test_suspend_sends_the_reason(fake_api: FakeEngineApi) -> None:
    app = MusubiApp(fake_ctx(fake_api))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_admin(pilot, 0)
        await pilot.press("s")
        await pilot.pause()
        await pilot.press(*"audit", "enter")
        await settle(pilot)
        assert fake_api.writes == [("POST", "/v1/tenants/acme/suspend", {"reason": "audit"}, None)]


async def test_clicking_the_tenant_in_the_status_bar_opens_the_switcher(fake_api: FakeEngineApi) -> None:
    app = MusubiApp(fake_ctx(fake_api))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")
        await pilot.click("#status-bar", offset=(3, 0))
        await pilot.pause()
        assert isinstance(app.screen, TenantPicker)
