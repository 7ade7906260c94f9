"""The Search screen's embedder line and its dialog (issue 19): which model serves this project's search.

A mixin of :class:`tui.screens.search.SearchScreen`.  ``GET /v1/tune/embedders`` is read in a
worker once the index status names the project, and again when a ``tune.embed`` /
``tune.activate`` job of the project ends; those jobs' ``job.state`` / ``job.progress`` events
(the app's stream, as the Dashboard's fine-tuning line gets them) show their progress on the
line and reach the open :class:`~tui.screens.embedder.EmbedderModal`.  An engine without the
routes (a 404 that is not about the project) hides the line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work
from textual.widgets import Static

from core.api import calls
from core.errors import NotFound
from tui.screens import embedder_view as view
from tui.screens.dashboard_jobs import ACTIVE
from tui.screens.search_view import in_words

if TYPE_CHECKING:
    from core.api.tune_embed import TunedEmbedders
    from tui.context import AppContext


class SearchEmbedder:
    """Mixin: the ``#search-embedder`` line, its loading, its job events and the ``v`` dialog."""

    ctx: AppContext
    embed: TunedEmbedders | None = None
    embed_job: dict[str, Any] | None = None
    embed_problem: str | None = None

    def embedder_line(self) -> Static:
        """Hidden until the engine said which model serves (no project, or no such routes: stays hidden)."""
        line = Static(view.line(None, None), id="search-embedder", markup=False)
        line.display = False
        return line

    def _embed_project(self) -> str | None:
        status = getattr(self, "status", None)
        return status.get("project") if status else None

    @work(group="search-embedder", exclusive=True, exit_on_error=False)
    async def load_embedder(self) -> None:
        """Read which model serves the project, and any tuning or activation job running."""
        line = self.query_one("#search-embedder", Static)  # type: ignore[attr-defined]
        try:
            data = await self.ctx.api.call(calls.tune_embedders())
        except NotFound as exc:
            if exc.extra.get("resource") == "project":
                self.embed, self.embed_problem = None, "no project here (musubi project add PATH)"
            else:  # an engine without embedder tuning: nothing to say
                line.display = False
                return
        except Exception as exc:  # in words on the line, and in F12
            self.report_failure(exc, "Embedder", notify=False)  # type: ignore[attr-defined]
            self.embed_problem = f"✘ {in_words(exc)}"
        else:
            self.embed, self.embed_problem = data, None
            job = data.get("job")
            if job is not None or (self.embed_job is not None and self.embed_job.get("state") in ACTIVE):
                self.embed_job = dict(job) if job else None
        line.display = True
        self.draw_embedder()

    def draw_embedder(self) -> None:
        self.query_one("#search-embedder", Static).update(  # type: ignore[attr-defined]
            view.line(self.embed, self.embed_job, self.embed_problem))

    def embedder_event(self, ev: dict[str, Any]) -> bool:
        """Apply a ``job.*`` event of this project's tuning or activation; True when it was one."""
        job = ev.get("job") or {}
        if not view.ours(job, self._embed_project()):
            return False
        known = self.embed_job
        if ev.get("type") == "job.progress" and known and known.get("id") == job.get("id") \
                and known.get("state") not in ACTIVE:
            return True  # a late progress event never undoes the outcome
        self.embed_job = dict(job)
        self.draw_embedder()
        from tui.screens.embedder import EmbedderModal

        modal = next((s for s in self.app.screen_stack if isinstance(s, EmbedderModal)), None)  # type: ignore[attr-defined]
        if modal is not None:
            modal.job_event(dict(job))
        if ev.get("type") == "job.state" and job.get("state") not in ACTIVE:
            if job.get("state") == "done":
                self.load_status()  # type: ignore[attr-defined]  # an activation: the index names the new model
            self.load_embedder()
        return True

    def embedder_audit(self, ev: dict[str, Any]) -> bool:
        """A version of this project deleted, by this client or another: True when ``ev`` was that audit
        event.  A delete starts no job, so no ``job.*`` event says it; its audit event does (seen by those
        who may read the audit log; for the others the versions are read again when the dialog opens)."""
        inner = ev.get("event") or {}
        project = self._embed_project()
        if (ev.get("type") != "audit" or inner.get("action") != "tune.delete" or not project
                or inner.get("resource") != f"project:{project}" or inner.get("outcome") != "success"):
            return False
        self.load_embedder()
        from tui.screens.embedder import EmbedderModal

        modal = next((s for s in self.app.screen_stack if isinstance(s, EmbedderModal)), None)  # type: ignore[attr-defined]
        if modal is not None:
            modal.load()
        return True

    def action_embedder(self) -> None:
        project = self._embed_project()
        if not project:
            self.notify("No project here: embedder versions belong to a registered, indexed project "  # type: ignore[attr-defined]
                        "(musubi project add PATH, then i indexes it).", title="Embedder", severity="warning")
            return
        from tui.screens.embedder import EmbedderModal

        def closed(_result: None) -> None:
            self.load_embedder()

        self.app.push_screen(EmbedderModal(project, self.embed), closed)  # type: ignore[attr-defined]
