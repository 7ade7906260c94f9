"""Admin ▸ SSO by keys: map a group, remove the rule, set the policy; on the fake and on a real engine."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from core.client import EngineClient
from core.paths import HomePaths
from tests.tui.conftest import settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tests.tui.test_actions import as_viewer
from tests.tui.test_admin_engine import engine_eventually, real_app, submit_form
from tui.app import MusubiApp
from tui.screens.admin.forms import FormModal
from tui.screens.admin.sso import SsoPane
from tui.screens.modals import ConfirmModal

SSO_TAB = 4  # ] presses from Tenants


async def open_sso(pilot: Any) -> SsoPane:
    await wait_for(pilot, lambda: pilot.app.ctx.conn.name == "connected", "connected")
    await pilot.press("6")
    await settle(pilot)
    for _ in range(SSO_TAB):
        await pilot.press("right_square_bracket")
        await settle(pilot)
    return pilot.app.screen.query_one(SsoPane)


async def test_map_unmap_and_policy_on_the_fake(fake_api: FakeEngineApi) -> None:
    app = MusubiApp(fake_ctx(fake_api))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await open_sso(pilot)
        await wait_for(pilot, lambda: pane.policy is not None, "policy loaded")
        assert "SSO required: no" in str(pane.query_one("#sso-policy", Static).render())
        await pilot.press("a")
        await pilot.pause()
        await submit_form(pilot, app, value="grp-dev", role="member")
        await wait_for(pilot, lambda: [r["value"] for r in pane.rules] == ["grp-dev"], "rule in the table")
        assert fake_api.data["sso_rules"][0]["role"] == "member"
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await wait_for(pilot, lambda: pane.rules == [], "rule removed")
        await pilot.press("p")
        await pilot.pause()
        await submit_form(pilot, app, required="yes", break_glass="alice")
        await wait_for(pilot, lambda: bool(pane.policy and pane.policy["sso_required"]), "policy on")
        assert "break-glass owner: alice" in str(pane.query_one("#sso-policy", Static).render())


async def test_a_viewer_is_told_what_the_tab_needs() -> None:
    api = as_viewer(FakeEngineApi())
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await open_sso(pilot)
        banner = pane.query_one(".needs-permission", Static)
        await wait_for(pilot, lambda: "needs members.manage" in str(banner.render()), "the tab says what it needs")
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, FormModal)  # refused before the form
        assert any("lacks members.manage" in n.message for n in app._notifications)
        assert not api.data.get("sso_rules")


async def test_map_a_group_on_a_real_engine(engine_home: HomePaths) -> None:
    client = EngineClient(engine_home, autostart=False)
    app, _ctx = real_app(engine_home)
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await open_sso(pilot)
        await pilot.press("a")
        await pilot.pause()
        await submit_form(pilot, app, value="Admins", claim="roles", role="admin")
        want = [("roles", "Admins", "admin")]
        await engine_eventually(pilot, lambda: client.get("/v1/sso/rules"),
                                lambda rs: [(r["claim"], r["value"], r["role"]) for r in rs] == want,
                                "the rule in the engine")
        await wait_for(pilot, lambda: len(pane.rules) == 1, "the rule in the table")
        await pilot.press("p")
        await pilot.pause()
        await submit_form(pilot, app, required="yes")  # no break-glass, not signed in: the engine refuses
        await wait_for(pilot, lambda: any("lock you out" in n.message for n in app._notifications), "refusal shown")
        assert client.get("/v1/sso/policy")["sso_required"] is False
