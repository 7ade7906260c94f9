"""Screen actions in the palette with their keys, trace export from the TUI, export forms, and permissions
reflected before a form opens (issue 15 items 6, 9 and 10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Select, Static

from tests.tui.conftest import settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.screens.actions import ACTIONS
from tui.screens.admin.forms import FormModal
from tui.screens.bindings import all_bindings


def commands(app: MusubiApp) -> dict[str, Any]:
    return {c.title: c for c in app.get_system_commands(app.screen)}


def notes(app: MusubiApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def start(pilot: Any, *keys: str) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")
    await settle(pilot)
    for k in keys:
        await pilot.press(k)
        await settle(pilot)


def acting_as(api: FakeEngineApi, user: str, role: str) -> FakeEngineApi:
    """The app run by ``user``, a tenant-wide member with ``role``: the fake's whoami and refusals follow."""
    api.data["members"].append({"user": user, "project": None, "role": role, "since": "2026-01-07T09:00:00.000000Z",
                                "added_by": "alice"})
    api.identity.as_user = user
    return api


def as_viewer(api: FakeEngineApi) -> FakeEngineApi:
    return acting_as(api, "vera", "viewer")


def test_every_screen_action_is_in_the_table() -> None:
    """A new binding on a mode screen or admin pane needs a palette description (and its permission)."""
    screens = ("trace_", "search_", "cost_", "admin_", "tenants_", "members_", "quotas_", "audit_")
    missing = [i for i in all_bindings() if i.startswith(screens) and i not in ACTIONS]
    assert not missing


async def test_palette_holds_the_screen_actions_with_their_keys() -> None:
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, "2")
        cmds = commands(app)
        assert cmds["Trace: Review"].help.startswith("v · mark the selected requirement reviewed")
        assert cmds["Trace: Re-scan"].help.startswith("r · ")
        assert cmds["Trace: Export"].help.startswith("s · export the matrix")
        assert cmds["Trace: Reject"].help.startswith("x · ")  # hidden from the footer, not from the palette
        await pilot.press("6")
        await settle(pilot)
        cmds = commands(app)
        assert cmds["Admin ▸ Audit: Verify chain"].help.startswith("v · verify the audit hash chain")
        assert cmds["Admin ▸ Audit: Export"].help.startswith("x · ")
        assert cmds["Admin ▸ Members & roles: Add member"].help.startswith("a · ")
        # Chosen from the Tenants tab, the audit action opens its tab and runs.
        cmds["Admin ▸ Audit: Verify chain"].callback()
        await settle(pilot)
        api = app.ctx.api
        await wait_for(pilot, lambda: any(w[1] == "/v1/audit/verify" for w in api.writes), "verify sent")  # type: ignore[attr-defined]
        assert str(app.screen.query_one("TabbedContent").active) == "audit"  # type: ignore[attr-defined]


async def test_trace_export_writes_the_file_and_the_name_follows_the_format(tmp_path: Path) -> None:
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, "2")
        await wait_for(pilot, lambda: getattr(app.screen, "report", None) is not None, "trace loaded")
        await pilot.press("s")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, FormModal)
        path = form.query_one("#field-path", Input)
        assert path.value == "musubi-trace.html"
        form.query_one("#field-format", Select).value = "csv"
        await settle(pilot)
        assert path.value == "musubi-trace.csv"
        path.value = str(tmp_path / "matrix.csv")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: (tmp_path / "matrix.csv").exists(), "export written")
        text = (tmp_path / "matrix.csv").read_text()
        assert text.startswith("id,title") and "REQ-AUTH-001" in text
        await wait_for(pilot, lambda: any("Wrote the trace matrix (csv)" in n for n in notes(app)), "notified")


async def test_audit_export_file_name_follows_the_format() -> None:
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot, "6", "right_square_bracket", "right_square_bracket", "right_square_bracket", "x")
        form = app.screen
        assert isinstance(form, FormModal)
        path = form.query_one("#field-path", Input)
        assert path.value.endswith(".jsonl")
        form.query_one("#field-format", Select).value = "csv"
        await settle(pilot)
        assert path.value.endswith(".csv") and ".jsonl" not in path.value


