"""The Dashboard's CI line: the pipeline of the git ref the selected run built on (issue 17 gaps).

``GET /v1/runs/{id}/pipeline`` (``calls.run_pipeline``) is read in a worker when a run is
selected and again on the ``i`` key (binding id ``dash_pipeline``); the event loop never waits
on the vendor.  One line under the run's step info says, in words and a symbol, one of: not
configured, no ref recorded, no pipeline, running, passed, failed, canceled, unknown, or the
vendor's error; with the system, ref, commit and the pipeline's address.  Kept apart from the
Dashboard's own modules so its hooks there are a few lines (docs/tui.md#dashboard).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.content import Content
from textual.widgets import Static

from core.api import calls
from core.errors import MusubiError, NotFound

if TYPE_CHECKING:
    from core.api.integrations import RunPipeline
    from tui.context import AppContext

# state -> (symbol, word, style): every state has a word, so colour is never the only signal
STATES: dict[str, tuple[str, str, str]] = {
    "not_configured": ("○", "CI not configured", "dim"),
    "no_ref": ("○", "no git ref recorded", "dim"),
    "no_pipeline": ("○", "no pipeline", "dim"),
    "running": ("◐", "running", "$warning"),
    "passed": ("✔", "passed", "$success"),
    "failed": ("✘", "failed", "$error"),
    "canceled": ("■", "canceled", "$warning"),
    "unknown": ("?", "unknown", "dim"),
    "error": ("!", "cannot read", "$error"),
}
HINTS = {
    "not_configured": "set one up: musubi integrations set gitlab|github|ado ...",
    "no_ref": "link one: musubi integrations link-run RUN BRANCH",
}


class PipelineLine(Static):
    """One line: the CI state of the selected run's ref."""


def pipeline_text(d: RunPipeline | None, *, loading: bool = False, error: str | None = None) -> Content:
    """The line for an answer (or while loading, or when the engine refused)."""
    if error is not None:
        return Content.from_markup("CI: [$error]! $error_text[/]", error_text=error)
    if d is None:
        return Content("CI: reading…" if loading else "CI: select a run")
    symbol, word, style = STATES.get(d["state"], STATES["unknown"])
    where = " ".join(x for x in (d["system"] or "", d["ref"] or "", (d["sha"] or "")[:10]) if x)
    pipe = d["pipeline"]
    detail = f"{pipe['name'] or 'pipeline'} {pipe['id']} {pipe['url']}" if pipe else HINTS.get(d["state"], d["message"])
    return Content.from_markup(f"CI: [{style}]$symbol $word[/]  $where  [dim]$detail[/]" + ("  (refreshing)" if loading
                                                                                          else ""),
                               symbol=symbol, word=word, where=where, detail=detail)


class PipelinePanel:
    """Mixin of the Dashboard: its CI line, loaded per selected run and on ``i``."""

    ctx: AppContext
    selected: str | None
    pipelines: dict[str, RunPipeline]

    def pipeline_line(self) -> PipelineLine:
        self.pipelines = {}
        return PipelineLine(pipeline_text(None), id="dash-pipeline")

    def show_pipeline(self, run_id: str | None) -> None:
        """The selected run changed: show what is known of its ref at once, then ask the engine."""
        known = self.pipelines.get(run_id or "")
        self._pipeline_paint(pipeline_text(known, loading=run_id is not None))
        if run_id is not None and self.ctx.conn.name == "connected":
            self.load_pipeline(run_id)

    def action_refresh_pipeline(self) -> None:
        if self.selected is None:
            self.notify("Select a run first: its CI pipeline shows under its steps.",  # type: ignore[attr-defined]
                        title="CI pipeline")
            return
        self.show_pipeline(self.selected)

    def _pipeline_paint(self, text: Content) -> None:
        try:
            self.query_one("#dash-pipeline", PipelineLine).update(text)  # type: ignore[attr-defined]
        except Exception:  # the screen is going: nothing to paint
            return

    @work(exclusive=True, group="dashboard-pipeline", exit_on_error=False)
    async def load_pipeline(self, run_id: str) -> None:
        try:
            answer = await self.ctx.api.call(calls.run_pipeline(run_id))
        except MusubiError as exc:
            self.report_failure(exc, "CI pipeline", notify=False)  # type: ignore[attr-defined]
            if run_id == self.selected:
                why = "this engine has no pipeline route (upgrade it)" if isinstance(exc, NotFound) and \
                    exc.code == "not_found" else exc.message
                self._pipeline_paint(pipeline_text(None, error=why))
            return
        self.pipelines[run_id] = answer
        if run_id == self.selected:
            self._pipeline_paint(pipeline_text(answer))
