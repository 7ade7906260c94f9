"""Tutorials (mode 5): the catalogue with your progress; enter starts or resumes one (issue 18).

Data: ``GET /v1/tutorials`` (``calls.tutorials``, read in a worker) — each tutorial's title,
summary, steps and the caller's progress, kept by the engine per user (so progress survives a
restart of the app or the engine).  Starting one (``enter`` or ``s``) hands it to the app's
:class:`~tui.tutorial.TutorialSession`: the engine makes the sandbox (a throw-away tenant and a
copy of a sample project), the app switches to that tenant, and the current step shows in the
tutorial panel at the right of every mode while the user works (F9 goes into the panel).
``r`` resets the highlighted tutorial (its sandbox is cleaned, its progress forgotten), after asking.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from core.api import calls
from core.errors import MusubiError, NotFound
from tui.context import ConnState
from tui.screens.base import STYLES, ModeScreen
from tui.widgets.panel import Panel
from tui.widgets.table_fill import fill_table

if TYPE_CHECKING:
    from core.api.tutorials import TutorialSummary

NO_ROUTE = "This engine has no tutorials API (it predates them): update musubi and restart the engine."
MARK = {"new": "○ new", "in_progress": "▸ doing", "done": "✔ done"}  # a word with every symbol
STEP_MARK = {"done": "✔", "skipped": "⤼", "todo": "○"}


def progress_text(t: TutorialSummary) -> str:
    p = t["progress"]
    return f"{len(p['done'])}/{t['steps']}"


def detail_text(t: TutorialSummary, running: str | None) -> str:
    """The highlighted tutorial in words: summary, progress, and what enter will do."""
    p = t["progress"]
    lines = [t["title"], "", t["summary"], "", f"{MARK[p['state']]} · {progress_text(t)} steps done"]
    if p["skipped"]:
        lines[-1] += f" · {len(p['skipped'])} skipped"
    if p["restarted"]:
        lines.append(f"Changed since you did them (to do again): {', '.join(p['restarted'])}")
    if p["sandbox"]:
        lines.append(f"Sandbox: tenant {p['sandbox']['tenant']}, folder {p['sandbox']['path']}")
    lines.append("")
    if running == t["id"]:
        lines.append("Running now: its step is in the panel at the right (F9 goes there). r starts it over.")
    elif p["state"] == "done":
        lines.append("enter: do it again (a fresh sandbox) · r: forget the progress")
    elif p["state"] == "in_progress":
        lines.append("enter: resume where you left off · r: start over (cleans the sandbox)")
    else:
        lines.append("enter: start (the engine makes a sandbox tenant and project: your own data is never touched)")
    return "\n".join(lines)


class TutorialsScreen(ModeScreen):
    MODE = "tutorials"
    CSS_PATH = STYLES / "tutorials.tcss"
    AUTO_FOCUS = "#tut-list"
    WORKER_TITLES: ClassVar[dict[str, str]] = {"tutorials-list": "Tutorials"}
    HELP = (
        "Tutorials: short lessons inside the workstation, each step checked against what you really did. "
        "Pick one with up/down and press **enter** (or **s**) to start or resume it: the engine makes a sandbox "
        "(a throw-away tenant and sample project; your own tenants and repositories are never touched), the app "
        "switches to it, and the current step stays in a panel at the right of every mode while you work. "
        "**F9** goes into that panel (again: hides it); there **h** hint, **s** skip, **r** restart, **x** leave "
        "(your progress is kept), **c** copies a step's command, **d** says you ran one the engine cannot check. "
        "Here, **r** forgets the highlighted tutorial's progress (after asking). Progress is kept by the engine "
        "per user: quit any time and resume later."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "Start", id="tutorials_start"),
        Binding("r", "reset", "Reset", id="tutorials_reset"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[TutorialSummary] = []
        self.error: str | None = None
        self.loaded = False

    def compose_body(self) -> ComposeResult:
        table: DataTable[Any] = DataTable(id="tut-list", cursor_type="row", zebra_stripes=True)
        yield Panel(table, title="Tutorials", id="tut-list-panel")
        yield Panel(VerticalScroll(Static("waiting for the engine…", id="tut-detail", markup=False),
                                   id="tut-detail-scroll"), title="About", id="tut-detail-panel")

    def on_mount(self) -> None:
        self.ctx.conn_changed.subscribe(self, self._on_conn)
        self.app.tutorial.changed.subscribe(self, self._session_changed)  # type: ignore[attr-defined]
        if self.ctx.conn.name == "connected":
            self.load()

    def _on_conn(self, state: ConnState) -> None:
        if state.name == "connected":
            self.load()
        elif not self.loaded:
            self._paint_detail()

    def _session_changed(self, what: str) -> None:
        if what in ("started", "step", "done", "left"):
            self.load()  # the progress column follows the running tutorial
        else:
            self._paint_detail()

    def settled(self) -> bool:
        return self.loaded

    @work(exclusive=True, group="tutorials-list", exit_on_error=False)
    async def load(self) -> None:
        try:
            rows = await self.ctx.api.call(calls.tutorials())
        except MusubiError as exc:
            self.report_failure(exc, "Tutorials", notify=False)
            self.error, self.loaded = NO_ROUTE if isinstance(exc, NotFound) else exc.message, True
            self._paint()
            return
        self.rows, self.error, self.loaded = sorted(rows, key=lambda t: (t["order"], t["id"])), None, True
        self._paint()

    def _paint(self) -> None:
        table: DataTable[Any] = self.query_one("#tut-list", DataTable)
        cursor = table.cursor_row
        fill_table(table, ("", "Tutorial", "Done"),
                   [(t["id"], [MARK[t["progress"]["state"]], t["title"], progress_text(t)]) for t in self.rows])
        if self.rows:
            table.move_cursor(row=min(max(cursor, 0), len(self.rows) - 1), animate=False)
        done = sum(t["progress"]["state"] == "done" for t in self.rows)
        self.query_one("#tut-list-panel", Panel).border_title = f"Tutorials {done}/{len(self.rows)} done"
        self._paint_detail()

    def highlighted(self) -> TutorialSummary | None:
        table: DataTable[Any] = self.query_one("#tut-list", DataTable)
        if not self.rows or table.row_count == 0:
            return None
        return self.rows[min(table.cursor_row, len(self.rows) - 1)]

    def _paint_detail(self) -> None:
        detail = self.query_one("#tut-detail", Static)
        t = self.highlighted()
        session = self.app.tutorial  # type: ignore[attr-defined]
        running = session.shown["id"] if session.shown is not None else None
        if self.error:
            detail.update(f"✘ The tutorials could not be read: {self.error}")
        elif not self.loaded:
            detail.update("Loading the tutorials…" if self.ctx.conn.name == "connected" else "waiting for the engine…")
        elif t is None:
            detail.update("This engine ships no tutorials.")
        else:
            detail.update(detail_text(t, running))
            self.query_one("#tut-detail-panel", Panel).border_title = t["title"]

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._paint_detail()

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_start()

    def action_start(self) -> None:
        t = self.highlighted()
        if t is None:
            self.notify("No tutorial to start: the list is empty or still loading.", severity="warning")
            return
        self.app.tutorial.start(t["id"])  # type: ignore[attr-defined]

    def action_reset(self) -> None:
        t = self.highlighted()
        if t is None:
            return
        session = self.app.tutorial  # type: ignore[attr-defined]
        if session.shown is not None and session.shown["id"] == t["id"]:
            session.restart()  # the running one: start over at once, as r in its panel does
            return
        from tui.screens.modals import ConfirmModal

        def answer(yes: bool | None) -> None:
            if yes:
                self.reset(t["id"])

        body = (f"Forget your progress in {t['title']!r} and clean its sandbox (its tenant is suspended, its "
                "folder deleted)? Your own tenants are not touched.")
        self.app.push_screen(ConfirmModal("Reset tutorial?", body, "Reset", danger=True), answer)

    @work(group="tutorials-reset", exit_on_error=False)
    async def reset(self, tutorial: str) -> None:
        try:
            await self.ctx.api.call(calls.tutorial_reset(tutorial))
        except MusubiError as exc:
            self.report_failure(exc, "Reset tutorial")
            return
        self.notify("Progress forgotten and sandbox cleaned.", title="Tutorial")
        self.load()
