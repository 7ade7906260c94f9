"""Trace's header with the engine gone (issue 15 item 8): a short sentence, not the transport's text,
and no longer there once the engine is back."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from core.errors import EngineUnavailable
from tests.tui.conftest import settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.context import ConnState

RAW = ("engine not reachable: Cannot connect to unix socket /tmp/mh1/engine.sock ssl:default "
       "[No such file or directory]")


class TraceFails(FakeEngineApi):
    def __init__(self) -> None:
        super().__init__()
        self.fail_trace = False

    async def _send(self, method: str, path: str, body: dict[str, Any] | None, query: dict[str, Any] | None) -> Any:
        if self.fail_trace and path.startswith("/v1/trace"):
            raise EngineUnavailable(RAW)
        return await super()._send(method, path, body, query)


def header(app: MusubiApp) -> str:
    return str(app.screen.query_one("#trace-header", Static).render())


async def test_header_says_engine_gone_in_words_and_forgets_it_after_the_reconnect() -> None:
    api = TraceFails()
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")
        api.fail_trace = True
        await pilot.press("2")
        await settle(pilot)
        text = header(app)
        assert "engine not reachable" in text
        assert "ssl:default" not in text and "unix socket" not in text and "\n" not in text.strip()
        # The engine comes back: the header no longer claims it is gone, and the matrix loads.
        api.fail_trace = False
        app.ctx.set_conn(ConnState("reconnecting", "lost"))
        app.ctx.set_conn(ConnState("connected"))
        await settle(pilot)
        await wait_for(pilot, lambda: getattr(app.screen, "report", None) is not None, "matrix loaded")
        await settle(pilot)
        assert "not reachable" not in header(app) and "requirements" in header(app)
        # A re-scan failing later says so in short words, and the reconnect clears it at once.
        api.fail_trace = True
        await pilot.press("r")
        await settle(pilot)
        assert "last re-scan failed: engine not reachable" in header(app) and "ssl" not in header(app)
        api.fail_trace = False
        app.ctx.set_conn(ConnState("connected"))
        await settle(pilot)
        assert "failed" not in header(app)


async def test_a_user_who_cannot_read_specs_is_told_which_permission_and_it_stays() -> None:
    api = FakeEngineApi()
    api.denied.add(("GET", "/v1/trace"))
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")
        await pilot.press("2")
        await settle(pilot)
        details = str(app.screen.query_one("#trace-details", Static).render())
        assert "this screen needs x, which you lack" in header(app)  # the fake names permission 'x'
        assert "Nothing to trace" not in details and "musubi member add alice --role ROLE" in details
        await pilot.press("r")
        await settle(pilot)
        await pilot.pause(3.5)  # a poll interval: nothing replaces the notice
        assert "this screen needs x" in header(app)
