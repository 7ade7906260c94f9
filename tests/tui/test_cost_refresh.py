"""Cost re-estimates when the quotas change, not on every periodic re-read of them.

The status bar re-reads ``/v1/quotas`` every ``poll_s``; each read used to restart the estimate, so a
snapshot taken after a slow test's 15 s showed ``estimating…`` (or cancelled the worker it waited on)."""

from __future__ import annotations

from typing import Any

from tests.tui.conftest import settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp


def counting_estimates(api: FakeEngineApi) -> list[int]:
    count = [0]
    send = api._send

    async def counted(method: str, path: str, body: dict[str, Any] | None, query: dict[str, Any] | None) -> Any:
        if path == "/v1/cost/estimate":
            count[0] += 1
        return await send(method, path, body, query)

    api._send = counted  # type: ignore[method-assign]
    return count


async def test_an_unchanged_quota_reread_does_not_re_estimate() -> None:
    api = FakeEngineApi()
    estimates = counting_estimates(api)
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(150, 40)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")
        await pilot.press("4")
        await settle(pilot)
        await wait_for(pilot, lambda: getattr(app.screen, "estimate", None) is not None, "first estimate")
        await settle(pilot)
        first = estimates[0]
        assert first >= 1
        for _ in range(3):  # what the periodic re-read does: the same quotas again
            await app.ctx.refresh_quotas()
            await settle(pilot)
        assert estimates[0] == first
        # Someone used tokens: the headroom after the run changed, so the estimate is asked again.
        api.data["quotas"]["quotas"][0]["used"] += 1000
        await app.ctx.refresh_quotas()
        await wait_for(pilot, lambda: estimates[0] == first + 1, "a new estimate after the quotas changed")
