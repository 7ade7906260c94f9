"""Embedder versions (issue 19): the Search screen's dialog over the project's tuned embedders.

Opened with **v** on the Search screen (binding id ``search_embedder``, palette "Search: Embedder
versions").  It lists ``GET /v1/tune/embedders`` (``calls.tune_embedders``) and, with a key, a
palette entry and a binding id each: **t** starts a tuning job (``calls.tune_embed_start`` with the
budget field, checked here against the engine's range), **a** activates the highlighted version,
**r** rolls back.  Every call runs in a worker (tui/workers.py); a refusal (permission, bad input,
no project, a job already running, a version the rule kept out) shows in the dialog's message line
and as a notification, never a traceback.  The jobs' progress comes from the engine's
``job.*`` events, which the Search screen forwards (:meth:`EmbedderModal.job_event`).
**x** deletes the highlighted version's files (``calls.tune_embed_delete``) after a confirm dialog
(tui/screens/modals.py); its row stays, shown deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Label, Static

from core.api import calls
from tui.context import AppContext, app_ctx
from tui.screens import embedder_view as view
from tui.screens.actions import PaletteAction, node_actions, palette_entry, refuse_if_not_allowed
from tui.screens.base import DIALOG_CSS, STYLES
from tui.screens.dashboard_jobs import ACTIVE
from tui.screens.modals import ConfirmModal
from tui.screens.search_view import in_words
from tui.workers import WorkerContract

if TYPE_CHECKING:
    from core.api.tune_embed import TunedEmbedder, TunedEmbedders

COLUMNS = ("V", "STATE", "CREATED", "PAIRS", "BASE R1/R10/MRR", "TUNED R1/R10/MRR")


class EmbedderModal(WorkerContract, ModalScreen[None]):
    """The project's embedder versions, with tune / activate / roll back."""

    CSS_PATH: ClassVar[Any] = [DIALOG_CSS, STYLES / "embedder.tcss"]
    WORKER_TITLES: ClassVar[dict[str, str]] = {
        "embedder-list": "Embedder versions", "embedder-write": "Embedder",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "tune", "Tune", id="embedder_tune"),
        Binding("a", "activate", "Activate", id="embedder_activate"),
        Binding("r", "rollback", "Roll back", id="embedder_rollback"),
        Binding("x", "delete", "Delete", id="embedder_delete"),
        Binding("b", "budget", "Budget", id="embedder_budget"),
        Binding("escape", "close", "Close", id="embedder_close"),
    ]
    HELP = (
        "Embedder versions: the tuned embedders of this project, newest first; ▶ marks the one serving search. "
        "t tunes a new version within the budget (b edits it; 60 to 86,400 s), a activates the highlighted "
        "version (the index is re-embedded while search keeps serving the current model), r rolls back to the "
        "model that served before. A version serves only if its held-out R@10 rose by 0.01 and MRR did not drop."
        " x deletes the highlighted version's files for good (it asks first; the version stays listed as deleted)."
    )

    def __init__(self, project: str, data: TunedEmbedders | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.project = project
        self.data: TunedEmbedders | None = data
        job = data.get("job") if data else None
        self.job: dict[str, Any] | None = dict(job) if job else None
        self.message = ""

    @property
    def ctx(self) -> AppContext:
        return app_ctx(self)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide", id="embedder-dialog"):
            yield Static(f"Embedder versions · {self.project}", classes="dialog-title", markup=False)
            yield Static("", id="embedder-serving", markup=False)
            yield DataTable(id="embedder-table", cursor_type="row", zebra_stripes=False)
            yield Static("", id="embedder-details", markup=False)
            with Horizontal(id="embedder-budget-row"):
                yield Label("Budget (s):")
                yield Input(str(view.default_budget()), id="embedder-budget", restrict=r"[0-9,_]*", max_length=7)
            yield Static("", id="embedder-message", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*COLUMNS)
        self.query_one("#embedder-budget", Input).cursor_blink = self.ctx.animations
        table.focus()
        self._draw()
        self.load()

    # -- data -----------------------------------------------------------------------------

    @work(group="embedder-list", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        try:
            data = await self.ctx.api.call(calls.tune_embedders())
        except Exception as exc:  # in words, in place, and in F12
            self.report_failure(exc, "Embedder versions", notify=False)
            self._say(f"✘ could not read the versions: {in_words(exc)}")
            return
        self.data = data
        job = data.get("job")
        if job is not None:
            self.job = dict(job)
        elif self.job is not None and self.job["state"] in ACTIVE:
            self.job = None  # the engine says nothing runs now
        self._draw()

    def job_event(self, job: dict[str, Any]) -> None:
        """A ``tune.embed``/``tune.activate`` job of this project changed (forwarded by the Search screen)."""
        self.job = job
        self._draw()
        if job.get("state") not in ACTIVE:
            result = job.get("result") or {}
            if job.get("state") == "done" and result.get("decision"):
                self._say(f"v{result.get('version')}: {result['decision']}")
            elif job.get("state") == "failed":
                self._say(f"✘ {job.get('kind')} failed: {job.get('error') or 'no reason given'}")
            self.load()

    # -- drawing --------------------------------------------------------------------------

    def _draw(self) -> None:
        data = self.data
        self.query_one("#embedder-serving", Static).update(
            view.line(data, self.job).removesuffix(" · v versions").replace("Embedder: ", "Serving: ", 1))
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        if data is not None:
            for cells in view.rows(data):
                table.add_row(*cells)
            if table.row_count:
                table.move_cursor(row=min(max(row, 0), table.row_count - 1))
        self._details()

    def selected(self) -> TunedEmbedder | None:
        table = self.query_one(DataTable)
        if self.data is None or not self.data["versions"] or not 0 <= table.cursor_row < table.row_count:
            return None
        return self.data["versions"][table.cursor_row]

    def _details(self) -> None:
        serving = self.data["serving"] if self.data else 0
        text = view.details(self.selected(), serving) if self.data is not None else "Loading the versions…"
        self.query_one("#embedder-details", Static).update(text)

    @on(DataTable.RowHighlighted, "#embedder-table")
    def _highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._details()

    def _say(self, text: str) -> None:
        self.message = text
        self.query_one("#embedder-message", Static).update(text)

    # -- actions --------------------------------------------------------------------------

    def _refused(self, binding_id: str) -> bool:
        if refuse_if_not_allowed(self, self.ctx, binding_id):
            self._say("✘ not allowed: you lack embedder.tune here (the notification says who can grant it)")
            return True
        if self.job is not None and self.job.get("state") in ACTIVE:
            self._say(f"✘ {self.job.get('kind')} job {self.job.get('id')} is still running: wait for it, "
                      "or cancel it with: musubi jobs cancel " + str(self.job.get("id")))
            return True
        return False

    def action_tune(self) -> None:
        value = self.query_one("#embedder-budget", Input).value
        problem = view.budget_error(value)
        if problem is not None:
            self._say(f"✘ budget: {problem}; b edits it")
            return
        if self._refused("embedder_tune"):
            return
        budget = int(value.replace(",", "").replace("_", ""))
        self._say(f"starting a tuning job (budget {budget:,} s)…")
        self.send(calls.tune_embed_start(budget), "Tune")

    def action_activate(self) -> None:
        v = self.selected()
        if v is None:
            self._say("✘ no version to activate: t tunes one first")
            return
        if self._refused("embedder_activate"):
            return
        n = v["version"]
        if v["state"] not in ("ready", "retired") or self.data is None or self.data["serving"] == n:
            self._activate(n)  # nothing would change: the engine's refusal says why, no question first
            return
        self._confirm(f"Activate v{n} for {self.project}?", view.switch_words(f"tuned v{n}", self.data),
                      "Activate", partial(self._activate, n))

    def _activate(self, n: int) -> None:
        self._say(f"activating v{n}…")
        self.send(calls.tune_embed_activate(n), "Activate")

    def action_rollback(self) -> None:
        if self._refused("embedder_rollback"):
            return
        if self.data is None or not self.data["serving"]:
            self._rollback()  # the base model serves: nothing to roll back, the engine says so
            return
        target = view.rollback_target(self.data)
        self._confirm(f"Roll back {self.project} to {target}?", view.switch_words(target, self.data),
                      "Roll back", self._rollback)

    def _rollback(self) -> None:
        self._say("rolling back…")
        self.send(calls.tune_embed_rollback(), "Roll back")

    def action_delete(self) -> None:
        v = self.selected()
        if v is None:
            self._say("✘ no version to delete")
            return
        if refuse_if_not_allowed(self, self.ctx, "embedder_delete"):
            self._say("✘ not allowed: you lack embedder.tune here (the notification says who can grant it)")
            return
        n = v["version"]
        if v["state"] == "deleted":
            self._say(f"✘ v{n} is already deleted")
            return
        if self.data is not None and n == self.data["serving"]:
            self._say(f"✘ v{n} serves search: roll back (r) or activate another version (a) first, then delete it")
            return
        size = (v["files_bytes"] + (v["vectors_bytes"] or 0)) / 1e6
        body = (f"Its model, training data and vectors ({size:.1f} MB) are removed for good. Its record (what it "
                "was trained on, its measures) stays in the list as deleted; it can no longer be activated.")

        def delete() -> None:
            self._say(f"deleting v{n}…")
            self.send(calls.tune_embed_delete(n), "Delete")

        self._confirm(f"Delete embedder version v{n}?", body, "Delete", delete, danger=True)

    def _confirm(self, title: str, body: str, label: str, then: Callable[[], None], *, danger: bool = False) -> None:
        """Ask first (tui/screens/modals.py); only y or the button goes on, n and escape change nothing."""
        def answered(yes: bool | None) -> None:
            if yes:
                then()
            else:
                self._say(f"{label}: cancelled, nothing changed")

        self.app.push_screen(ConfirmModal(title, body, label, danger=danger), answered)

    def action_budget(self) -> None:
        self.query_one("#embedder-budget", Input).focus()

    @on(Input.Submitted, "#embedder-budget")
    def _budget_entered(self, _event: Input.Submitted) -> None:
        self.query_one(DataTable).focus()
        self.action_tune()

    def action_close(self) -> None:
        if isinstance(self.focused, Input):
            self.query_one(DataTable).focus()  # escape leaves the budget field first
            return
        self.dismiss(None)

    @work(group="embedder-write", exit_on_error=False)
    async def send(self, call: calls.Call[Any], what: str) -> None:
        try:
            answer = await self.ctx.api.call(call)
        except Exception as exc:  # a refusal: in words, here and as a notification, and in F12
            self.report_failure(exc, what, notify=False)
            self._say(f"✘ {what} refused: {in_words(exc)}")
            self.notify(in_words(exc), title=f"Embedder: {what} refused", severity="error", timeout=8)
            return
        if "freed_bytes" in answer:  # a delete answers at once, with no job: the list shows it deleted
            self._say(f"✔ v{answer['version']} deleted: {answer['freed_bytes'] / 1e6:.1f} MB freed; its record stays")
            self.load()
            return
        self.job = dict(answer["job"])
        self._draw()
        version = f" v{answer['version']}" if "version" in answer else ""
        self._say(f"{what}{version}: job {self.job['id']} started; its progress shows above")

    def palette_actions(self) -> list[PaletteAction]:
        """The dialog's actions for the command palette, each with its key."""
        return [palette_entry("Embedder versions", b, self.ctx, keys, partial(self.run_action, b.action))
                for b, keys in node_actions(self)]

