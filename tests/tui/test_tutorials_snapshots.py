"""SVG snapshots of the tutorials at 80×24 (issue 18): the catalogue with progress, and a step in progress beside
the live app (the tutorial panel on the Trace screen), in colour and without (state reads by symbol and word).

The catalogue with no progress is also in test_snapshots.py (``tutorials`` at 80×24 and 120×40, 16 colours,
NO_COLOR).  Regenerate after a deliberate change with ``--snapshot-update`` for this file only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.tui.conftest import settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp


def step_in_progress(api: FakeEngineApi) -> Callable[[Any], Any]:
    async def run_before(pilot: Any) -> None:
        app: MusubiApp = pilot.app
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "fake engine connected")
        await pilot.press("5")
        await wait_for(pilot, lambda: getattr(app.screen, "loaded", False), "the catalogue read")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.tutorial.step is not None, "the tutorial started")
        await pilot.press("f1", "escape")  # step 1 done by its key
        await wait_for(pilot, lambda: app.tutorial.step_id == "switch-mode", "step 2 current")
        await pilot.press("2")  # step 2 done by reaching Trace
        await wait_for(pilot, lambda: app.tutorial.step_id == "palette", "step 3 current")
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected in the sandbox tenant")
        await pilot.press("f9", "h")  # into the panel, show the hint
        await settle(pilot)
        await pilot.pause(0.3)
        app.clear_notifications()  # the tenant switch's toast would cover the panel
        await settle(pilot)

    return run_before


def catalogue_with_progress(api: FakeEngineApi) -> Callable[[Any], Any]:
    async def run_before(pilot: Any) -> None:
        app: MusubiApp = pilot.app
        await step_in_progress(api)(pilot)
        await pilot.press("x", "5")  # leave (progress kept), back to the catalogue
        await wait_for(pilot, lambda: app.ctx.api.identity.tenant == "acme", "back in the user's tenant")
        await wait_for(pilot, lambda: "2/" in str(getattr(app.screen, "rows", "")) or any(
            len(t["progress"]["done"]) == 2 for t in getattr(app.screen, "rows", [])), "progress in the list")
        await settle(pilot)
        await pilot.pause(0.3)
        app.clear_notifications()
        await settle(pilot)

    return run_before


SCENES = {"step-in-progress": step_in_progress, "catalogue-progress": catalogue_with_progress}


@pytest.mark.parametrize("color", ["truecolor", "none"])
@pytest.mark.parametrize("scene", SCENES.keys())
def test_tutorials_snapshot(snap_compare: Callable[..., bool], scene: str, color: str) -> None:
    api = FakeEngineApi()
    app = MusubiApp(fake_ctx(api, color=color))
    assert snap_compare(app, terminal_size=(80, 24), run_before=SCENES[scene](api))
