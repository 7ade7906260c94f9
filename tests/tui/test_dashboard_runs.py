"""The Dashboard's runs (issue 12), on the fake engine: selecting a run shows its tree, output streams in, gates
are answered through the right route with the right body, refusals are clear, and a burst of events costs a
bounded number of repaints."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static, Tree

from tests.tui.conftest import settle, wait_for
from tests.tui.fake_runs import (
    DIFF,
    LIVE_3_1,
    RUN_A,
    RUN_B,
    RUN_C,
    RUN_D,
    FakeRuns,
    event,
    sha,
    state_event,
    step,
)
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.screens.dashboard import DashboardScreen


def text_of(app: MusubiApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def dash(app: MusubiApp) -> DashboardScreen:
    screen = app.get_screen("dashboard") if app.current_mode == "dashboard" else None
    assert isinstance(screen, DashboardScreen)
    return screen


async def ready(pilot: Pilot[Any], app: MusubiApp) -> DashboardScreen:
    await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "fake engine connected")
    screen = app.screen
    assert isinstance(screen, DashboardScreen)
    await wait_for(pilot, lambda: screen.shown is not None, "the first run loaded")
    await settle(pilot)
    await pilot.pause(0.3)  # one repaint tick
    return screen


async def choose(pilot: Pilot[Any], screen: DashboardScreen, run_id: str) -> None:
    """Move the runs table's cursor to ``run_id`` with the keys, as a user would."""
    screen.query_one("#dash-runs").focus()
    order = list(screen.runs)
    for _ in range(order.index(run_id) - order.index(screen.selected or order[0])):
        await pilot.press("down")
    await wait_for(pilot, lambda: screen.shown is not None and screen.shown["id"] == run_id, f"{run_id} loaded")
    await settle(pilot)
    await pilot.pause(0.3)


@asynccontextmanager
async def opened(
    api: FakeEngineApi, run: str | None = None
) -> AsyncIterator[tuple[MusubiApp, Pilot[Any], DashboardScreen]]:
    """The app on ``api`` at 120×40, its Dashboard ready, with ``run`` chosen by the keys when given.

    A context manager rather than an async fixture, so the app opens and closes inside the test's own task."""
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        if run is not None:
            await choose(pilot, screen, run)
        yield app, pilot, screen


@pytest.fixture
def api() -> FakeEngineApi:
    """The fake engine a test may adjust (identity, refusals) before ``opened`` starts the app on it."""
    return FakeEngineApi()


