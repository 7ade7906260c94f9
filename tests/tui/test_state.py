"""Context kept across relaunches (issue 15 item 11): mode, tenant, filters, selections and tabs in a
small state file per user and home; a corrupt file is ignored with a warning; --fresh ignores it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.tui.conftest import open_admin_tab, settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.state import SavedState, state_path
from tui.widgets.checklist import CheckList


def app_with(path: Path, fresh: bool = False) -> MusubiApp:
    ctx = fake_ctx(FakeEngineApi())
    ctx.saved = SavedState(path, fresh=fresh)
    return MusubiApp(ctx)


async def connected(pilot: Any) -> None:
    await wait_for(pilot, lambda: pilot.app.ctx.conn.name == "connected", "connected")
    await settle(pilot)


async def test_mode_filters_selection_and_tab_come_back_after_a_relaunch(tmp_path: Path) -> None:
    path = state_path(tmp_path, "alice")
    app = app_with(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await connected(pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: getattr(app.screen, "report", None) is not None, "trace loaded")
        await pilot.press("u", "down")
        await settle(pilot)
        trace = app.screen
        want = (trace.uncovered_only, trace.status, trace._selected()[0]["id"])  # type: ignore[attr-defined,index]
        await pilot.press("4")
        await settle(pilot)
        sl = app.screen.query_one("#cost-models", CheckList)
        await wait_for(pilot, lambda: sl.option_count > 0, "models")
        sl.deselect_all()
        sl.select("gpt-6-astra")
        await settle(pilot)
        await open_admin_tab(pilot, "quotas")
    saved = json.loads(path.read_text())
    assert saved["sections"]["app"]["mode"] == "admin" and saved["sections"]["admin"]["tab"] == "quotas"

    app = app_with(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await connected(pilot)
        await wait_for(pilot, lambda: app.current_mode == "admin", "back in Admin")
        await settle(pilot)
        assert str(app.screen.query_one("TabbedContent").active) == "quotas"  # type: ignore[attr-defined]
        await pilot.press("2")
        await wait_for(pilot, lambda: getattr(app.screen, "report", None) is not None, "trace loaded")
        await settle(pilot)
        trace = app.screen
        assert (trace.uncovered_only, trace.status, trace._selected()[0]["id"]) == want  # type: ignore[attr-defined,index]
        await pilot.press("4")
        await settle(pilot)
        sl = app.screen.query_one("#cost-models", CheckList)
        await wait_for(pilot, lambda: sl.option_count > 0, "models")
        await settle(pilot)
        assert sl.selected == ["gpt-6-astra"]


async def test_fresh_ignores_the_saved_context(tmp_path: Path) -> None:
    path = state_path(tmp_path, "alice")
    path.parent.mkdir(parents=True)
    sections = {"app": {"mode": "admin"}, "trace": {"uncovered_only": True}}
    path.write_text(json.dumps({"version": 1, "sections": sections}))
    app = app_with(path, fresh=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot)
        assert app.current_mode == "dashboard"
        await pilot.press("2")
        await settle(pilot)
        assert app.screen.uncovered_only is False  # type: ignore[attr-defined]


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"sections": {"app": 3}}'])
async def test_a_corrupt_file_is_ignored_with_a_warning(tmp_path: Path, content: str) -> None:
    path = state_path(tmp_path, "alice")
    path.parent.mkdir(parents=True)
    path.write_text(content)
    app = app_with(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await connected(pilot)
        assert app.current_mode == "dashboard"
        assert any(n.title == "Saved context" and "starting fresh" in n.message for n in app._notifications)
    assert json.loads(path.read_text())["version"] == 1  # replaced by a good file on the way out


def test_state_file_is_per_user_and_home_and_written_atomically(tmp_path: Path) -> None:
    a, b = state_path(tmp_path / "h1", "alice"), state_path(tmp_path / "h1", "bob/../x")
    assert a != b and b.parent == a.parent and "/" not in b.name
    s = SavedState(a)
    s.update("app", mode="trace")
    assert s.save() is None
    assert SavedState(a).section("app") == {"mode": "trace"}
    assert [p.name for p in a.parent.iterdir()] == [a.name]  # no temporary file left behind
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    s = SavedState(state_path(blocked, "alice"))  # its folder would have to be inside a file
    s.update("app", mode="cost")
    reason = s.save()
    assert reason is not None and "cannot save" in reason  # a reason, not an exception


def test_run_restores_the_tenant_and_fresh_ignores_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import tui.app
    import tui.cli

    home = tmp_path / "h"
    path = state_path(home, "alice")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 1, "sections": {"app": {"mode": "trace", "tenant": "acme"}}}))
    seen: list[MusubiApp] = []
    monkeypatch.setattr(tui.app, "run_app", lambda app: seen.append(app) or 0)
    assert tui.app.run(home=str(home), as_user="alice") == 0
    assert seen[-1].ctx.api.identity.tenant == "acme" and seen[-1].ctx.saved.section("app")["mode"] == "trace"
    assert tui.app.run(home=str(home), tenant="other", as_user="alice") == 0
    assert seen[-1].ctx.api.identity.tenant == "other"  # an explicit tenant wins over the saved one
    assert tui.cli.run(["--home", str(home), "--as", "alice", "--fresh"]) == 0
    assert seen[-1].ctx.saved.data == {} and seen[-1].ctx.api.identity.tenant != "acme"
