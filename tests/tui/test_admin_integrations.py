"""Admin ▸ Integrations by keys: set a setting, store a secret (hidden, never shown back), test the connection."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, Input

from tests.tui.conftest import settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tests.tui.test_actions import as_viewer
from tests.tui.test_admin_engine import submit_form
from tui.app import MusubiApp
from tui.screens.admin.forms import FormModal
from tui.screens.admin.integrations import IntegrationsPane

TAB = 5  # ] presses from Tenants
SECRET = "xoxb-1-SECRETsecretSECRET"


async def open_integrations(pilot: Any) -> IntegrationsPane:
    await wait_for(pilot, lambda: pilot.app.ctx.conn.name == "connected", "connected")
    await pilot.press("6")
    await settle(pilot)
    for _ in range(TAB):
        await pilot.press("right_square_bracket")
        await settle(pilot)
    return pilot.app.screen.query_one(IntegrationsPane)


async def select(pilot: Any, pane: IntegrationsPane, system: str) -> None:
    await wait_for(pilot, lambda: bool(pane.rows), "integrations listed")
    table = pane.query_one(DataTable)
    table.focus()
    table.move_cursor(row=[r["system"] for r in pane.rows].index(system))
    await pilot.pause()


def slack_row(pane: IntegrationsPane) -> dict[str, Any]:
    return dict(next(r for r in pane.rows if r["system"] == "slack"))


async def test_set_store_a_secret_and_test_on_the_fake(fake_api: FakeEngineApi) -> None:
    app = MusubiApp(fake_ctx(fake_api))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await open_integrations(pilot)
        await select(pilot, pane, "slack")
        await pilot.press("e")
        await pilot.pause()
        await submit_form(pilot, app, name="channel", value="C0123")
        await wait_for(pilot, lambda: slack_row(pane)["settings"] == {"channel": "C0123"}, "setting shown")

        await pilot.press("s")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, FormModal)
        assert form.query_one("#field-secret", Input).password  # typed masked
        await submit_form(pilot, app, name="token", secret=SECRET)
        await wait_for(pilot, lambda: slack_row(pane)["secrets"] == ["token"], "secret name listed")
        assert fake_api.data["integrations"]["slack"]["secrets"] == {"token": SECRET}  # sent once
        shown = " ".join(str(c) for row in range(pane.query_one(DataTable).row_count)
                         for c in pane.query_one(DataTable).get_row_at(row))
        assert SECRET not in shown and "token" in shown  # never shown back

        await pilot.press("t")
        await wait_for(pilot, lambda: any("connected as Musubi Bot" in n.message for n in app._notifications),
                       "test ok")
        fake_api.data["integration_refusal"] = "slack: auth.test answered ok:false, error invalid_auth"
        await pilot.press("t")
        await wait_for(pilot, lambda: any("error invalid_auth" in n.message for n in app._notifications),
                       "the vendor's own text")


async def test_a_secret_name_as_a_setting_is_refused_and_nothing_changes(fake_api: FakeEngineApi) -> None:
    app = MusubiApp(fake_ctx(fake_api))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await open_integrations(pilot)
        await select(pilot, pane, "slack")
        await pilot.press("e")
        await pilot.pause()
        await submit_form(pilot, app, name="token", value="xoxb-oops")
        await wait_for(pilot, lambda: any("is a secret" in n.message for n in app._notifications), "refused")
        assert "slack" not in fake_api.data.get("integrations", {})


async def test_a_viewer_is_told_what_the_tab_needs() -> None:
    api = as_viewer(FakeEngineApi())
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await open_integrations(pilot)
        banner = pane.query_one(".needs-permission")
        await wait_for(pilot, lambda: "needs integrations.manage" in str(banner.render()), "the tab says so")
        for key in ("e", "s", "t"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, FormModal)
        assert any("lacks integrations.manage" in n.message for n in app._notifications)
        assert not api.data.get("integrations")