def notes(app: MusubiApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def tree_labels(screen: DashboardScreen) -> list[str]:
    tree: Tree[str] = screen.query_one("#dash-steps", Tree)
    out: list[str] = []

    def walk(node: Any) -> None:
        for child in node.children:
            out.append("  " * (child.data.count("/")) + str(child.label))
            walk(child)

    walk(tree.root)
    return out


async def test_selecting_a_run_shows_its_step_tree_with_parallel_agents_under_their_parent(api: FakeEngineApi) -> None:
    async with opened(api) as (app, pilot, screen):
        assert screen.selected == RUN_A
        labels = tree_labels(screen)
        assert [x.split("  ")[0].strip() for x in labels][:3] == ["✔ done requirements", "✔ done design",
                                                                   "↻ running implement"]
        assert any(x.startswith("  ↻ running developer") for x in labels), labels  # a child of "implement"
        tree: Tree[str] = screen.query_one("#dash-steps", Tree)
        parent = next(n for n in tree.root.children if n.data == "3")
        assert [c.data for c in parent.children] == ["3/1", "3/2"]
        text = text_of(app)
        assert "r-0000000000a1" in text and "↻ running" in text and "18k/40k" in text and "$0.14/$0.32" in text
        assert "⚑ waiting" in text and "■ stopped" in text and "✔ done" in text
        await choose(pilot, screen, RUN_C)
        assert [str(n.label).split("  ")[0] for n in tree.root.children] == ["✔ done reproduce", "✔ done fix"]
        await wait_for(pilot, lambda: "Steps r-0000000000c3 · bugfix" in text_of(app), "the run's title")


async def test_output_streams_into_the_selected_step_in_batches(api: FakeEngineApi) -> None:
    async with opened(api) as (app, pilot, screen):
        assert screen.step == "3/2"  # the last running step is shown first
        for word in ("Writing ", "tests ", "for ", "--json"):
            api.queue.put_nowait(event("run.output", RUN_A, step="3/2", agent="test-engineer", text=word))
        # Step 3/1 streamed LIVE_3_1 before this screen opened: its event carries where its text starts.
        api.queue.put_nowait(event("run.output", RUN_A, step="3/1", agent="software-developer", text="ELSEWHERE",
                                   offset=len(LIVE_3_1)))
        out = screen.query_one("#dash-output", Static)
        await wait_for(pilot, lambda: "Writing tests for --json" in str(out.render()), "output shown")
        assert "ELSEWHERE" not in str(out.render())  # another step's output is kept, not shown here
        # Moving to the other step shows what it streamed meanwhile.
        tree: Tree[str] = screen.query_one("#dash-steps", Tree)
        tree.focus()
        await pilot.press("up")
        await wait_for(pilot, lambda: screen.step == "3/1", "step 3/1 chosen")
        await wait_for(pilot, lambda: "ELSEWHERE" in str(out.render()), "step 3/1's output")
        # What it said before the Dashboard saw it comes from the engine's live tail, spliced in front, once.
        await wait_for(pilot, lambda: screen.outputs[(RUN_A, "3/1")] == LIVE_3_1 + "ELSEWHERE", "spliced output")
        assert (RUN_A, "3/1") in screen._fetched and screen.out_end[(RUN_A, "3/1")] == len(LIVE_3_1) + 9
        # A step event updates its row in place; a late child is added under its parent.
        api.queue.put_nowait(event("run.step", RUN_A, step=step("3/3", "docs", "running", agent="writer")))
        await wait_for(pilot, lambda: any("docs" in x for x in tree_labels(screen)), "new child step")
        parent = next(n for n in tree.root.children if n.data == "3")
        assert [c.data for c in parent.children] == ["3/1", "3/2", "3/3"]


async def test_a_burst_of_events_costs_a_bounded_number_of_repaints(api: FakeEngineApi) -> None:
    async with opened(api) as (app, pilot, screen):
        before = dict(screen.repaints)
        flushes = screen.flushes
        n = 600
        for i in range(n):
            api.queue.put_nowait(event("run.output", RUN_A, step="3/2", agent="test-engineer", text=f"{i} "))
            if i % 3 == 0:
                api.queue.put_nowait(event("run.step", RUN_A, step=step("3/2", "tests", "running",
                                                                        tokens=(1800, 200 + i))))
        out = screen.query_one("#dash-output", Static)
        await wait_for(pilot, lambda: f"{n - 1} " in str(out.render()), "the last delta shown")
        await pilot.pause(0.3)
        ticks = screen.flushes - flushes
        output = screen.repaints.get("output", 0) - before.get("output", 0)
        tree = screen.repaints.get("tree", 0) - before.get("tree", 0)
        # At most one repaint of each widget per tick, however many events came in between.
        assert output <= ticks and tree <= ticks, (output, tree, ticks)
        assert output + tree < (n + n // 3) / 10, (output, tree)
        assert "0 1 2 3" in screen.outputs[(RUN_A, "3/2")]  # every delta kept, in order


async def test_approve_sends_the_gate_and_the_hash_of_what_was_shown(api: FakeEngineApi) -> None:
    async with opened(api, RUN_B) as (app, pilot, screen):
        await wait_for(pilot, lambda: "+++ b/tui/commands/runs.py" in text_of(app), "the diff shown")
        text = text_of(app)
        assert "Approval gate review" in text and "a approve · r reject · c request changes" in text
        await pilot.press("a")
        await wait_for(pilot, lambda: any(w[1].endswith("/approve") for w in api.writes), "approve sent")
        method, path, body, _ = next(w for w in api.writes if w[1].endswith("/approve"))
        assert (method, path) == ("POST", f"/v1/runs/{RUN_B}/approve")
        assert body == {"gate": "review", "shown_sha256": sha(DIFF)}
        await wait_for(pilot, lambda: any("Approved gate 'review'" in n for n in notes(app)), "success notified")
        # Answered: the panel no longer offers the gate, and a second a says there is nothing to answer.
        await wait_for(pilot, lambda: screen.pending_approval() is None, "gate answered")
        await pilot.press("a")
        await wait_for(pilot, lambda: any("has no approval gate waiting" in n for n in notes(app)), "nothing left")
        assert sum(w[1].endswith("/approve") for w in api.writes) == 1
        # The approved diff is applied with p: the apply route, naming the artefact.
        await wait_for(pilot, lambda: screen.artefacts()[-1]["state"] == "approved", "artefact approved")
        await pilot.press("p")
        await wait_for(pilot, lambda: any(w[1].endswith("/apply") for w in api.writes), "apply sent")
        _, path, body, _ = next(w for w in api.writes if w[1].endswith("/apply"))
        assert path == f"/v1/runs/{RUN_B}/apply" and body == {"artefact": "a-0000000000b2"}
        await wait_for(pilot, lambda: any("Applied implement.diff" in n for n in notes(app)), "applied")


async def test_reject_confirms_first_and_request_changes_asks_for_a_comment(api: FakeEngineApi) -> None:
    async with opened(api, RUN_B) as (app, pilot, screen):
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("n")  # cancelled: nothing sent
        await settle(pilot)
        assert not [w for w in api.writes if "/v1/runs/" in w[1]]
        # Request changes: an empty comment is refused in the form, a real one is sent.
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen.focused, Input)
        await pilot.press("enter")
        await settle(pilot)
        assert "required" in str(app.screen.query_one("#form-error", Static).render())
        await pilot.press(*"keep the old flag", "enter")
        await wait_for(pilot, lambda: any(w[1].endswith("/request_changes") for w in api.writes), "changes sent")
        _, path, body, _ = next(w for w in api.writes if w[1].endswith("/request_changes"))
        assert path == f"/v1/runs/{RUN_B}/request_changes"
        assert body == {"gate": "review", "comment": "keep the old flag", "shown_sha256": sha(DIFF)}
        # The gate is answered now: reject finds nothing to answer and sends nothing.
        await wait_for(pilot, lambda: screen.pending_approval() is None, "gate answered")
        await pilot.press("r")
        await settle(pilot)
        assert not any(w[1].endswith("/reject") for w in api.writes)


async def test_reject_after_confirming_calls_the_reject_route(api: FakeEngineApi) -> None:
    async with opened(api, RUN_B) as (app, pilot, screen):
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("y")
        await wait_for(pilot, lambda: any(w[1].endswith("/reject") for w in api.writes), "reject sent")
        _, path, body, _ = next(w for w in api.writes if w[1].endswith("/reject"))
        assert path == f"/v1/runs/{RUN_B}/reject" and body == {"gate": "review", "shown_sha256": sha(DIFF)}


async def test_apply_before_approval_says_why_and_sends_nothing(api: FakeEngineApi) -> None:
    async with opened(api, RUN_B) as (app, pilot, screen):
        await pilot.press("p")
        await wait_for(pilot, lambda: any("its diff is not approved yet" in n for n in notes(app)), "why not")
        assert not [w for w in api.writes if w[1].endswith("/apply")]


async def test_a_member_without_runs_approve_is_told_so_and_nothing_is_sent(api: FakeEngineApi) -> None:
    api.identity.as_user = "bob"  # a member: runs.start and runs.cancel, not runs.approve
    async with opened(api, RUN_B) as (app, pilot, screen):
        await settle(pilot)
        assert "✗Approve" in text_of(app) and "✗Reject" in text_of(app)  # marked in the footer
        await pilot.press("a")
        await wait_for(pilot, lambda: any("lacks runs.approve" in n for n in notes(app)), "refusal shown")
        note = next(n for n in notes(app) if "lacks runs.approve" in n)
        assert "bob (member)" in note and "nothing was changed" in note
        for key in ("r", "c"):
            await pilot.press(key)
            await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)  # no dialog opened
        assert not [w for w in api.writes if "/v1/runs/" in w[1]]
        # The palette says so too, next to each action's key.
        entries = {a.title: a.help for a in screen.palette_actions()}
        approve = entries["Dashboard: Approve"]
        assert "✗ needs runs.approve" in approve and approve.startswith("a ·")
        assert "✗" not in entries["Dashboard: Cancel run"]  # a member may cancel


