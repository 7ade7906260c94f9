"""The Search screen's index panel never moves a job backwards: a status read or a start answer that was
taken before a newer progress event arrived is older news (seen as a flaky snapshot under load)."""

from __future__ import annotations

from tests.tui.fake_search import job_row
from tui.screens.search import _behind


def test_an_older_view_of_the_same_job_is_behind() -> None:
    running = job_row("job-1", "running", 3, 4)
    assert _behind(job_row("job-1", "queued", 0, None), running)
    assert _behind(job_row("job-1", "running", 2, 4), running)
    assert not _behind(job_row("job-1", "running", 3, 4), running)  # the same view again is shown
    assert not _behind(job_row("job-1", "running", 4, 4), running)
    assert not _behind(job_row("job-1", "done", 4, 4), running)
    assert not _behind(job_row("job-2", "queued", 0, None), running), "another job is never behind"
    assert not _behind(running, None)
