"""The Dashboard's runs gaps (issue 12) on the fake engine: a step's output so far from the engine spliced with
events by offset, retrying one step (t), and this tenant's provider latency from the engine (l, the engine panel)."""

from __future__ import annotations

from textual.widgets import Static

from core.errors import NotFound
from tests.tui.conftest import settle, wait_for
from tests.tui.fake_runs import LIVE_3_1, RUN_A, RUN_D, event
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tests.tui.test_dashboard_runs import choose, notes, ready, text_of
from tui.app import MusubiApp
from tui.screens import dashboard_view as view


def test_take_and_merge_keep_each_character_of_the_stream_once() -> None:
    assert view.take(None, 40, "abc") == ("abc", 43)  # joined late: from where the event starts
    assert view.take(43, 40, "abcdef") == ("def", 46)  # overlap dropped
    assert view.take(46, 40, "abc") == ("", 46)  # already shown
    assert view.take(46, 50, "xy") == ("xy", 52)  # a gap (an event lost) is shown as is
    assert view.take(10, None, "zz") == ("zz", 12)  # an older engine sends no offset: appended
    assert view.merge_answer("", None, "tail", 4) == "tail"
    assert view.merge_answer("ilXY", 6, "tail", 4) == "tailXY"  # events brought 2 characters after the answer
    assert view.merge_answer("il", 4, "tail", 4) == "tail"
    rows = [{"provider": "openai", "model": "gpt-5.4", "count": 3, "p50_ms": 900.0, "p95_ms": 1940.0},
            {"provider": "anthropic", "model": "claude", "count": 1, "p50_ms": 80.0, "p95_ms": 95.0}]
    assert view.latency_lines(rows) == ["p95 1.9s gpt-5.4", "p95 95ms claude"]
    assert view.latency_table(rows).splitlines()[0] == "openai gpt-5.4: p50 900ms · p95 1.9s · 3 calls"
    assert "No model calls" in view.latency_table([])


async def test_output_so_far_comes_from_the_engine_and_events_join_it_without_repeats() -> None:
    api = FakeEngineApi()
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        tree = screen.query_one("#dash-steps")
        tree.focus()
        await pilot.press("up")
        await wait_for(pilot, lambda: screen.step == "3/1", "step 3/1 chosen")
        out = screen.query_one("#dash-output", Static)
        await wait_for(pilot, lambda: LIVE_3_1.strip() in str(out.render()), "its output so far, from the engine")
        # An event repeating the end of what was read, then new text: each character shown once.
        api.queue.put_nowait(event("run.output", RUN_A, step="3/1", agent="software-developer",
                                   text=LIVE_3_1[-8:] + "NEXT", offset=len(LIVE_3_1) - 8))
        await wait_for(pilot, lambda: screen.outputs[(RUN_A, "3/1")] == LIVE_3_1 + "NEXT", "spliced once")
        # o reads it again from the engine (a read of the output route, naming the step).
        before = sum(1 for p, _q in api.reads if p == f"/v1/runs/{RUN_A}/output")
        await pilot.press("o")
        await wait_for(pilot, lambda: sum(1 for p, _q in api.reads if p == f"/v1/runs/{RUN_A}/output") > before,
                       "read again")
        assert next(q for p, q in reversed(api.reads) if p == f"/v1/runs/{RUN_A}/output") == {"step": "3/1"}
        assert screen.outputs[(RUN_A, "3/1")] == LIVE_3_1 + "NEXT"  # nothing lost or doubled