async def test_an_engine_refusal_is_shown_in_words(api: FakeEngineApi) -> None:
    """The engine has the last word: a refusal the screen could not foresee is shown, and the app goes on."""
    api.denied.add(("POST", f"/v1/runs/{RUN_B}/approve"))
    async with opened(api, RUN_B) as (app, pilot, screen):
        await pilot.press("a")
        await wait_for(pilot, lambda: any("permission denied" in n for n in notes(app)), "engine refusal shown")
        assert screen.pending_approval() is not None  # nothing changed


async def test_cancel_asks_then_cancels_and_resume_resumes_a_stopped_run(api: FakeEngineApi) -> None:
    async with opened(api) as (app, pilot, screen):
        await pilot.press("u")  # running: not resumable
        await wait_for(pilot, lambda: any("only a stopped, failed or interrupted run" in n for n in notes(app)),
                       "resume refused in words")
        await pilot.press("x")
        await settle(pilot)
        await pilot.press("y")
        await wait_for(pilot, lambda: any(w[1] == f"/v1/runs/{RUN_A}/cancel" for w in api.writes), "cancel sent")
        await wait_for(pilot, lambda: screen.runs[RUN_A]["state"] == "cancelled", "run read again")
        await pilot.press("x")  # ended: nothing to cancel, nothing sent
        await settle(pilot)
        assert sum(w[1].endswith("/cancel") for w in api.writes) == 1
        await choose(pilot, screen, RUN_D)
        await wait_for(pilot, lambda: "stopped (quota): quota exceeded: tokens per day" in text_of(app), "why")
        await pilot.press("u")
        await wait_for(pilot, lambda: any(w[1] == f"/v1/runs/{RUN_D}/resume" for w in api.writes), "resume sent")
        await wait_for(pilot, lambda: screen.runs[RUN_D]["state"] == "queued", "resumed run read again")


