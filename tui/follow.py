"""Follow a background job from the CLI: a rich progress bar fed by the engine's event stream.

Any long command reuses this (``musubi index``, later ``musubi run``; ``musubi jobs show
--follow`` today)::

    job = state.client().post("/v1/index", {...})    # the route answers the queued job
    follow(state, job, detach=detach)                  # returns the final job, exits 1 unless done

How it works: subscribe to ``GET /v1/events?types=job.state,job.progress`` first, then read
the job once (so nothing between the two is missed), then draw each event of that job
until it reaches a final state.  ``--detach`` prints the job id and returns at once.

The job belongs to the engine, never to this process: when the terminal goes (SIGHUP, a
lost SSH link) or the user presses Ctrl-C, only the follower stops; the job runs on, and
``musubi jobs show ID`` finds it again.  Exit code: 0 when the job is done, 1 when it
failed, was cancelled or interrupted, or the stream was lost; 130 on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from core.api.calls import path_segment
from core.errors import EngineUnavailable, MusubiError
from tui.output import CliState, emit, line, warn

if TYPE_CHECKING:
    import http.client

FINAL = frozenset({"done", "failed", "cancelled"})
ENDED = FINAL | {"interrupted"}
STREAM_TIMEOUT_S = 45.0  # the engine sends a keep-alive every 15 s
EXIT_INTERRUPTED = 130


class _HangUp(Exception):
    """The terminal went away (SIGHUP): stop following quietly."""


def progress_text(job: dict[str, Any]) -> str:
    """``270/1,000 steps`` (or ``12 files`` while the total is unknown), then what the job waits for, if it does."""
    p = job["progress"]
    total = f"/{p['total']:,}" if p.get("total") is not None else ""
    note = f" · {p['message']}" if p.get("message") else ""
    return f"{p['done']:,}{total} {p['unit']}{note}"


def _hint(job: dict[str, Any]) -> str:
    return f"see it with: musubi jobs show {job['id']}; cancel it with: musubi jobs cancel {job['id']}"


def _events(resp: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    """Parsed ``data`` of each server-sent event until the stream ends."""
    data: list[str] = []
    while True:
        raw = resp.readline()
        if not raw:
            return
        text = raw.decode("utf-8").rstrip("\n")
        if text.startswith("data: "):
            data.append(text[6:])
        elif text == "" and data:
            yield json.loads("\n".join(data))
            data = []


def follow(state: CliState, job: dict[str, Any], *, detach: bool = False) -> dict[str, Any]:
    """Show ``job`` until it ends (or only its id with ``detach``); exit 1 unless it is done.

    Returns the job as last seen.  With ``--json`` nothing but the final job (or, detached,
    the job as started) is printed on stdout.
    """
    if detach:
        emit(state, job, lambda j: line(f"started job {j['id']} ({j['kind']}); it runs in the engine. {_hint(j)}"))
        return job
    old = signal.getsignal(signal.SIGHUP)

    def hang_up(_sig: int, _frame: Any) -> None:
        raise _HangUp

    signal.signal(signal.SIGHUP, hang_up)
    try:
        final = _watch(state, job)
    except _HangUp:
        raise click.exceptions.Exit(1) from None  # nobody is left to read a message; the job runs on
    except KeyboardInterrupt:
        warn(f"stopped following job {job['id']}; it keeps running in the engine. {_hint(job)}")
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGHUP, old)
    _report(state, final)
    return final


def _watch(state: CliState, job: dict[str, Any]) -> dict[str, Any]:
    """Until the job ends: the progress bar on a terminal, nothing otherwise (or with --json)."""
    client = state.client()
    client.timeout = STREAM_TIMEOUT_S
    url = f"/v1/jobs/{path_segment(job['id'])}"
    try:
        with client.stream("GET", "/v1/events", query={"types": "job.state,job.progress"}) as resp:
            job = client.get(url)  # after subscribing: no event between the two is missed
            if job["state"] in ENDED:
                return job
            with _Bar(job, enabled=not state.json and sys.stderr.isatty()) as bar:
                for ev in _events(resp):
                    if ev.get("type") == "stream.closed":
                        break
                    got = ev.get("job") or {}
                    if got.get("id") != job["id"]:
                        continue
                    job = got
                    bar.update(job)
                    if job["state"] in ENDED:
                        return job
    except (EngineUnavailable, OSError) as exc:
        raise MusubiError(f"lost the engine's event stream ({exc}); the job may still be running. {_hint(job)}",
                          code="engine_unavailable") from None
    # The stream ended first (the engine is stopping): say where the job stands now.
    with contextlib.suppress(MusubiError):
        job = client.get(url)
    if job["state"] not in ENDED:
        raise MusubiError(f"the engine closed the event stream while job {job['id']} was {job['state']}; "
                          f"it resumes when the engine runs again. {_hint(job)}", code="engine_unavailable")
    return job


def _report(state: CliState, job: dict[str, Any]) -> None:
    def human(j: dict[str, Any]) -> None:
        if j["state"] == "done":
            line(f"job {j['id']} ({j['kind']}) done: {progress_text(j)}.")
        else:
            why = j.get("error") or "no reason given"
            warn(f"job {j['id']} ({j['kind']}) {j['state']} at {progress_text(j)}: {why}")

    emit(state, job, human)
    if job["state"] != "done":
        raise click.exceptions.Exit(1)


class _Bar:
    """A rich progress bar on stderr (stdout stays for results), or nothing."""

    def __init__(self, job: dict[str, Any], *, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None
        self._job = job

    def __enter__(self) -> _Bar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[text]}"),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=Console(stderr=True),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(f"{self._job['kind']} {self._job['id']}", total=None,
                                                 text="", rate="")
            self.update(self._job)
        return self

    def update(self, job: dict[str, Any]) -> None:
        if self._progress is None:
            return
        p = job["progress"]
        rate = f"{p['rate']:,.1f} {p['unit']}/s" if p.get("rate") else job["state"]
        self._progress.update(self._task, completed=p["done"], total=p.get("total"), text=progress_text(job),
                              rate=rate)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)
