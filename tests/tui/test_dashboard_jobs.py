"""The Dashboard's fine-tuning line (issue 19), on the fake engine: read from ``GET /v1/jobs`` in a worker, kept
current by ``job.state`` / ``job.progress`` events, the outcome (model or vendor error) kept until dismissed."""

from __future__ import annotations

from tests.tui.conftest import wait_for
from tests.tui.fake_jobs import event, job
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tests.tui.test_dashboard_runs import ready
from tui.app import MusubiApp
from tui.screens.dashboard_jobs import JobsLine, line_text

TUNE = "t-0123456789ab"
ERROR = "the provider's fine-tuning job ftjob-abc failed: invalid_training_file: line 3 has no assistant message"


def line(app: MusubiApp) -> str:
    w = app.screen.query_one("#dash-jobs", JobsLine)
    return str(w.render()) if w.display else ""


async def test_a_job_event_updates_the_line_and_a_failure_shows_the_vendors_error() -> None:
    api = FakeEngineApi()
    api.jobs.jobs = [job("j-00000000000a", "tune.provider", "running", done=1, total=4, tune=TUNE),
                     job("j-00000000000b", "index", "running", done=5, total=9, unit="files")]
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        await wait_for(pilot, lambda: TUNE in line(app), "the running job from GET /v1/jobs")
        assert "↻ running" in line(app) and "1/4 stages" in line(app) and "index" not in line(app)
        assert ("/v1/jobs", {"limit": "50"}) in [(p, {k: str(v) for k, v in (q or {}).items()}) for p, q in api.reads]
        api.queue.put_nowait(event("job.progress", job("j-00000000000a", "tune.provider", "running", done=3,
                                                       total=4, tune=TUNE)))
        await wait_for(pilot, lambda: "3/4 stages" in line(app), "the progress event")
        failed = job("j-00000000000a", "tune.provider", "failed", done=3, total=4, tune=TUNE, error=ERROR)
        api.queue.put_nowait(event("job.state", failed))
        await wait_for(pilot, lambda: "✘ failed" in line(app), "the failure")
        assert "· invalid_training_file: line 3" in line(app)  # the vendor's code first, in 80 columns
        # A progress event arriving late never undoes the outcome.
        api.queue.put_nowait(event("job.progress", job("j-00000000000a", "tune.provider", "running", done=3,
                                                       total=4, tune=TUNE)))
        await pilot.pause(0.3)
        await wait_for(pilot, lambda: "✘ failed" in line(app), "the failure kept")
        app.screen.query_one("#dash-runs").focus()
        await pilot.press("j")
        await wait_for(pilot, lambda: any(ERROR in str(n.message) for n in app._notifications), "j: the whole error")
        app.screen.query_one("#dash-runs").focus()
        await pilot.press("d")
        await wait_for(pilot, lambda: line(app) == "", "dismissed")


async def test_a_new_job_appears_from_events_and_its_model_stays_after_success() -> None:
    api = FakeEngineApi()
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        assert line(app) == ""  # no tuning job: no line
        api.queue.put_nowait(event("job.state", job("j-00000000000c", "tune.embed", "running", done=10, total=100,
                                                    unit="steps")))
        await wait_for(pilot, lambda: "embedder training j-00000000000c" in line(app), "the new job")
        api.queue.put_nowait({**event("job.state", job("j-00000000000c", "tune.embed", "done")), "tenant": "other"})
        await pilot.pause(0.3)
        assert "10/100 steps" in line(app)  # another tenant's event changes nothing
        done = job("j-00000000000d", "tune.provider", "done", tune=TUNE,
                   result={"registered_model": "ft:gpt-4.1-mini:acme:sdd:abc123"})
        api.queue.put_nowait(event("job.state", job("j-00000000000c", "tune.embed", "done",
                                                    result={"decision": "activated", "version": 2})))
        api.queue.put_nowait(event("job.state", {**done, "created_at": "2026-01-15T14:31:00.000000Z"}))
        await wait_for(pilot, lambda: "ft:gpt-4.1-mini:acme:sdd:abc123" in line(app), "the newest outcome")
        assert "✔ done" in line(app)
        app.screen.query_one("#dash-runs").focus()
        await pilot.press("j")
        await wait_for(pilot, lambda: any("activated (version 2)" in str(n.message) for n in app._notifications),
                       "j lists every job")


def test_line_reads_without_colour_and_hides_with_nothing() -> None:
    assert line_text([], set()) is None
    failed = job("j-00000000000e", "tune.activate", "failed", error="re-embedding failed: disk full")
    text = line_text([failed], set())  # type: ignore[list-item]
    assert text is not None and "✘ failed embedder activation j-00000000000e · re-embedding failed" in text.plain
    assert line_text([failed], {"j-00000000000e"}) is None  # type: ignore[list-item]