async def test_events_keep_the_list_live_and_a_new_gate_is_announced(api: FakeEngineApi) -> None:
    async with opened(api) as (app, pilot, screen):
        api.queue.put_nowait(state_event({**api.runs.runs[RUN_A], "state": "waiting", "pending_gate": "review"}))
        ap = {"gate": "review", "step": "4", "state": "pending", "artefact": None, "shown_sha256": sha("plan"),
              "shown": "the plan", "asked_at": "2026-01-15T14:30:00.000000Z", "deadline": None, "decision": None,
              "decided_by": None, "decided_at": None, "comment": None}
        api.queue.put_nowait(event("run.gate", RUN_A, approval=ap))
        await wait_for(pilot, lambda: any("waits for your review" in n for n in notes(app)), "gate announced")
        await wait_for(pilot, lambda: "Approval gate review" in text_of(app), "gate shown")
        assert screen.step == "4"
        await wait_for(pilot, lambda: "the plan" in text_of(app), "what the gate shows")
        # A call event feeds the p95 line of the engine panel.
        for ms in (100.0, 200.0, 900.0):
            api.queue.put_nowait(event("run.call", RUN_A, step="3/1", agent="software-developer", model="gpt-5.4",
                                       input_tokens=1, output_tokens=1, cost_usd="0.000001", latency_ms=ms,
                                       outcome="ok", replayed=False))
        # gpt-5.4 was seeded with step 3/1's last call (1,940 ms): four samples, nearest-rank p95 is the slowest.
        await wait_for(pilot, lambda: len(screen.latencies.samples["gpt-5.4"]) == 4, "three calls counted")
        assert screen.latencies.samples["gpt-5.4"] == deque([1940.0, 100.0, 200.0, 900.0])
        assert "p95 1.9s gpt-5.4" in screen.engine_text().plain
        await wait_for(pilot, lambda: "p95 2.3s claude" in text_of(app), "the slowest model first")


async def test_with_no_runs_it_says_how_to_start_one() -> None:
    api = FakeEngineApi()
    api.runs = FakeRuns(empty=True)
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await wait_for(pilot, lambda: screen.runs_loaded, "runs read")
        await settle(pilot)
        await pilot.pause(0.3)
        assert 'musubi run WORKFLOW --feature "what to build"' in text_of(app)
        await pilot.press("a")
        await wait_for(pilot, lambda: any("No run selected" in n for n in notes(app)), "no run to act on")
        # The first run's state event brings it in without a reload.
        api.runs.runs[RUN_A] = FakeRuns().runs[RUN_A]
        api.queue.put_nowait(state_event(api.runs.runs[RUN_A]))
        await wait_for(pilot, lambda: "r-0000000000a1" in text_of(app), "new run listed")
        assert screen.selected == RUN_A


async def test_an_engine_without_the_runs_route_is_named() -> None:
    api = FakeEngineApi()
    api.runs = FakeRuns(empty=True)

    class Old(FakeRuns):
        def answer(self, *a: Any, **k: Any) -> Any:
            from core.errors import NotFound

            raise NotFound("no route GET /v1/runs")

    api.runs = Old()
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")
        await wait_for(pilot, lambda: "has no runs API" in text_of(app), "old engine named")

