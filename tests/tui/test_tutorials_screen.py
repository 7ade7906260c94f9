"""The Tutorials screen (mode 5) and the tutorial panel on the fake engine (issue 18): catalogue, start, steps
completed by keys, modes and palette actions, engine-checked steps, skip, restart, leave, done, resume.

The fake answers as the engine does (tests/tui/fake_tutorials.py, held to a real engine by
tests/tui/test_api_contract.py); the shipped tutorials are replayed against a real engine in
tests/tui/test_tutorials_replay.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tests.tui.conftest import settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tests.tui.test_narrow import screen_text
from tui.app import MusubiApp
from tui.widgets.tutorial_panel import TutorialDock

FIRST = "first-steps"


async def on_tutorials(pilot: Any) -> MusubiApp:
    app: MusubiApp = pilot.app
    await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "fake engine connected")
    await pilot.press("5")
    await wait_for(pilot, lambda: getattr(app.screen, "loaded", False), "the catalogue read")
    await settle(pilot)
    return app


@asynccontextmanager
async def tutorials_app(api: FakeEngineApi) -> AsyncIterator[tuple[MusubiApp, Any]]:
    """The app on the fake engine, 80x24, on the Tutorials screen with the catalogue read."""
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await on_tutorials(pilot)
        yield app, pilot


async def started(pilot: Any, app: MusubiApp, tutorial: str = FIRST) -> None:
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.tutorial.shown is not None and app.tutorial.shown["id"] == tutorial,
                   "the tutorial started")
    await wait_for(pilot, lambda: app.ctx.tenant.startswith("tut-") and app.ctx.conn.name == "connected",
                   "the app works in the sandbox tenant")
    await settle(pilot)


def current(app: MusubiApp) -> str | None:
    step = app.tutorial.step
    return step["id"] if step else None


async def step_is(pilot: Any, app: MusubiApp, step: str | None) -> None:
    await wait_for(pilot, lambda: current(app) == step, f"current step {step}")
    await settle(pilot)


def dock_text(app: MusubiApp) -> str:
    """The screen as text, each line's runs of spaces squeezed, plus the panel's lines joined (wrapped commands)."""
    lines = screen_text(app)
    panel = " ".join(" ".join(ln.split("│")[-2].split()) for ln in lines if ln.count("│") >= 2)
    return "\n".join(lines) + "\n" + panel


async def test_catalogue_lists_each_tutorial_with_progress(fake_api: FakeEngineApi) -> None:
    async with tutorials_app(fake_api) as (app, pilot):
        text = dock_text(app)
        for t in fake_api.tutorials.catalog.values():
            assert t.title in text
            assert f"0/{len(t.steps)}" in text
        assert "○ new" in text
        assert not app.screen.query_one(TutorialDock).display, "no tutorial runs: no panel"


async def test_start_then_key_mode_palette_and_engine_checked_steps_to_done(fake_api: FakeEngineApi) -> None:
    async with tutorials_app(fake_api) as (app, pilot):
        await started(pilot, app)
        assert app.ctx.api.identity.tenant == "tut-alice-first-steps"
        assert app.ctx.saved.section("app").get("tenant") is None, "a sandbox is never the next launch's tenant"
        text = dock_text(app)
        assert "Step 1/5 · Open the help" in text and "press F1" in text
        await pilot.press("f1")  # a key step: done when pressed
        await step_is(pilot, app, "switch-mode")
        await pilot.press("escape", "2")  # close the help, then reach Trace: a mode step
        await step_is(pilot, app, "palette")
        assert app.current_mode == "trace"
        assert app.screen.query_one(TutorialDock).display, "the panel follows the user to Trace"
        assert "run Debug (F12) from the palette" in dock_text(app), "the action in the user's words"
        await pilot.press("ctrl+p")
        await pilot.press(*"Debug info")
        await pilot.pause(0.5)
        await pilot.press("enter")  # a palette step
        await step_is(pilot, app, "engine")
        await pilot.press("escape")  # the debug info screen
        await settle(pilot)
        assert "musubi engine status" in dock_text(app) and "then press d here" in dock_text(app)
        await pilot.press("f9", "d")  # a command the engine cannot check: the user says they ran it
        await step_is(pilot, app, "whoami")
        assert "musubi --tenant tut-alice-first-steps whoami" in dock_text(app)
        await pilot.press("d")
        await wait_for(pilot, lambda: app.tutorial.finished, "the tutorial done")
        await wait_for(pilot, lambda: app.ctx.api.identity.tenant == "acme", "back in the user's own tenant")
        await settle(pilot)
        text = dock_text(app)
        assert "✔ Done: all 5 steps" in text
        done = [w for w in fake_api.writes if w[1].endswith(("/complete", "/skip"))]
        assert [w[2]["step"] for w in done if w[2]] == ["open-help", "switch-mode", "palette", "engine", "whoami"]
        assert not [r for r in app.ctx.failures.rows() if "Tutorial" in r[1]], app.ctx.failures.rows()
        await pilot.press("x")  # into the panel, leave: the panel goes
        await settle(pilot)
        assert app.tutorial.shown is None and not app.screen.query_one(TutorialDock).display


async def highlight(pilot: Any, app: MusubiApp, tutorial: str) -> None:
    screen: Any = app.screen
    for _ in range(len(screen.rows)):
        if screen.highlighted()["id"] == tutorial:
            return
        await pilot.press("down")
    raise AssertionError(f"{tutorial} is not in the catalogue")


async def test_a_state_step_completes_when_the_engine_check_holds(fake_api: FakeEngineApi) -> None:
    async with tutorials_app(fake_api) as (app, pilot):
        await highlight(pilot, app, "team")
        await started(pilot, app, "team")
        first = current(app)
        await pilot.press("f9", "s")  # skip the first step, from the panel
        await wait_for(pilot, lambda: current(app) != first, "the first step skipped")
        step = app.tutorial.step
        assert step is not None and step["kind"] == "state"
        checks = app.tutorial.checks
        await wait_for(pilot, lambda: app.tutorial.checks > checks + 1, "the watcher asked the engine, again")
        assert current(app) == step["id"], "the check does not hold: the step stays"
        await settle(pilot)
        assert "reviewer" in app.tutorial.note, app.tutorial.note  # what was seen against what was expected
        fake_api.tutorials.satisfied.add(("team", step["id"]))  # the user did it: the next poll sees it
        await wait_for(pilot, lambda: current(app) != step["id"], "the step done by the engine's check")
        prog = app.tutorial.progress
        assert prog is not None and prog["skipped"] == [first] and step["id"] in prog["done"]


async def test_hint_restart_and_leave_then_resume_after_an_app_restart(fake_api: FakeEngineApi) -> None:
    async with tutorials_app(fake_api) as (app, pilot):
        await started(pilot, app)
        await pilot.press("f9", "h")
        await settle(pilot)
        assert "Hint: F1, or ?" in dock_text(app)
        await pilot.press("r")  # restart: a fresh sandbox, from step 1
        await wait_for(pilot, lambda: app.ctx.api.identity.tenant == "tut-alice-first-steps-2", "a fresh sandbox")
        await step_is(pilot, app, "open-help")
        await pilot.press("escape", "f1", "escape")
        await step_is(pilot, app, "switch-mode")
        await pilot.press("f9", "x")  # leave: progress kept, back home
        await wait_for(pilot, lambda: app.ctx.api.identity.tenant == "acme", "back in the user's own tenant")
        assert app.tutorial.shown is None
        await settle(pilot)
        assert "▸ doing" in dock_text(app) and "1/5" in dock_text(app)
    async with tutorials_app(fake_api) as (again, pilot):  # the app restarted; the engine kept the progress
        await started(pilot, again)
        await step_is(pilot, again, "switch-mode")
        assert again.ctx.api.identity.tenant == "tut-alice-first-steps-2", "the same sandbox, resumed"
        assert "Resumed" in dock_text(again)


async def test_mode_step_already_satisfied_completes_at_once_and_f9_hides_the_panel(fake_api: FakeEngineApi) -> None:
    async with tutorials_app(fake_api) as (app, pilot):
        await started(pilot, app)
        await pilot.press("2", "f1")  # on Trace already when the mode step becomes current
        await step_is(pilot, app, "palette")
        await pilot.press("escape", "f9")  # into the panel
        dock = app.screen.query_one(TutorialDock)
        await settle(pilot)
        assert dock.has_focus_within
        await pilot.press("f9")  # out, and hidden
        await settle(pilot)
        assert not dock.display and not app.tutorial.visible
        await pilot.press("1")
        await settle(pilot)
        assert not app.screen.query_one(TutorialDock).display, "hidden on every mode"
        await pilot.press("f9")
        await settle(pilot)
        assert app.screen.query_one(TutorialDock).display


async def test_every_panel_action_is_in_the_palette_while_a_tutorial_runs(fake_api: FakeEngineApi) -> None:
    async with tutorials_app(fake_api) as (app, pilot):
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Tutorial: panel" in titles and "Tutorial: skip step" not in titles
        assert {"Tutorials: Start", "Tutorials: Reset"} <= titles
        await started(pilot, app)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Tutorial: hint", "Tutorial: skip step", "Tutorial: restart", "Tutorial: leave"} <= titles
        skip = next(c for c in app.get_system_commands(app.screen) if c.title == "Tutorial: skip step")
        skip.callback()
        await step_is(pilot, app, "switch-mode")


async def test_an_engine_refusal_is_said_in_words_and_changes_nothing(fake_api: FakeEngineApi) -> None:
    fake_api.denied.add(("POST", "/v1/tutorials/first-steps/start"))
    async with tutorials_app(fake_api) as (app, pilot):
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.tutorial.error is not None, "the refusal")
        await settle(pilot)
        assert app.tutorial.shown is None and app.ctx.api.identity.tenant == "acme"
        assert any("permission denied" in f.message for f in app.ctx.failures.entries)


async def test_an_engine_without_the_tutorials_api_is_named_as_such(fake_api: FakeEngineApi) -> None:
    fake_api.denied.add(("GET", "/v1/tutorials"))
    async with tutorials_app(fake_api) as (app, pilot):
        assert "✘ The tutorials could not be read: permission denied" in dock_text(app)
        await pilot.press("enter")  # nothing to start: said in words, nothing sent
        await settle(pilot)
        assert app.tutorial.shown is None and not [w for w in fake_api.writes if "/v1/tutorials" in w[1]]


async def test_f9_with_no_tutorial_running_opens_the_catalogue() -> None:
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(80, 24)) as p:
        pilot: Any = p
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "fake engine connected")
        await pilot.press("f9")
        await wait_for(pilot, lambda: app.current_mode == "tutorials", "the Tutorials mode")
        await settle(pilot)
        assert app.tutorial.shown is None
