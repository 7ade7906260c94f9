"""The Dashboard's CI line (issue 17 gaps), on the fake engine: read in a worker when a run is selected, refreshed
with ``i``, every state in words, a refusal shown in place."""

from __future__ import annotations

from textual.widgets import Static

from core.errors import EngineUnavailable
from tests.tui.conftest import wait_for
from tests.tui.fake_runs import RUN_A, RUN_B
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tests.tui.test_dashboard_runs import choose, ready
from tui.app import MusubiApp
from tui.screens.dashboard_pipeline import STATES, pipeline_text


def line(app: MusubiApp) -> str:
    return str(app.screen.query_one("#dash-pipeline", Static).render())


def reads(api: FakeEngineApi, run_id: str) -> int:
    return sum(1 for path, _q in api.reads if path == f"/v1/runs/{run_id}/pipeline")


async def test_selected_run_shows_its_pipeline_and_i_refreshes_it() -> None:
    api = FakeEngineApi()
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await ready(pilot, app)
        assert screen.selected == RUN_A
        await wait_for(pilot, lambda: "passed" in line(app), "RUN_A's pipeline shown")
        assert "gitlab feature/login 3f2a3f2a3f" in line(app) and "✔" in line(app)
        before = reads(api, RUN_A)
        answer = api.runs.pipelines[RUN_A]
        assert isinstance(answer, dict)
        api.runs.pipelines[RUN_A] = {**answer, "state": "failed"}
        screen.query_one("#dash-runs").focus()
        await pilot.press("i")
        await wait_for(pilot, lambda: "failed" in line(app), "the refreshed state")
        assert reads(api, RUN_A) == before + 1 and "✘" in line(app)
        await choose(pilot, screen, RUN_B)
        await wait_for(pilot, lambda: "no git ref recorded" in line(app), "RUN_B has no ref")
        assert "link-run" in line(app)


async def test_a_refusal_is_shown_in_place_not_raised() -> None:
    api = FakeEngineApi()
    api.runs.pipelines[RUN_A] = EngineUnavailable("engine went away mid-read")
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        await wait_for(pilot, lambda: "engine went away" in line(app), "the error in the CI line")


def test_every_state_has_a_word() -> None:
    for state in STATES:
        text = pipeline_text({"run": "r-1", "state": state, "system": "github", "ref": "main", "sha": None,
                              "source": "git", "pipeline": None, "message": "m"})
        assert STATES[state][1] in text.plain
    assert pipeline_text(None).plain == "CI: select a run" and "reading" in pipeline_text(None, loading=True).plain
