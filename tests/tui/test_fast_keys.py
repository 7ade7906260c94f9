"""Keys typed quickly right after a mode switch reach the app: no screen hands focus to a text input by itself.

Issue 15 item 7: the first key after the first visit to Trace was lost (``2 3`` typed quickly stayed on
Trace) because the filter input took focus when the screen mounted, before its data arrived, and
swallowed the digit.  Here every screen's data is held back while the second key is pressed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual.widgets import Input

from tests.tui.conftest import settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.screens.modes import BY_NAME, MODES


class SlowReads(FakeEngineApi):
    """Reads wait for ``gate`` once connected: the screens are drawn but their data has not arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()

    async def _request(self, method: str, path: str, body: dict[str, Any] | None, query: dict[str, Any] | None) -> Any:
        await self.gate.wait()
        return await super()._request(method, path, body, query)


SCREENS = [m.name for m in MODES if m.name != "dashboard"]


@pytest.mark.parametrize("screen", SCREENS)
async def test_digit_right_after_a_switch_switches_again(screen: str) -> None:
    api = SlowReads()
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "fake engine connected")
        await settle(pilot)
        api.gate.clear()  # the screen's data is on its way
        await pilot.press(BY_NAME[screen].digit)
        assert app.current_mode == screen
        assert not isinstance(app.screen.focused, Input), f"{screen}: {app.screen.focused!r} took the focus"
        await pilot.press("1")
        assert app.current_mode == "dashboard", f"the digit after {screen} was lost"
        api.gate.set()
        await settle(pilot)
        # Once the data arrived, a second visit still leaves the keys to the app.
        await pilot.press(BY_NAME[screen].digit)
        await settle(pilot)
        assert not isinstance(app.screen.focused, Input), f"{screen}: {app.screen.focused!r} has focus"
        await pilot.press("1")
        assert app.current_mode == "dashboard"
