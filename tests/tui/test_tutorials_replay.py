"""Every shipped tutorial replayed end to end in the workstation at 80×24, against a REAL engine (issue 18).

For each tutorial: mode 5, highlight it, enter (the engine makes the sandbox; the app switches to its
tenant), then for each current step, its solution as the user would do it: ``keys`` pressed with
Pilot, ``palette`` actions run through the command palette (ctrl+p, the action's title, enter; when the
shown mode does not offer it, first the mode that does), ``files`` edited in the sandbox folder and
``argv`` run as ``musubi`` commands in a shell (a subprocess, from the sandbox folder) for a step with
no keys or palette action (one with both, such as approving a run's gate, is done in the workstation).  Nothing
reports a step done behind the screen's back: key, mode and palette steps complete by what the app
saw; engine-checked steps by the screen's own polling of ``tutorials.check``; a command the engine
cannot check by **d** in the tutorial panel.  At the end the tutorial is done, its sandbox cleaned,
and the app back in the user's own tenant.  The shell-only replay is tests/tutorials/test_replay.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.async_client import AsyncEngineClient
from core.wire import Identity
from tests.cli.helpers import Cli, cli_fixture
from tests.tui.conftest import settle, wait_for
from tests.tutorials.replay import edit
from tui.app import MusubiApp
from tui.config import ColorDecision, EngineSettings, Settings
from tui.context import AppContext
from tui.screens.modes import MODES
from tui.widgets.tutorial_panel import TutorialDock
from tutorials.loader import load_all

ENV = {"MUSUBI_TEST_FAKE_EMBEDDER": "32"}  # a code-search tutorial indexes: no torch model in tests
STEP_S = 60.0  # hang guard per step (a real engine under a loaded CI box), not a speed check


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    with cli_fixture(env=ENV) as c:
        yield c


def app_on(cli: Cli) -> MusubiApp:
    settings = Settings(engine=EngineSettings(retry_initial_s=0.1, retry_max_s=0.5, poll_s=30))
    api = AsyncEngineClient(cli.paths, Identity(cwd="/"))
    return MusubiApp(AppContext(api, settings, ColorDecision("truecolor", "test"), animations=False))


def palette_title(app: MusubiApp, binding_id: str) -> str | None:
    """The palette entry's title of the action ``binding_id`` on the shown screen, if it offers it."""
    for cmd in app.get_system_commands(app.screen):
        run = cmd.callback
        # the app wraps each entry so a tutorial sees it run; the wrapper closes over the binding id
        cells = [c.cell_contents for c in (getattr(run, "__closure__", None) or ())]
        if binding_id in cells:
            return cmd.title
    return None


async def run_palette(pilot: Any, app: MusubiApp, binding_id: str) -> None:
    title = palette_title(app, binding_id)
    if title is None:  # the action belongs to another mode: go there first, as the step's text says
        for m in MODES:
            await pilot.press(m.fkey)
            await settle(pilot)
            if (title := palette_title(app, binding_id)) is not None:
                break
    assert title is not None, f"no palette entry runs {binding_id}"
    await pilot.press("ctrl+p")
    await pilot.pause(0.2)
    await pilot.press(*title)
    await pilot.pause(0.6)
    await pilot.press("enter")
    await settle(pilot)


async def do_step(pilot: Any, app: MusubiApp, cli: Cli, step: dict[str, Any], folder: Path) -> None:
    sol = step["solution"]
    in_app = bool(sol["keys"] or sol["palette"])  # a step the workstation can do: done there, not in a shell
    for f in [] if in_app else sol["files"]:
        edit(folder, f)
    for i, argv in enumerate([] if in_app else sol["argv"]):
        if app.tutorial.step_id != step["id"]:
            break  # the screen's check already saw the step done (and a finished tutorial's folder is gone)
        want = sol["exit"] if i == len(sol["argv"]) - 1 else 0
        try:
            r = await asyncio.to_thread(cli, *argv, cwd=str(folder))
        except FileNotFoundError:  # the folder went before the shell could start in it
            await wait_for(pilot, lambda: app.tutorial.finished, "the tutorial finished (its folder is gone)")
            break
        if app.tutorial.finished and not folder.exists():
            break  # the screen saw the tutorial done meanwhile and its folder went: the command ran in a deleted cwd
        assert r.rc == want and "Traceback" not in r.err, f"{step['id']}: {r}"
    if sol["palette"]:
        await run_palette(pilot, app, sol["palette"])
    for key in sol["keys"]:
        await pilot.press(key)
        await pilot.pause(0.05)
    if step["kind"] == "cli" and step["check"] is None:
        # The user ran it: the engine cannot check this one.  F9 goes into the panel (from inside, F9 would hide it).
        dock = app.screen.query_one(TutorialDock)
        await pilot.press(*(("d",) if dock.has_focus_within else ("f9", "d")))


@pytest.mark.parametrize("tutorial", list(load_all()))
async def test_tutorial_replays_to_done_in_the_workstation(cli: Cli, tutorial: str) -> None:
    app = app_on(cli)
    async with app.run_test(size=(80, 24)) as p:
        pilot: Any = p
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected", deadline_s=60)
        home = app.ctx.tenant
        await pilot.press("5")
        screen: Any = app.screen
        await wait_for(pilot, lambda: screen.loaded, "the catalogue read", deadline_s=60)
        for _ in screen.rows:
            if screen.highlighted()["id"] == tutorial:
                break
            await pilot.press("down")
        await pilot.press("enter")
        session = app.tutorial
        await wait_for(pilot, lambda: session.shown is not None and session.shown["id"] == tutorial
                       and app.ctx.conn.name == "connected" and app.ctx.tenant != home,
                       "started, in the sandbox tenant", deadline_s=STEP_S)
        progress = session.progress
        assert progress is not None and progress["sandbox"] is not None
        folder = Path(progress["sandbox"]["path"])
        seen: list[str] = []
        while not session.finished:
            step = session.step
            assert step is not None
            assert step["id"] not in seen, f"{step['id']} did not complete from its solution: {session.note}"
            seen.append(step["id"])
            await settle(pilot)
            await do_step(pilot, app, cli, dict(step), folder)
            sid: str = step["id"]

            def moved_on(sid: str = sid) -> bool:
                return session.finished or session.step_id != sid

            await wait_for(pilot, moved_on, f"{tutorial}/{sid} completed ({session.note or session.error})",
                           deadline_s=STEP_S)
            while len(app.screen_stack) > 1:  # a dialog the step opened (help, debug info): close it
                await pilot.press("escape")
                await settle(pilot)
        p_done = session.progress
        assert p_done is not None and p_done["state"] == "done" and not p_done["skipped"], p_done
        assert p_done["sandbox"] is None, "the sandbox is cleaned on completion"
        await wait_for(pilot, lambda: app.ctx.tenant == home and app.ctx.conn.name == "connected",
                       "back in the user's own tenant", deadline_s=STEP_S)
        assert not folder.exists() or not any(folder.iterdir()), "the sandbox folder is left"
