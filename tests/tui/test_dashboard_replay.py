"""The Dashboard holds the selected run's ``run.state``, ``run.step`` and ``run.gate`` events while its details are
read, and replays them onto the answer: an answer read before them no longer hides them, and one read after them is
not taken back by them.  The read is held by the test (the fake engine answers as of the request, then waits on an
event), so the order is fixed, not timed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.tui.conftest import settle, wait_for
from tests.tui.fake_runs import RUN_A, RUN_D, event, sha, state_event
from tests.tui.fakes import FakeEngineApi
from tests.tui.test_dashboard_runs import notes, opened
from tui.screens.dashboard import DashboardScreen

LATER = "2026-01-15T14:31:00.000000Z"  # after the fixed runs' updated_at (TS)
EARLIER = "2026-01-15T14:29:30.000000Z"  # before it


@pytest.fixture
def api() -> FakeEngineApi:
    return FakeEngineApi()


def hold_read(api: FakeEngineApi, route: str) -> tuple[list[str], asyncio.Event]:
    """Hold the next ``GET route``: the engine answers as of the request, and the answer is delivered once the
    returned event is set (the list says when the read is under way)."""
    release = asyncio.Event()
    held: list[str] = []
    send = api._send

    async def slow_first_read(method: str, path: str, body: Any, query: Any) -> Any:
        answer = await send(method, path, body, query)  # the engine's answer as of now
        if method == "GET" and path == route and not held:
            held.append(path)
            await release.wait()  # ... delivered only after what the test sends meanwhile
        return answer

    api._send = slow_first_read  # type: ignore[method-assign]
    return held, release


async def hold_details(api: FakeEngineApi, pilot: Pilot[Any], screen: DashboardScreen, run_id: str) -> asyncio.Event:
    """Select ``run_id`` afresh with its details read held (:func:`hold_read`)."""
    held, release = hold_read(api, f"/v1/runs/{run_id}")
    screen.select(None)
    screen.select(run_id)
    await wait_for(pilot, lambda: bool(held), "the details read under way")
    return release


async def answered(pilot: Pilot[Any], screen: DashboardScreen, release: asyncio.Event) -> None:
    release.set()
    await wait_for(pilot, lambda: screen.shown is not None, "the details answer applied")


def step_of(api: FakeEngineApi, path: str, **changes: Any) -> dict[str, Any]:
    return {**next(s for s in api.runs.runs[RUN_A]["steps"] if s["path"] == path), **changes}


def gate(state: str = "pending", **changes: Any) -> dict[str, Any]:
    return {"gate": "review", "step": "4", "state": state, "artefact": None, "shown_sha256": sha("plan"),
            "shown": "the plan", "asked_at": "2026-01-15T14:30:00.000000Z", "deadline": None, "decision": None,
            "decided_by": None, "decided_at": None, "comment": None, **changes}


async def test_a_gate_event_during_the_runs_details_read_is_not_lost(api: FakeEngineApi) -> None:
    """The selected run's details were read before its gate was asked, and the gate event arrived before that
    answer: the gate is replayed onto it, so it shows (it stayed hidden for good before)."""
    async with opened(api) as (app, pilot, screen):
        release = await hold_details(api, pilot, screen, RUN_A)
        ap = gate()
        api.runs.runs[RUN_A] = {**api.runs.runs[RUN_A], "state": "waiting", "pending_gate": "review",
                                "approvals": [ap]}
        api.queue.put_nowait(event("run.gate", RUN_A, approval=ap))
        await wait_for(pilot, lambda: any("waits for your review" in n for n in notes(app)), "gate event handled")
        await answered(pilot, screen, release)
        assert screen.pending_approval() is not None and screen.pending_approval()["gate"] == "review"  # type: ignore[index]
        assert screen.step == "4"
        assert sum("waits for your review" in n for n in notes(app)) == 1  # announced when it came, not again


async def test_a_run_state_event_during_the_details_read_is_not_lost(api: FakeEngineApi) -> None:
    async with opened(api) as (app, pilot, screen):
        release = await hold_details(api, pilot, screen, RUN_A)
        cancelled = {**api.runs.runs[RUN_A], "state": "cancelled", "stop_code": "cancelled", "updated_at": LATER}
        api.queue.put_nowait(state_event(cancelled))
        await wait_for(pilot, lambda: screen.runs[RUN_A]["state"] == "cancelled", "the run.state event handled")
        await answered(pilot, screen, release)
        assert screen.runs[RUN_A]["state"] == "cancelled"  # the answer (running) no longer takes it back
        assert screen.shown is not None and screen.shown["state"] == "cancelled"


async def test_a_run_step_event_during_the_details_read_is_not_lost(api: FakeEngineApi) -> None:
    async with opened(api) as (app, pilot, screen):
        release = await hold_details(api, pilot, screen, RUN_A)
        # As the engine sends a save: the run's summary, then its steps.
        api.queue.put_nowait(state_event({**api.runs.runs[RUN_A], "tokens": 19_000, "updated_at": LATER}))
        api.queue.put_nowait(event("run.step", RUN_A, step=step_of(api, "3/2", status="done", output_tokens=780)))
        await wait_for(pilot, lambda: len(screen._held) == 2, "both events held")
        await answered(pilot, screen, release)
        assert screen.steps["3/2"]["status"] == "done" and screen.steps["3/2"]["output_tokens"] == 780
        assert screen.runs[RUN_A]["tokens"] == 19_000


async def test_events_older_than_the_details_answer_do_not_take_it_back(api: FakeEngineApi) -> None:
    """The answer was read after a save whose events (and an older gate ask) reach the screen only after the read
    began: replaying them would go back to before the answer."""
    async with opened(api) as (app, pilot, screen):
        decided = gate("approved", decision="approved", decided_by="bob", decided_at=LATER)
        api.runs.runs[RUN_A] = {**api.runs.runs[RUN_A], "updated_at": LATER, "approvals": [decided]}
        release = await hold_details(api, pilot, screen, RUN_A)
        api.queue.put_nowait(state_event({**api.runs.runs[RUN_A], "state": "waiting", "pending_gate": "review",
                                          "updated_at": EARLIER}))
        api.queue.put_nowait(event("run.step", RUN_A, step=step_of(api, "3/2", status="failed")))
        api.queue.put_nowait(event("run.gate", RUN_A, approval=gate()))
        await wait_for(pilot, lambda: len(screen._held) == 3, "the three events held")
        await answered(pilot, screen, release)
        assert screen.runs[RUN_A]["state"] == "running" and screen.shown["state"] == "running"  # type: ignore[index]
        assert screen.steps["3/2"]["status"] == "running"
        assert screen.pending_approval() is None and screen.shown["approvals"] == [decided]  # type: ignore[index]


async def test_a_run_state_event_during_the_list_read_is_not_taken_back(api: FakeEngineApi) -> None:
    """Not the selected run (its details are read again after the list): its row keeps the newer event."""
    async with opened(api) as (app, pilot, screen):
        held, release = hold_read(api, "/v1/runs")
        screen.load_runs()
        await wait_for(pilot, lambda: bool(held), "the list read under way")
        resumed = {**api.runs.runs[RUN_D], "state": "queued", "stop_code": None, "reason": None, "updated_at": LATER}
        api.queue.put_nowait(state_event(resumed))
        await wait_for(pilot, lambda: screen.runs[RUN_D]["state"] == "queued", "the run.state event handled")
        release.set()
        await settle(pilot)
        assert not any(w.is_running for w in screen.workers if w.group == "dashboard-runs")
        assert screen.runs[RUN_D]["state"] == "queued"  # the list's row (stopped) was read before the event
        assert screen.runs[RUN_A]["state"] == "running"