async def test_retry_step_asks_then_sends_the_selected_step_and_refuses_in_words_otherwise() -> None:
    api = FakeEngineApi()
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        await pilot.press("t")  # run A is running: not yet
        await wait_for(pilot, lambda: any("a step is retried once the run has stopped" in n for n in notes(app)),
                       "refused while running")
        await choose(pilot, screen, RUN_D)
        tree = screen.query_one("#dash-steps")
        tree.focus()
        await pilot.press("down")  # from step 3 (the running parent) to its stopped child
        await wait_for(pilot, lambda: screen.step == "3/1", "step 3/1 chosen")
        assert screen.steps["3/1"]["status"] == "stopped"
        await pilot.press("t")
        await settle(pilot)
        await pilot.press("n")  # not confirmed: nothing sent
        await settle(pilot)
        assert not [w for w in api.writes if w[1].endswith("/retry")]
        await pilot.press("t")
        await settle(pilot)
        await pilot.press("y")
        await wait_for(pilot, lambda: any(w[1].endswith("/retry") for w in api.writes), "retry sent")
        _, path, body, _ = next(w for w in api.writes if w[1].endswith("/retry"))
        assert path == f"/v1/runs/{RUN_D}/retry" and body == {"step": "3/1"}
        await wait_for(pilot, lambda: any("Retrying step 3/1" in n for n in notes(app)), "success notified")
        await wait_for(pilot, lambda: screen.runs[RUN_D]["state"] == "queued", "run read again")
        # A done step is not retried (said, nothing sent).
        tree.focus()
        for _ in range(3):
            await pilot.press("up")
        await wait_for(pilot, lambda: screen.step == "1", "step 1 chosen")
        screen.runs[RUN_D] = {**screen.runs[RUN_D], "state": "stopped"}
        await pilot.press("t")
        await wait_for(pilot, lambda: any("Step 1 is done" in n for n in notes(app)), "done step refused")
        assert sum(w[1].endswith("/retry") for w in api.writes) == 1
        entries = {a.title: a.help for a in screen.palette_actions()}
        assert entries["Dashboard: Retry"].startswith("t ·")
        assert "Dashboard: Output" in entries and "Dashboard: Latency" in entries


async def test_a_viewer_may_not_retry_a_step() -> None:
    api = FakeEngineApi()
    api.identity.as_user = "carol"  # a viewer (of project webshop): no runs.start
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        await choose(pilot, screen, RUN_D)
        await pilot.press("t")
        await wait_for(pilot, lambda: any("lacks runs.start" in n for n in notes(app)), "refusal shown")
        assert not [w for w in api.writes if w[1].endswith("/retry")]


async def test_provider_latency_is_the_engines_for_this_tenant_and_l_lists_it() -> None:
    api = FakeEngineApi()
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await ready(pilot, app)
        await wait_for(pilot, lambda: screen.provider_stats is not None, "stats read")
        assert "p95 2.3s claude-sonnet-4.6" in screen.engine_text().plain  # the slowest first
        await pilot.press("l")
        await wait_for(pilot, lambda: any("openai gpt-5.4: p50 900ms · p95 1.9s · 14 calls" in n
                                          for n in notes(app)), "latency listed")
        # A finished call marks the figures stale: they are read again at the next stats tick.
        reads = sum(1 for p, _q in api.reads if p == "/v1/providers/stats")
        api.runs.stats[1]["p95_ms"] = 4200.0
        api.queue.put_nowait(event("run.call", RUN_A, step="3/1", agent="software-developer", model="gpt-5.4",
                                   input_tokens=1, output_tokens=1, cost_usd="0.000001", latency_ms=4200.0,
                                   outcome="ok", replayed=False))
        await wait_for(pilot, lambda: sum(1 for p, _q in api.reads if p == "/v1/providers/stats") > reads,
                       "read again", deadline_s=30)
        await wait_for(pilot, lambda: "p95 4.2s gpt-5.4" in screen.engine_text().plain, "new figure")


async def test_an_engine_without_the_stats_route_falls_back_to_the_calls_seen() -> None:
    api = FakeEngineApi()

    class Old(type(api.runs)):  # type: ignore[misc]
        def answer(self, method: str, path: str, *a: object, **k: object) -> object:
            if path == "/v1/providers/stats":
                raise NotFound("no route GET /v1/providers/stats")
            return super().answer(method, path, *a, **k)

    api.runs = Old()
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        await settle(pilot)
        assert screen.provider_stats is None
        # Seeded with each step's last call: gpt-5.4's 3/1 at 1,940 ms is among them.
        await wait_for(pilot, lambda: "p95" in text_of(app) and "claude" in screen.engine_text().plain, "fallback")
