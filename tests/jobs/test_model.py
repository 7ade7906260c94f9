"""The job state machine, job ids and the progress-event coalescer (no engine)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from core.errors import BadRequest, Conflict
from core.jobs.coalesce import Coalescer
from core.jobs.model import STATES, TERMINAL, TRANSITIONS, Job, check_job_id, new_job_id

T0 = datetime(2026, 1, 1)


def job(state: str = "queued") -> Job:
    return Job(new_job_id(), "k", "t", None, state, "u", T0, T0)


def test_every_state_has_its_transitions_and_final_states_have_none() -> None:
    assert set(TRANSITIONS) == set(STATES)
    for s in TERMINAL:
        assert TRANSITIONS[s] == frozenset()
    assert all(to in STATES for tos in TRANSITIONS.values() for to in tos)


@pytest.mark.parametrize(("path"), [
    ["running", "done"], ["running", "failed"], ["running", "cancelling", "cancelled"], ["cancelled"],
    ["running", "interrupted", "queued", "running", "done"], ["interrupted", "cancelled"],
])
def test_allowed_paths(path: list[str]) -> None:
    j = job()
    for s in path:
        j.move(s)
    assert j.state == path[-1]


@pytest.mark.parametrize(("start", "to"), [
    ("done", "running"), ("failed", "queued"), ("cancelled", "running"), ("queued", "done"),
    ("interrupted", "running"), ("cancelling", "running"), ("queued", "cancelling"),
])
def test_refused_transitions_change_nothing(start: str, to: str) -> None:
    j = job(start)
    with pytest.raises(Conflict) as exc:
        j.move(to)
    assert j.state == start
    assert exc.value.extra["state"] == start


def test_job_ids() -> None:
    a, b = new_job_id(), new_job_id()
    assert a != b and check_job_id(a) == a
    for bad in ("", "j-123", "J-0123456789ab", "j-0123456789abc", "../x", "j-0123456789aZ"):
        with pytest.raises(BadRequest) as exc:
            check_job_id(bad)
        assert "job ids look like j-" in exc.value.message


def test_row_round_trip_and_rate() -> None:
    j = job("running")
    j.params, j.checkpoint, j.done, j.total, j.unit = {"n": 5}, {"count": 2}, 2, 10, "files"
    j.rate_since, j.rate_base = T0, 0
    again = Job.from_row(j.row())
    got = (again.params, again.checkpoint, again.done, again.total, again.unit)
    assert got == ({"n": 5}, {"count": 2}, 2, 10, "files")
    now = T0 + timedelta(seconds=2)
    assert j.rate(now) == 1.0 and j.eta_s(now) == 8.0
    assert j.as_json(now)["progress"] == {"done": 2, "total": 10, "unit": "files", "rate": 1.0, "eta_s": 8.0}


class Timer:
    def __init__(self, at: float, fn: Any) -> None:
        self.at, self.fn, self.cancelled = at, fn, False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock and call_later the test drives by hand."""

    def __init__(self) -> None:
        self.t = 0.0
        self.timers: list[Timer] = []

    def later(self, delay: float, fn: Any) -> Timer:
        timer = Timer(self.t + delay, fn)
        self.timers.append(timer)
        return timer

    def advance(self, dt: float) -> None:
        self.t += dt
        due = [x for x in self.timers if x.at <= self.t]
        self.timers = [x for x in self.timers if x.at > self.t]
        for timer in due:
            if not timer.cancelled:
                timer.fn()


def test_coalescer_emits_at_most_four_a_second_and_never_loses_the_last() -> None:
    clock = FakeClock()
    seen: list[int] = []
    value = [0]
    c = Coalescer(lambda: seen.append(value[0]), clock=lambda: clock.t, later=clock.later)
    for i in range(1, 10_001):  # 10,000 reports over 2 seconds
        value[0] = i
        c.report()
        clock.advance(0.0002)
    clock.advance(1.0)  # the pending emit fires
    assert seen[-1] == 10_000
    assert len(seen) == 9  # at 0, 0.25, ..., 2.0: one per 0.25 s
    assert seen == sorted(seen)


def test_coalescer_flush_emits_a_pending_report_and_close_drops_it() -> None:
    clock = FakeClock()
    seen: list[str] = []
    c = Coalescer(lambda: seen.append("x"), clock=lambda: clock.t, later=clock.later)
    c.report()
    c.report()  # within the interval: pending
    assert seen == ["x"]
    c.flush()
    assert seen == ["x", "x"]
    c.report()
    c.close()
    clock.advance(1.0)
    assert seen == ["x", "x"] and c.emitted == 2


async def test_progress_from_a_worker_thread_is_handed_to_the_loop() -> None:
    import asyncio
    import threading

    from core.jobs.handle import JobHandle

    loop_thread = threading.get_ident()
    seen: list[tuple[int, int | None, bool]] = []

    class Service:
        def progressed(self, j: Job) -> None:
            seen.append((j.done, j.total, threading.get_ident() == loop_thread))

    j = job("running")
    h = JobHandle(Service(), j)  # type: ignore[arg-type]
    await asyncio.to_thread(h.progress, 7, 10, "files")
    await asyncio.sleep(0.01)
    assert seen == [(7, 10, True)] and j.unit == "files"
    with pytest.raises(ValueError):
        h.progress(-1)
    with pytest.raises(ValueError):
        h.progress(True)


def test_a_result_must_be_a_json_object_or_none() -> None:
    from core.jobs.service import _bad_result

    assert _bad_result(None) is None and _bad_result({"n": 1}) is None
    assert "returned list" in str(_bad_result([1]))
    assert "not JSON" in str(_bad_result({"x": object()}))


def test_a_note_shows_while_the_job_runs_and_is_cleared_by_none() -> None:
    from core.jobs.handle import JobHandle

    reports: list[str | None] = []

    class Service:
        def progressed(self, j: Job) -> None:
            reports.append(j.message)

    j = job("running")
    h = JobHandle.__new__(JobHandle)  # no loop needed: note never hands off to one
    h._svc, h._job = Service(), j  # type: ignore[assignment]
    assert "message" not in j.as_json(T0)["progress"]
    h.note("waiting for the embedder re-embed to finish")
    h.note("waiting for the embedder re-embed to finish")  # unchanged: no second event
    assert j.as_json(T0)["progress"]["message"] == "waiting for the embedder re-embed to finish"
    j.state = "done"
    assert "message" not in j.as_json(T0)["progress"], "a finished job waits for nothing"
    j.state = "running"
    h.note(None)
    assert "message" not in j.as_json(T0)["progress"] and reports == [
        "waiting for the embedder re-embed to finish", None]
    h.note("x" * 500)
    assert len(j.as_json(T0)["progress"]["message"]) == 200
