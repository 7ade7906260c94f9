"""Search (mode 3): live code search over the current project's index, a preview, filters and (re)indexing.

The engine does the work (``GET /v1/index/status``, ``POST /v1/search``, ``POST /v1/index``;
``calls.index_status / search / index_start`` sent with ``ctx.api.call`` from workers). Typing
in the query box searches after a short pause (:data:`DEBOUNCE_S`); every search carries a
sequence number and an answer that is not the newest is dropped, so a slow earlier query never
overwrites a later one. The preview reads the hit's file from the project root the index status
names (the TUI runs where the engine runs) with a few lines around it, and falls back to the
indexed snippet when the file is gone or changed. ``i`` starts an index job; its
``job.progress`` and ``job.state`` events from the engine's stream feed the progress panel.

Keys: focus lands in the query box on entry, so typing starts a query at once; digits then
type into the query.  Esc leaves the box, after which 1-6 switch screens again — the hint
line under the query says so whichever state it is in.  Texts are in ``search_view``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from core.api import calls
from core.errors import MusubiError, NotFound
from tui.context import ConnState
from tui.editor import editor_command, run_in_terminal
from tui.screens import search_view as view
from tui.screens.base import STYLES, ModeScreen
from tui.screens.search_embedder import SearchEmbedder
from tui.widgets.search_preview import SearchPreview
from tui.widgets.search_results import WIDE, SearchResults

if TYPE_CHECKING:
    from core.api.responses import IndexStatus, Job, SearchAnswer, SearchHit

DEBOUNCE_S = 0.2  # pause in typing before a query goes out
K = 20  # results asked for
JOB_POLL_S = 5.0  # while a job runs, the status is re-read too (events may be missed while reconnecting)
DONE_SHOWN_S = 6.0  # how long a finished job stays in the panel
INPUTS = ("#search-query", "#search-path", "#search-lang")


class SearchScreen(SearchEmbedder, ModeScreen):
    MODE = "search"
    CSS_PATH = STYLES / "search.tcss"
    AUTO_FOCUS = "#search-query"
    WORKER_TITLES: ClassVar[dict[str, str]] = {
        "search-status": "Index status", "search-query": "Search", "search-index": "Index",
        "search-embedder": "Embedder",
    }
    HELP = (
        "Search: live code search over this project's index (meaning and keywords together). "
        "Type in the query box: results come as you type. Esc leaves the box; then 1-6 switch screens "
        "and the letters work: / query, p path glob, l language, x clear filters, i (re)index, "
        "e or enter opens the result in $EDITOR, v lists the embedder versions (tune, activate, roll back). "
        "The preview marks the result's lines with ▶. "
        "The first line is the index: ● ready, ↻ indexing, ◐ stale, ○ not indexed, ✘ failed."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave_box", "Leave box", id="search_leave"),
        Binding("slash", "focus_query", "Query", id="search_query"),
        Binding("p", "focus_path", "Path", id="search_path"),
        Binding("l", "focus_lang", "Lang", id="search_lang"),
        Binding("x", "clear_filters", "Clear", id="search_clear"),
        Binding("i", "reindex", "Index", id="search_index"),
        Binding("e", "open_editor", "Edit", id="search_open"),
        # off the footer (palette and F1 list it) so "f1 Help" still fits in 80 columns
        Binding("v", "embedder", "Embedder versions", id="search_embedder", show=False),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static(view.status_line(None), id="search-status", markup=False)
        yield self.embedder_line()
        with Horizontal(id="search-query-row"):
            yield Input(placeholder="query: words, identifiers or a question", id="search-query")
            yield Input(placeholder="path glob (p)", id="search-path")
            yield Input(placeholder="lang (l)", id="search-lang")
        yield Static("", id="search-hint", markup=False)
        yield Static("", id="search-job", markup=False)
        with Container(id="search-main"):
            yield SearchResults(id="search-results-panel")
            yield SearchPreview(id="search-preview-panel")

    def __init__(self) -> None:
        super().__init__()
        self.status: IndexStatus | None = None
        self.answer: SearchAnswer | None = None
        self.hits: list[SearchHit] = []
        self.job: Job | None = None
        self.error: str | None = None  # the last search's failure, in words
        self.seq = 0  # the newest query sent; older answers are dropped
        self.dropped = 0  # stale answers dropped (tests read it)
        self._sent = ("", "", "")  # query, path, lang of the newest search
        self._debounce: Timer | None = None
        self._job_hide: Timer | None = None
        self.debounce_s = DEBOUNCE_S
        self.status_error: str | None = None  # why the index status could not be read
        self._answer_seq = 0  # the seq of the answer shown

    def on_mount(self) -> None:
        self._focus_query_now()  # focus lands in the query box on entry: typing starts a query
        self.query_one("#search-job").display = False
        self.ctx.conn_changed.subscribe(self, self._on_conn)
        self.ctx.engine_event.subscribe(self, self._on_event)
        self.set_interval(JOB_POLL_S, self._poll_job)
        self._layout_for(self.size.width)
        self._hint()
        self._draw()
        if self.ctx.conn.name == "connected":
            self.load_status()

    def _focus_query_now(self) -> None:
        # Screen.set_focus takes effect at once (Widget.focus waits for a later turn): the keys
        # typed right after "3" then go into the query, none to the mode keys or the void.
        self.set_focus(self.query_one("#search-query", Input))

    def on_screen_suspend(self) -> None:
        self._focus_query_now()  # ready for the next visit before it starts

    def on_screen_resume(self) -> None:
        self._focus_query_now()

    def on_key(self, event: events.Key) -> None:
        # A printable key that reaches the screen itself while the query box has (or is about to
        # get) the focus was sent to the screen before the focus moved there: it belongs to the query.
        if self.focused in (None, self.query_one("#search-query")) and event.is_printable and event.character:
            box = self.query_one("#search-query", Input)
            box.focus()
            box.insert_text_at_cursor(event.character)
            event.stop()
            event.prevent_default()

    def on_resize(self) -> None:
        self._layout_for(self.size.width)
        self._fill()  # the location column fits the new width

    # -- the engine -----------------------------------------------------------------------

    def _on_conn(self, state: ConnState) -> None:
        if state.name == "connected":
            self.load_status()
            if self._embed_project():
                self.load_embedder()  # a job may have ended while the engine was away
        self._draw()

    @work(group="search-status", exclusive=True, exit_on_error=False)
    async def load_status(self) -> None:
        try:
            st = await self.ctx.api.call(calls.index_status())
        except Exception as exc:  # shown in place, in words, and logged for F12
            if isinstance(exc, NotFound) and exc.extra.get("resource") == "project":
                # No registered project for this folder: the empty state that says how to add one.
                self.status, self.status_error = _no_project(), None
                self._draw()
                return
            self.report_failure(exc, "Index status", notify=False)
            # Any other 404 means an engine without the route.
            self.status_error = view.NO_ROUTE if isinstance(exc, NotFound) else view.in_words(exc)
            if self.status is None:
                self._draw()
            self.query_one("#search-status", Static).update(f"Index: ✘ {self.status_error}")
            return
        if st.get("project") and (self.status is None or self.status.get("project") != st.get("project")):
            self.load_embedder()  # which model serves this project (once per project; job ends reload it)
        self.status, self.status_error = st, None
        job = st.get("job")
        # A job started elsewhere (musubi index) shows here too; one whose end an event already
        # told is not put back to an older state by a status read on its way meanwhile.
        known = self.job
        if job is not None and (known is None or (job["id"] == known["id"] and known["state"] not in view.FINISHED)):
            self._show_job(job)
        self._draw()
        if self._sent[0] and self.answer is None and self.error is None and self._indexed():
            self._schedule(0)  # a query typed before the status came

    def _indexed(self) -> bool:
        return bool(self.status and self.status.get("project") and self.status["state"] != "none")

    # -- querying -------------------------------------------------------------------------

    def _inputs(self) -> tuple[str, str, str]:
        return tuple(self.query_one(sel, Input).value.strip() for sel in INPUTS)  # type: ignore[return-value]

    @on(Input.Changed)
    def _changed(self, _event: Input.Changed) -> None:
        self._schedule(self.debounce_s)

    @on(Input.Submitted)
    def _submitted(self, _event: Input.Submitted) -> None:
        self._schedule(0)  # enter: search now, then go to the results
        self.action_leave_box()

    def _schedule(self, delay: float) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(delay, self._send) if delay else None
        if not delay:
            self._send()

    def _send(self) -> None:
        query, path, lang = self._inputs()
        if (query, path, lang) == self._sent and (self.answer is not None or self.error is not None):
            return  # nothing changed (e.g. enter after the debounced search)
        self._sent = (query, path, lang)
        self.seq += 1
        self.answer, self.hits, self.error = None, [], None
        if not query or not self._indexed():
            self._draw()
            return
        self._message("Searching…")
        self.run_worker(self._search(self.seq, query, path, lang), group="search-query", exit_on_error=False)

    async def _search(self, seq: int, query: str, path: str, lang: str) -> None:
        try:
            answer = await self.ctx.api.call(calls.search(query, k=K, path=path, lang=lang))
        except Exception as exc:  # every failure is shown in words here and logged for F12
            if seq == self.seq:
                self._search_failed(exc)
            return
        if seq != self.seq:
            self.dropped += 1  # a newer query went out meanwhile: this answer is stale
            return
        self.answer, self.hits, self._answer_seq = answer, list(answer["results"]), seq
        self._draw()

    def _search_failed(self, exc: BaseException) -> None:
        if isinstance(exc, MusubiError) and exc.code == "not_indexed":
            if self.status is not None:
                self.status = {**self.status, "state": "none"}
            self._draw()
            return
        if isinstance(exc, NotFound):
            self.status = _no_project()
            self._draw()
            return
        self.error = view.in_words(exc)
        self.report_failure(exc, "Search", notify=False)
        self.notify(f"Search failed: {self.error}", title="Search", severity="error")
        self._draw()

    # -- drawing --------------------------------------------------------------------------

    @property
    def results(self) -> SearchResults:
        return self.query_one(SearchResults)

    @property
    def preview(self) -> SearchPreview:
        return self.query_one(SearchPreview)

    def _layout_for(self, width: int) -> None:
        wide = width >= WIDE
        if self.results.set_wide(wide):
            self.query_one("#search-main").set_class(wide, "-side-by-side")
            self._fill()

    def _draw(self) -> None:
        self.query_one("#search-status", Static).update(view.status_line(
            self.status, waiting="waiting for the engine…" if self.ctx.conn.name != "connected" else "loading…"))
        text = self._empty_text()
        if text is None:
            self._fill()
            return
        self._message(text)
        self.preview.show_hint()

    def _empty_text(self) -> str | None:
        st = self.status
        if st is None:
            if self.status_error:
                return f"The index status could not be read: {self.status_error}\n\nctrl+r reconnects."
            return view.WAITING if self.ctx.conn.name != "connected" else "Loading the index status…"
        if not st.get("project"):
            return view.NO_PROJECT
        if st["state"] == "none":
            return view.NOT_INDEXED
        query, path, lang = self._sent
        if self.error is not None:
            return f"Search failed: {self.error}\n\nChange the query to try again."
        if not query:
            return view.type_to_search(st["project"])
        if self.answer is None:
            return "Searching…"
        if not self.hits:
            return view.no_results(query, path, lang)
        return None

    def _message(self, text: str) -> None:
        self.results.show_message(text)

    def _fill(self) -> None:
        """Show the results; a redraw of the same answer (status, job, resize) keeps the cursor."""
        if not self.hits or self.answer is None:
            return
        # The panel's share of the screen (tcss: full width, or 3/5 side by side), less border and padding.
        width = (self.size.width * 3 // 5 if self.results.wide else self.size.width) - 4
        cursor = self.results.show(self.answer, self.hits, self._answer_seq, width)
        if cursor is not None:
            self._show_preview(cursor)

    def _hint(self) -> None:
        focused: Widget | None = self.focused
        in_box = isinstance(focused, Input)
        text = ("Esc: leave the query box, then 1-6 switch screens · enter: to the results"
                if in_box else "1-6 switch screens · / query · p path · l lang · x clear · i index · e edit")
        self.query_one("#search-hint", Static).update(text)

    def on_descendant_focus(self) -> None:
        self._hint()

    def on_descendant_blur(self) -> None:
        self._hint()

    # -- preview --------------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#search-results")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_preview(event.cursor_row)

    @on(DataTable.RowSelected, "#search-results")
    def _selected(self, _event: DataTable.RowSelected) -> None:
        self.action_open_editor()

    def selected(self) -> SearchHit | None:
        row = self.results.selected_row(len(self.hits))
        return None if row is None else self.hits[row]

    def _show_preview(self, row: int) -> None:
        if not 0 <= row < len(self.hits):
            return
        theme = "ansi_dark" if self.ctx.color.system in ("16", "none") else "monokai"
        self.preview.show(self.hits[row], self._root(), theme)

    # -- indexing -------------------------------------------------------------------------

    def action_reindex(self) -> None:
        if self.refuse("search_index"):
            return
        if self.status is not None and not self.status.get("project"):
            self.notify(view.NO_PROJECT.split("\n\n", 1)[1], title="Index: no project here", severity="warning")
            return
        if self.job is not None and self.job["state"] not in view.FINISHED:
            self.notify("An index job is already running; its progress is shown above the results.", title="Index")
            return
        self.start_index()

    @work(group="search-index", exit_on_error=False)
    async def start_index(self) -> None:
        try:
            job = (await self.ctx.api.call(calls.index_start()))["job"]
        except Exception as exc:
            if isinstance(exc, NotFound):
                self.status = _no_project()
                self._draw()
            self.report_failure(exc, "Index", notify=False)
            self.notify(f"Could not start indexing: {view.in_words(exc)}", title="Index", severity="error")
            return
        self.notify("Indexing started; progress shows above the results.", title="Index", timeout=3)
        self._show_job(job)

    def _on_event(self, ev: dict[str, Any]) -> None:
        if self.embedder_audit(ev):
            return
        if ev.get("type") not in ("job.progress", "job.state") or self.embedder_event(ev):
            return
        job = ev.get("job") or {}
        if job.get("kind") != "index" or not self._ours(job):
            return
        if self.job is not None and self.job["id"] == job["id"] and self.job["state"] in view.FINISHED:
            return  # a late progress event after the end changes nothing
        self._show_job(job)  # type: ignore[arg-type]
        if ev["type"] == "job.state" and job.get("state") in view.FINISHED:
            self._job_finished(job)  # type: ignore[arg-type]

    def _ours(self, job: dict[str, Any]) -> bool:
        if self.job is not None and job.get("id") == self.job["id"]:
            return True
        project = self.status["project"] if self.status else None
        return bool(project) and job.get("project") == project

    def _show_job(self, job: Job) -> None:
        if _behind(job, self.job):
            return  # a read answered before a newer event arrived (status poll, start answer): never go back
        self.job = job
        panel = self.query_one("#search-job", Static)
        panel.border_title = "Index job"
        panel.update(view.job_line(job))
        panel.display = True
        if self._job_hide is not None:
            self._job_hide.stop()
            self._job_hide = None
        if self.status is not None and job["state"] not in view.FINISHED and self.status["state"] != "indexing":
            self.status = {**self.status, "state": "indexing"}
            self._draw()

    def _job_finished(self, job: Job) -> None:
        if job["state"] == "done":
            done, unit = job["progress"]["done"], job["progress"].get("unit") or "items"
            self.notify(f"Index ready: {done:,} {unit}.", title="Index", timeout=4)
            self._job_hide = self.set_timer(DONE_SHOWN_S, self._hide_job)
        elif job["state"] == "failed":
            self.notify(f"Indexing failed: {job.get('error') or 'no reason given'}", title="Index", severity="error")
        self.answer, self.error = None, None  # load_status searches again over the new index
        self.load_status()

    def _hide_job(self) -> None:
        self.query_one("#search-job").display = False

    def _poll_job(self) -> None:
        if self.is_current and self.job is not None and self.job["state"] not in view.FINISHED:
            self.load_status()

    # -- actions --------------------------------------------------------------------------

    def action_focus_query(self) -> None:
        self.query_one("#search-query", Input).focus()

    def action_focus_path(self) -> None:
        self.query_one("#search-path", Input).focus()

    def action_focus_lang(self) -> None:
        self.query_one("#search-lang", Input).focus()

    def action_leave_box(self) -> None:
        self.results.focus_target().focus()

    def action_clear_filters(self) -> None:
        for sel in INPUTS[1:]:
            self.query_one(sel, Input).value = ""  # Input.Changed schedules the search

    def action_open_editor(self) -> None:
        hit = self.selected()
        root = self._root()
        if hit is None:
            self.notify("No result selected: type a query first.", title="Edit", severity="warning")
            return
        if not root:
            self.notify("The engine did not say where the project is; open "
                        f"{view.location(hit)} yourself.", title="Edit", severity="warning")
            return
        from pathlib import Path

        self.run_editor(self.editor_command(str(Path(root) / hit["path"]), hit["start_line"]))

    def _root(self) -> str | None:
        return self.status["root"] if self.status else None

    def editor_command(self, path: str, line: int) -> list[str]:
        return editor_command(path, line)

    def run_editor(self, cmd: list[str]) -> None:
        """Hand the terminal to the editor; the index notices the edit on its next run."""
        problem = run_in_terminal(self.app, cmd)
        if problem is not None:
            self.notify(problem.message, title="Edit", severity=problem.severity)
            return
        if self.hits:
            self._show_preview(self.results.table.cursor_row)


def _no_project() -> IndexStatus:
    return {"project": None, "root": None, "state": "none", "files": 0, "chunks": 0, "dense_chunks": 0,
            "dense_coverage": 0.0, "model": None, "updated_at": None, "job": None}


_RANK = {"queued": 0, "running": 1}


def _behind(job: Job, known: Job | None) -> bool:
    """Whether ``job`` is an older view of the job shown (same id, an earlier state or fewer items done)."""
    if known is None or job["id"] != known["id"]:
        return False
    a, b = _RANK.get(job["state"], 2), _RANK.get(known["state"], 2)
    return a < b or (a == b and job["progress"]["done"] < known["progress"]["done"])