async def test_cost_export_file_is_a_value_not_a_placeholder(tmp_path: Path) -> None:
    api = FakeEngineApi()
    api.identity.cwd = str(tmp_path)
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot, "4")
        await wait_for(pilot, lambda: getattr(app.screen, "estimate", None) is not None, "estimate")
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, FormModal)
        await pilot.press("ctrl+s")  # nothing typed: the shown file name is used, not "File: required"
        await wait_for(pilot, lambda: (tmp_path / "musubi-estimate.md").exists(), "estimate written")


async def test_a_viewer_is_refused_before_the_form_and_sees_marks() -> None:
    app = MusubiApp(fake_ctx(as_viewer(FakeEngineApi())))
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot, "6", "right_square_bracket")
        footer = app.screen.query_one("Footer")
        texts = " ".join(str(k.render()) for k in footer.query("FooterKey"))
        assert "✗Add member" in texts and "✗Remove" in texts and "✗Refresh" not in texts
        await pilot.press("a")
        await settle(pilot)
        assert not isinstance(app.screen, FormModal), "refused before the form"
        assert any("vera (viewer) lacks members.manage" in n for n in notes(app))
        assert not [w for w in app.ctx.api.writes if w[1] == "/v1/members"]  # type: ignore[attr-defined]
        cmds = commands(app)
        assert "✗ needs members.manage, which you lack" in cmds["Admin ▸ Members & roles: Add member"].help
        assert "needs" not in cmds["Admin ▸ Members & roles: Refresh"].help


@pytest.mark.parametrize(("tab_presses", "permission"), [(2, "quotas.read"), (3, "audit.read")])
async def test_an_unreadable_tab_names_its_permission_and_keeps_doing_so(tab_presses: int, permission: str) -> None:
    api = acting_as(FakeEngineApi(), "gus", "guest")
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, "6", *["right_square_bracket"] * tab_presses)
        pane = app.screen.query_one(f"#{'quotas' if tab_presses == 2 else 'audit'}-pane")
        banner = pane.query_one(".needs-permission", Static)
        assert banner.display and f"needs {permission}" in str(banner.render())
        await pilot.press("r")  # refresh, then a live identity change: still said
        app.ctx.data_changed.publish("whoami")
        await settle(pilot)
        assert banner.display and f"needs {permission}" in str(banner.render())
        reads = [p for p, _q in api.reads if p in ("/v1/audit", "/v1/usage/history")]
        assert not reads, "nothing fetched that the engine would refuse"


async def test_audit_filters_are_named_once_typed() -> None:
    """The filter fields' placeholders are their only labels: once a value is typed, the title names it."""
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot, "6", "right_square_bracket", "right_square_bracket", "right_square_bracket", "slash")
        await pilot.press(*"bob", "enter")
        await settle(pilot)
        panel = app.screen.query_one("#audit-events-panel")
        await wait_for(pilot, lambda: "filtered: actor bob" in str(panel.border_title), "filter named in the title")


async def test_tenant_actions_are_marked_and_refused_for_a_user_who_is_not_a_system_admin() -> None:
    api = as_viewer(FakeEngineApi())
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot, "6")  # the Tenants tab
        assert app.ctx.whoami is not None and app.ctx.whoami["system_admin"] is False
        footer = app.screen.query_one("Footer")
        texts = " ".join(str(k.render()) for k in footer.query("FooterKey"))
        assert "✗New tenant" in texts and "✗Suspend" in texts and "✗Resume" in texts and "✗Refresh" not in texts
        for key in ("n", "s", "u"):
            await pilot.press(key)
            await settle(pilot)
            assert not isinstance(app.screen, FormModal), f"{key}: refused before the form"
        assert any("vera is not a system administrator" in n for n in notes(app))
        assert not [w for w in api.writes if w[1].startswith("/v1/tenants")]
        help_ = commands(app)["Admin ▸ Tenants: New tenant"].help
        assert "✗ needs tenant.manage in tenant default, which you lack" in help_


async def test_a_system_admin_gets_the_tenant_form() -> None:
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(120, 40)) as pilot:
        await start(pilot, "6")
        texts = " ".join(str(k.render()) for k in app.screen.query_one("Footer").query("FooterKey"))
        assert "New tenant" in texts and "✗New tenant" not in texts
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, FormModal)
