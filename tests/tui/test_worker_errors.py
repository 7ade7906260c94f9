"""The worker contract (tui/workers.py): a failed engine call, typed or not, is never silent.

Each mode screen's workers are driven with Pilot against a fake engine that raises a
plain Python exception (not a MusubiError) from one route: the user must see a
notification naming the failure, the F12 debug info must list it, and the app must stay up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Tree

from core.errors import PermissionDenied
from tests.tui.conftest import settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tests.tui.test_admin_fake import open_admin
from tui.app import MusubiApp
from tui.screens.debug import DebugScreen


class BrokenApi(FakeEngineApi):
    """The fake engine, except that the routes in ``broken`` raise the exception given for them."""

    def __init__(self, broken: dict[tuple[str, str], BaseException]) -> None:
        super().__init__()
        self.broken = broken

    async def _send(self, method: str, path: str, body: dict[str, Any] | None, query: dict[str, Any] | None) -> Any:
        if (method, path) in self.broken:
            raise self.broken[method, path]
        return await super()._send(method, path, body, query)


def notes(app: MusubiApp) -> list[str]:
    return [f"{n.title}: {n.message}" for n in app._notifications if n.severity == "error"]


async def wait_note(pilot: Pilot[Any], app: MusubiApp, expected: str) -> None:
    await wait_for(pilot, lambda: expected in notes(app), f"notification {expected!r} (have {notes(app)})")


async def debug_text(pilot: Pilot[Any], app: MusubiApp) -> str:
    """Open F12, read its text, close it again."""
    await pilot.press("f12")
    await wait_for(pilot, lambda: isinstance(app.screen, DebugScreen), "debug screen")
    text = app.screen.text if isinstance(app.screen, DebugScreen) else ""
    await pilot.press("escape")
    await settle(pilot)
    return text


async def assert_logged_and_alive(pilot: Pilot[Any], app: MusubiApp, title: str, message: str) -> None:
    text = await debug_text(pilot, app)
    assert f"{title} — {message}" in text, text
    assert app.is_running and app.return_code is None
    assert app.crash is None


async def connected(pilot: Pilot[Any], app: MusubiApp) -> None:
    await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "fake engine connected")
    await settle(pilot)


async def test_dashboard_tenant_details_failure_is_notified_and_logged() -> None:
    api = BrokenApi({("GET", "/v1/tenants/acme"): RuntimeError("disk on fire")})
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(120, 40)) as pilot:
        await connected(pilot, app)
        await wait_note(pilot, app, "Tenant details: RuntimeError: disk on fire")
        await assert_logged_and_alive(pilot, app, "Tenant details", "RuntimeError: disk on fire")
        assert type(app.screen).__name__ == "DashboardScreen"


async def test_debug_info_says_when_nothing_failed(fake_api: FakeEngineApi) -> None:
    app = MusubiApp(fake_ctx(fake_api))
    async with app.run_test(size=(120, 40)) as pilot:
        await connected(pilot, app)
        assert "failures        none in this run" in await debug_text(pilot, app)


async def test_tenant_picker_failure_is_notified_logged_and_closes_the_picker() -> None:
    api = BrokenApi({("GET", "/v1/tenants"): KeyError("name")})
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(120, 40)) as pilot:
        await connected(pilot, app)
        await pilot.press("f8")
        await wait_note(pilot, app, "Cannot list tenants: KeyError: 'name'")
        # The picker had nothing to offer: it closed instead of spinning for ever.
        await wait_for(pilot, lambda: type(app.screen).__name__ == "DashboardScreen", "picker dismissed")
        await assert_logged_and_alive(pilot, app, "Cannot list tenants", "KeyError: 'name'")
        assert app.ctx.tenant == "acme"


async def open_trace(pilot: Pilot[Any], app: MusubiApp, loaded: Callable[[Any], bool]) -> Any:
    await connected(pilot, app)
    await pilot.press("2")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "TraceScreen", "trace screen")
    screen = app.screen
    await wait_for(pilot, lambda: loaded(screen), "trace load finished")
    await settle(pilot)
    return screen


async def test_trace_load_failure_is_shown_in_place_notified_and_logged() -> None:
    api = BrokenApi({("GET", "/v1/trace"): RuntimeError("scanner crashed")})
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_trace(pilot, app, lambda s: "scanner crashed" in str(s.query_one("#trace-header").render()))
        await wait_note(pilot, app, "Trace: RuntimeError: scanner crashed")
        await assert_logged_and_alive(pilot, app, "Trace", "RuntimeError: scanner crashed")


@pytest.mark.parametrize(("route", "error", "key", "title", "message"), [
    (("GET", "/v1/trace/impact/REQ-AUTH-001"), KeyError("targets"), "i", "Impact", "KeyError: 'targets'"),
    # A typed refusal the worker catches itself reaches the same notification and log.
    (("POST", "/v1/trace/review"), PermissionDenied("alice lacks trace.review.", permission="trace.review"), "v",
     "Review", "alice lacks trace.review."),
])
async def test_trace_action_failure_is_notified_and_logged(
    route: tuple[str, str], error: Exception, key: str, title: str, message: str
) -> None:
    app = MusubiApp(fake_ctx(BrokenApi({route: error})))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_trace(pilot, app, lambda s: s.report is not None)
        screen.query_one("#trace-tree", Tree).focus()
        await pilot.press("home", key)
        await wait_note(pilot, app, f"{title}: {message}")
        await assert_logged_and_alive(pilot, app, title, message)


async def test_cost_estimate_failure_is_notified_and_logged() -> None:
    api = BrokenApi({("POST", "/v1/cost/estimate"): RuntimeError("tokenizer exploded")})
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(120, 40)) as pilot:
        await connected(pilot, app)
        await pilot.press("4")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CostScreen", "cost screen")
        await wait_note(pilot, app, "Estimate: RuntimeError: tokenizer exploded")
        await assert_logged_and_alive(pilot, app, "Estimate", "RuntimeError: tokenizer exploded")
        assert type(app.screen).__name__ == "CostScreen"


async def test_cost_export_thread_failure_is_notified_and_logged(monkeypatch: Any) -> None:
    import tui.screens.cost as cost

    def broken_render(est: dict[str, Any], fmt: str) -> str:
        raise ValueError(f"no renderer for {fmt}")

    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(120, 40)) as pilot:
        await connected(pilot, app)
        await pilot.press("4")
        await wait_for(pilot, lambda: getattr(app.screen, "estimate", None) is not None, "first estimate")
        monkeypatch.setattr(cost, "render", broken_render)
        screen: Any = app.screen
        screen.write_export(screen.estimate, "csv", "out.csv")
        await wait_note(pilot, app, "Export failed: ValueError: no renderer for csv")
        await assert_logged_and_alive(pilot, app, "Export failed", "ValueError: no renderer for csv")


@pytest.mark.parametrize(("route", "tabs", "pane"), [
    (("GET", "/v1/tenants"), 0, "TenantsPane"),
    (("GET", "/v1/members"), 1, "MembersPane"),
    (("GET", "/v1/usage/history"), 2, "QuotasPane"),
    (("GET", "/v1/audit"), 3, "AuditPane"),
])
async def test_admin_fetch_failure_is_notified_and_logged(route: tuple[str, str], tabs: int, pane: str) -> None:
    """An Admin pane's fetch that dies of a non-Musubi exception is shown and listed in F12; the app stays up."""
    app = MusubiApp(fake_ctx(BrokenApi({route: RuntimeError("disk on fire")})))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_admin(pilot, tabs)
        await wait_note(pilot, app, "Unexpected error: RuntimeError: disk on fire")
        text = await debug_text(pilot, app)
        assert pane in text and "Unexpected error — RuntimeError: disk on fire" in text, text
        await assert_logged_and_alive(pilot, app, "Unexpected error", "RuntimeError: disk on fire")


async def test_admin_write_refusal_is_notified_and_logged_with_what_failed() -> None:
    denied = PermissionDenied("permission denied: alice lacks 'audit.read'.", permission="audit.read")
    app = MusubiApp(fake_ctx(BrokenApi({("POST", "/v1/audit/verify"): denied})))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_admin(pilot, 3)
        await pilot.press("v")
        await wait_note(pilot, app, "Permission denied: permission denied: alice lacks 'audit.read'.")
        text = await debug_text(pilot, app)
        assert "AuditPane (verify the audit chain): Permission denied — permission denied: alice lacks" in text, text
