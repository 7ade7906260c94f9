"""The Dashboard's fine-tuning line: the tenant's fine-tuning jobs live (issue 19).

Provider fine-tuning (job kind ``tune.provider``) and the local embedder's training and activation
(``tune.embed``, ``tune.activate``) are background jobs (core/jobs): their ``job.state`` and
``job.progress`` events already reach the Dashboard on the app's stream, and ``GET /v1/jobs`` is
read in a worker when the screen mounts or the engine (re)connects.  Events only change the model
and mark the line; the Dashboard's repaint timer draws it, like the rest of the screen.

One line under the runs list, shown only when there is a job to show: the active jobs first
(``↻ t-0123456789ab running · 2/4 stages``), else the latest finished one with its outcome (the
registered model, or the vendor's error), kept until ``d`` dismisses it or a newer job replaces it.
``j`` (binding id ``dash_jobs``) lists them in full.  Symbols and words carry every state, so the
line reads the same in NO_COLOR and 16 colours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from textual import work
from textual.content import Content
from textual.widgets import Static

from core.api import calls
from core.errors import MusubiError, NotFound

if TYPE_CHECKING:
    from core.api.responses import Job
    from tui.context import AppContext

KINDS: dict[str, str] = {"tune.provider": "fine-tune", "tune.embed": "embedder training",
                         "tune.activate": "embedder activation"}
ACTIVE = frozenset({"queued", "running", "cancelling", "interrupted"})
VENDOR_FAILED = re.compile(r"^the provider's fine-tuning job \S+ failed: ")
LIMIT = 50  # jobs read at start (the engine's newest first); the tuning ones are kept
# state -> (symbol, style): the word is the state itself
STATES: dict[str, tuple[str, str]] = {
    "queued": ("○", "$text-muted"), "running": ("↻", "$accent"), "cancelling": ("⊘", "$warning"),
    "interrupted": ("↯", "$warning"), "done": ("✔", "$success"), "failed": ("✘", "$error"),
    "cancelled": ("⊘", "$text-muted"),
}


class JobsLine(Static):
    """One line: the tenant's fine-tuning jobs (hidden while there are none)."""


def label(job: Mapping[str, Any]) -> str:
    """``t-0123456789ab`` for a provider job (its fine-tuning id), else the kind's word and the job id."""
    params = job.get("params") or {}
    if job.get("kind") == "tune.provider" and params.get("tune"):
        return str(params["tune"])
    return f"{KINDS.get(str(job.get('kind')), str(job.get('kind')))} {job.get('id')}"


def progress(job: Mapping[str, Any]) -> str:
    p = job.get("progress") or {}
    done, total, unit = p.get("done"), p.get("total"), p.get("unit") or ""
    note = str(p.get("message") or "")  # what the job waits for, while it does (docs/jobs.md)
    if not done and not total:
        return note
    text = f"{done}/{total} {unit}".strip() if total else f"{done} {unit}".strip()
    return f"{text} · {note}" if note else text


def outcome(job: Mapping[str, Any]) -> str:
    """What a finished job left: the registered model, the embedder's decision, or the error."""
    if job.get("state") == "failed":
        # core/finetune/service.py words a vendor's failure "the provider's fine-tuning job ID failed: CODE: MSG":
        # the line keeps CODE: MSG (80 columns cut the rest); j shows the whole message.
        return VENDOR_FAILED.sub("", str(job.get("error") or "no reason given"))
    result = job.get("result") or {}
    if job.get("state") == "cancelled":
        return f"cancelled by {job['cancelled_by']}" if job.get("cancelled_by") else "cancelled"
    model = result.get("registered_model") or result.get("fine_tuned_model")
    if model:
        return f"model {model}"
    if result.get("decision"):
        return f"{result.get('decision')}" + (f" (version {result['version']})" if result.get("version") else "")
    return "done"


def job_text(job: Mapping[str, Any]) -> Content:
    state = str(job.get("state"))
    sym, style = STATES.get(state, ("?", "$text"))
    extra = progress(job) if state in ACTIVE else outcome(job)
    return Content.from_markup(f"[{style}]$sym $state[/] $label" + (" · $extra" if extra else ""),
                               sym=sym, state=state, label=label(job), extra=extra)


