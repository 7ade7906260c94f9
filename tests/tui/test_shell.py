"""Pilot tests of the shell against the fake engine: modes, keys, palette, help, debug, quit, reconnect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from rich.color import ColorSystem
from textual.pilot import Pilot
from textual.widgets import Input

from tests.tui.conftest import open_admin_tab, settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.config import EngineSettings, Settings, config_path, load_settings
from tui.context import AppContext
from tui.screens.cost import CostScreen
from tui.screens.debug import DebugScreen
from tui.screens.help import HelpScreen
from tui.screens.modals import ConfirmModal
from tui.screens.trace import TraceScreen
from tui.screens.tutorials import TutorialsScreen
from tui.widgets.mode_bar import ModeBar
from tui.widgets.status_bar import render_status


def notes(app: MusubiApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications]


async def connected(pilot: Pilot[object], ctx: AppContext) -> None:
    await wait_for(pilot, lambda: ctx.conn.name == "connected", "engine connected")
    await settle(pilot)


async def mode_after(pilot: Pilot[object], key: str) -> str:
    """Press ``key`` and return the mode the app is in once it settled."""
    await pilot.press(key)
    await settle(pilot)
    return str(pilot.app.current_mode)


@asynccontextmanager
async def running(api: FakeEngineApi, size: tuple[int, int], **ctx_args: Any) -> AsyncIterator[tuple[MusubiApp, AppContext, Pilot[object]]]:
    """The app on the fake engine at ``size``, connected and settled."""
    ctx = fake_ctx(api, **ctx_args)
    app = MusubiApp(ctx)
    async with app.run_test(size=size) as pilot:
        await connected(pilot, ctx)
        yield app, ctx, pilot


async def test_status_bar_shows_tenant_user_project_engine_and_tightest_quota(fake_api: FakeEngineApi) -> None:
    async with running(fake_api, (120, 40)) as (app, ctx, pilot):
        text = str(render_status(ctx, 120))
        assert "tenant acme" in text and "user alice" in text and "project webshop" in text
        assert "● engine connected" in text
        # requests/hour at 91% with an alert at 90% is the tightest: a word as well as colour.
        assert "requests/hour 9% left NEAR" in text


async def test_modes_switch_by_function_keys_and_digits(fake_api: FakeEngineApi) -> None:
    async with running(fake_api, (80, 24)) as (app, ctx, pilot):
        for key, mode, screen_type in (("f3", "trace", TraceScreen), ("4", "cost", CostScreen), ("5", "tutorials", TutorialsScreen)):
            assert await mode_after(pilot, key) == mode
            assert isinstance(app.screen, screen_type)
            assert app.screen.query_one(ModeBar).current == mode
        assert await mode_after(pilot, "f7") == "admin"
        assert await mode_after(pilot, "1") == "dashboard"


async def test_digits_type_into_a_focused_input_instead_of_switching(fake_api: FakeEngineApi) -> None:
    async with running(fake_api, (120, 40)) as (app, ctx, pilot):
        await pilot.press("6")
        await settle(pilot)
        for _ in range(3):
            await pilot.press("right_square_bracket")
        await settle(pilot)
        await pilot.press("slash")  # focus the audit filters
        await pilot.press("1", "q", "colon", "question_mark")  # mode, quit, palette, help keys elsewhere
        await pilot.pause()
        assert app.current_mode == "admin"
        assert app.is_running and app.screen is app.screen_stack[0]
        focused = app.screen.focused
        assert isinstance(focused, Input) and focused.value == "1q:?"


async def test_second_keys_open_help_and_palette(fake_api: FakeEngineApi) -> None:
    async with running(fake_api, (100, 30)) as (app, _ctx, pilot):
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "colon")
        await pilot.pause()
        assert type(app.screen).__name__ == "CommandPalette"


async def test_every_mode_is_in_the_command_palette(fake_api: FakeEngineApi) -> None:
    async with running(fake_api, (100, 30)) as (app, ctx, pilot):
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Dashboard", "Trace", "Search", "Cost", "Tutorials", "Admin", "Switch tenant", "Debug info"} <= titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Tutorials")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode == "tutorials"


async def test_palette_says_what_each_mode_is(fake_api: FakeEngineApi) -> None:
    """Issue 15 item 6: Trace is not "agent runs", Cost is not "spend by user"; Search (built in issue 11) says what it does."""
    async with running(fake_api, (100, 30)) as (app, ctx, pilot):
        helps = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert "headroom" in helps["Dashboard"]
        assert "requirement → design → task → code → test" in helps["Trace"]
        assert "estimates" in helps["Cost"] and "spend" not in helps["Cost"]
        assert "code search" in helps["Search"] and "not built yet" not in helps["Search"]
        assert "guided lessons" in helps["Tutorials"] and "not built yet" not in helps["Tutorials"]
        assert all(w in helps["Admin"] for w in ("tenants", "members", "roles", "quotas", "audit"))


async def test_keys_remapped_in_config_file(fake_api: FakeEngineApi) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('[keymap]\nmode_admin = "f9"\nmode_trace = "f3,t"\n')
    ctx = fake_ctx(fake_api, settings=load_settings())
    app = MusubiApp(ctx)
    async with app.run_test(size=(100, 30)) as pilot:
        await connected(pilot, ctx)
        assert await mode_after(pilot, "f7") == "dashboard"  # no longer bound
        assert await mode_after(pilot, "f9") == "admin"
        assert await mode_after(pilot, "t") == "trace"
        await pilot.press("f1")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        rows = {r.binding_id: r.keys for r in help_screen._rows}
        assert rows["mode_admin"] == "f9"


async def test_unknown_keymap_id_is_named_in_a_warning(fake_api: FakeEngineApi) -> None:
    ctx = fake_ctx(fake_api, settings=Settings(keymap={"mode_admn": "f9"}))
    app = MusubiApp(ctx)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: any("mode_admn" in n for n in notes(app)), "keymap warning")


async def test_f1_help_names_the_focused_widget_and_lists_binding_ids(fake_api: FakeEngineApi) -> None:
    async with running(fake_api, (120, 40)) as (app, ctx, pilot):
        await pilot.press("6")
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, HelpScreen)
        assert screen._widget_name == "the table 'tenants table' in the Tenants panel"  # words, not a class name
        assert "suspend" in screen._widget_md
        ids = {r.binding_id for r in screen._rows}
        assert {"tenants_create", "tenants_suspend", "help", "mode_dashboard", "quit"} <= ids
        await pilot.press("6")  # mode keys are off under a dialog
        await pilot.press("escape")
        await pilot.pause()
        assert app.current_mode == "admin" and not isinstance(app.screen, HelpScreen)


async def test_f12_debug_info_and_osc52_copy(fake_api: FakeEngineApi) -> None:
    async with running(fake_api, (80, 24), color="256") as (app, ctx, pilot):
        await pilot.press("f12")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DebugScreen)
        for fact in ("/tmp/musubi-snap-home", "engine.sock", "4242", "80×24", "256 (test)", "textual", "8.2.8"):
            assert fact in screen.text
        await pilot.press("c")
        await pilot.pause()
        assert app.clipboard == screen.text


async def test_quit_is_immediate_when_idle(fake_api: FakeEngineApi) -> None:
    async with running(fake_api, (80, 24)) as (app, ctx, pilot):
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0 and not app.is_running


async def test_quit_asks_first_while_a_change_is_on_its_way(fake_api: FakeEngineApi) -> None:
    async with running(fake_api, (100, 30)) as (app, ctx, pilot):
        await pilot.press("6")
        await settle(pilot)
        fake_api.hold.clear()  # the engine "takes its time" with the next write
        await pilot.press("n")
        await pilot.pause()
        await pilot.press(*"newco", "enter")
        await wait_for(pilot, lambda: app.running_work(), "write in flight")
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running
        fake_api.hold.set()
        await settle(pilot)
        assert ("POST", "/v1/tenants", {"name": "newco"}, None) in fake_api.writes
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_lost_engine_keeps_running_says_so_and_resumes_live_updates(fake_api: FakeEngineApi) -> None:
    settings = Settings(engine=EngineSettings(retry_initial_s=0.05, retry_max_s=0.2))
    async with running(fake_api, (120, 40), settings=settings) as (app, ctx, pilot):
        fake_api.set_down(True)
        await wait_for(pilot, lambda: ctx.conn.name == "reconnecting", "reconnecting state")
        assert "not running" in ctx.conn.reason
        assert "↻ engine reconnecting" in str(render_status(ctx, 120))
        assert any("Engine connection lost" in n for n in notes(app))
        fake_api.set_down(False)
        await wait_for(pilot, lambda: ctx.conn.name == "connected", "reconnected")
        await wait_for(pilot, lambda: any("Reconnected" in n for n in notes(app)), "reconnect notice")
        await pilot.pause(0.1)
        fake_api.queue.put_nowait({"type": "quota.alert", "tenant": "acme", "metric": "tokens", "period": "day",
                                   "user": None, "threshold": 0.8, "used": 80000, "limit": 100000})
        await wait_for(pilot, lambda: any("Quota alert" in n for n in notes(app)), "alert from the resumed stream")


async def test_a_refused_action_is_a_notification_not_a_crash(fake_api: FakeEngineApi) -> None:
    fake_api.denied.add(("PUT", "/v1/quotas"))
    async with running(fake_api, (120, 40)) as (app, ctx, pilot):
        await open_admin_tab(pilot, "quotas")
        await pilot.press("e")
        await settle(pilot)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any(n.startswith("Permission denied") for n in notes(app)), "the refusal")
        assert app.is_running and app.current_mode == "admin"


async def test_f10_maximises_the_focused_panel_and_restores_it(fake_api: FakeEngineApi) -> None:
    async with running(fake_api, (80, 24)) as (app, ctx, pilot):
        await pilot.press("6")
        await settle(pilot)
        await pilot.press("f10")
        await pilot.pause()
        assert app.screen.maximized is not None and app.screen.maximized.id == "tenants-panel"
        await pilot.press("f10")
        await pilot.pause()
        assert app.screen.maximized is None


async def test_f8_switches_tenant_and_reloads(fake_api: FakeEngineApi) -> None:
    async with running(fake_api, (100, 30)) as (app, ctx, pilot):
        starts = fake_api.starts
        await pilot.press("f8")
        await settle(pilot)
        await pilot.press("down", "enter")  # acme is highlighted; the next one is default
        await pilot.pause()
        assert fake_api.identity.tenant == "default"
        await wait_for(pilot, lambda: fake_api.starts > starts and ctx.conn.name == "connected", "relinked")


async def test_layout_breakpoints_follow_the_terminal_width(fake_api: FakeEngineApi) -> None:
    for size, cls in (((80, 24), "-narrow"), ((120, 40), "-wide"), ((160, 50), "-xwide")):
        app = MusubiApp(fake_ctx(FakeEngineApi()))
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            assert app.screen.has_class(cls), (size, app.screen.classes)


async def test_colour_system_is_applied(fake_api: FakeEngineApi) -> None:
    expected = {"truecolor": ColorSystem.TRUECOLOR, "256": ColorSystem.EIGHT_BIT, "16": ColorSystem.STANDARD}
    for system, color_system in expected.items():
        app = MusubiApp(fake_ctx(FakeEngineApi(), color=system))
        assert app.console._color_system == color_system and not app.no_color
    assert MusubiApp(fake_ctx(FakeEngineApi(), color="16")).theme == "ansi-dark"
    assert MusubiApp(fake_ctx(FakeEngineApi(), color="none")).no_color