def shown(jobs: Iterable[Job], dismissed: set[str]) -> tuple[list[Job], Job | None]:
    """The active jobs (newest first) and, with none, the latest finished one not dismissed."""
    rows = sorted(jobs, key=lambda j: (j["created_at"], j["id"]), reverse=True)
    active = [j for j in rows if j["state"] in ACTIVE]
    last = next((j for j in rows if j["state"] not in ACTIVE), None)
    if active or last is None or last["id"] in dismissed:
        return active, None
    return active, last


def line_text(jobs: Iterable[Job], dismissed: set[str]) -> Content | None:
    """The line (None: nothing to show)."""
    active, last = shown(jobs, dismissed)
    if not active and last is None:
        return None
    head = Content.styled("Fine-tuning: ", "bold")
    if last is not None:
        return head + job_text(last) + Content("  (j details · d dismiss)")
    more = f"  +{len(active) - 1} more (j)" if len(active) > 1 else "  (j details)"
    return head + job_text(active[0]) + Content(more)


def details(jobs: Iterable[Job]) -> str:
    """Every tuning job known here, one per line, in full (the ``j`` key)."""
    rows = sorted(jobs, key=lambda j: (j["created_at"], j["id"]), reverse=True)
    return "\n".join(f"{job_text(j).plain}  [{j['id']}, {j['kind']}, since {j['created_at'][:16]}]"
                     + (f"\n  {j['error']}" if j["error"] else "") for j in rows[:10]) \
        + "\nmusubi tune status TUNE_ID shows a provider job's events."


class JobsPanel:
    """Mixin of the Dashboard: its fine-tuning line, from ``GET /v1/jobs`` and the ``job.*`` events."""

    ctx: AppContext
    tune_jobs: dict[str, Job]

    def jobs_line(self) -> JobsLine:
        self.tune_jobs = {}
        self.jobs_dismissed: set[str] = set()
        self.jobs_error: str | None = None
        line = JobsLine("", id="dash-jobs", markup=False)
        line.display = False
        return line

    def job_event(self, ev: Mapping[str, Any]) -> bool:
        """Apply a ``job.state``/``job.progress`` event of a tuning kind; True when the line changed."""
        job = ev.get("job")
        if not isinstance(job, dict) or job.get("kind") not in KINDS:
            return False
        before = self.tune_jobs.get(job["id"])
        if ev.get("type") == "job.progress" and before is not None and before["state"] not in ACTIVE:
            return False  # a late progress event never undoes the outcome
        self.tune_jobs[job["id"]] = job  # type: ignore[assignment]
        return True

    @work(exclusive=True, group="dashboard-jobs", exit_on_error=False)
    async def load_jobs(self) -> None:
        """The tenant's recent jobs; the tuning ones are kept (events keep them current afterwards)."""
        try:
            rows: list[Job] = await self.ctx.api.call(calls.get("/v1/jobs", limit=LIMIT))
        except NotFound:  # an engine without background jobs: nothing to show
            rows = []
        except MusubiError as exc:
            self.report_failure(exc, "Fine-tuning jobs", notify=False)  # type: ignore[attr-defined]
            return
        self.tune_jobs = {j["id"]: j for j in rows if j["kind"] in KINDS}
        self.jobs_changed()

    def jobs_changed(self) -> None:
        """The line's model changed (the screen marks it for the next repaint)."""

    def paint_jobs(self) -> None:
        line = self.query_one("#dash-jobs", JobsLine)  # type: ignore[attr-defined]
        text = line_text(self.tune_jobs.values(), self.jobs_dismissed)
        line.display = text is not None
        line.update(text or "")

    def action_jobs(self) -> None:
        if not self.tune_jobs:
            self.notify("No fine-tuning jobs in this tenant. Start one: musubi tune submit or musubi tune "  # type: ignore[attr-defined]
                        "embedder.", title="Fine-tuning")
            return
        self.notify(details(self.tune_jobs.values()), title="Fine-tuning jobs", timeout=15)  # type: ignore[attr-defined]

    def action_jobs_dismiss(self) -> None:
        _active, last = shown(self.tune_jobs.values(), self.jobs_dismissed)
        if last is None:
            self.notify("No finished fine-tuning job on the Dashboard to dismiss.",  # type: ignore[attr-defined]
                        title="Fine-tuning")
            return
        self.jobs_dismissed.add(last["id"])
        self.jobs_changed()
