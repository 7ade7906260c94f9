"""Dashboard (mode 1): orchestration runs live — steps, output, approval gates — with the engine, tenant and quotas.

Data: ``GET /v1/runs`` and ``GET /v1/runs/{id}`` (``calls.runs`` / ``calls.run_show``, read in workers),
then the engine's ``run.*`` events (``run.state``, ``run.step``, ``run.output``, ``run.call``,
``run.gate``, ``run.note``; core/api/runs.py) keep it current.  Events only change the screen's
model and mark what changed; a timer repaints each changed widget at most :data:`REPAINT_HZ` times a
second, and output deltas are appended in one batch per repaint — so a burst of events costs a
few repaints, not one each, over a slow SSH link.  Runs belong to the engine: leaving the screen
or the app changes nothing for them.

Keys (ids in :mod:`tui.screens.actions`, remappable): a approve, r reject, c request changes
(asks for a comment), p apply an approved diff, x cancel the run, u resume it, t retry the selected
step, o read its output so far again, l provider latency.  A step's output so far comes from
``GET /v1/runs/{id}/output`` (the engine's live tail or record), joined with events by offset;
the engine panel's p95 from ``GET /v1/providers/stats``.  Texts and
formatting live in :mod:`tui.screens.dashboard_view`; the engine/tenant/quota panels in
:mod:`tui.screens.dashboard_info`; the actions in :mod:`tui.screens.dashboard_actions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, ScrollableContainer, VerticalScroll
from textual.content import Content
from textual.css.query import NoMatches
from textual.widgets import DataTable, Static, Tree
from textual.widgets.tree import TreeNode

from core.api import calls
from core.errors import MusubiError, NotFound
from tui.context import ConnState
from tui.screens import dashboard_view as view
from tui.screens.base import STYLES, ModeScreen
from tui.screens.dashboard_actions import RunActions
from tui.screens.dashboard_info import InfoBox, InfoPanels
from tui.screens.dashboard_jobs import JobsPanel
from tui.screens.dashboard_pipeline import PipelinePanel
from tui.widgets.panel import Panel
from tui.widgets.table_fill import cells_fit, fill_table

if TYPE_CHECKING:
    from core.api.runs import ProviderLatency, Run, RunApproval, RunArtefact, RunShown, RunStep

REPAINT_HZ = 4  # repaints per second per widget, at most (events only mark what changed)
OUTPUT_KEEP = 64_000  # characters of streamed output kept per step (the oldest go first)
OUTPUT_SHOWN = 8_000  # characters the output panel shows (its tail): a repaint re-wraps only this much
RUN_LIMIT = 50  # runs listed (the engine's newest first)
WIDE = 100  # from this many columns the runs list has a workflow column
STATS_EVERY_S = 5.0  # provider latency is read again at most this often, and only after calls ended


class RunsNote(Static, can_focus=True):
    """The runs panel's empty state or error; focusable so it scrolls and maximises."""


class DashboardScreen(JobsPanel, PipelinePanel, RunActions, InfoPanels, ModeScreen):
    MODE = "dashboard"
    CSS_PATH = STYLES / "dashboard.tcss"
    AUTO_FOCUS = "#dash-runs"
    WORKER_TITLES: ClassVar[dict[str, str]] = {
        "dashboard-tenant": "Tenant details", "dashboard-next": "Next steps", "dashboard-runs": "Runs",
        "dashboard-run": "Run details", "dashboard-act": "Run action", "dashboard-diff": "Diff",
        "dashboard-pipeline": "CI pipeline",
        "dashboard-output": "Step output", "dashboard-stats": "Provider latency",
        "dashboard-jobs": "Fine-tuning jobs",
    }
    HELP = (
        "Dashboard: your runs live from the engine — state (symbol and word), elapsed time, tokens and cost "
        "against the estimate, and the share of the tenant's quota each used. Select a run (up/down, tab to move "
        "between panels) for its step tree: parallel and nested agents sit under their parent, each with its state, "
        "tokens, cost and time; the right panel streams the selected step's output, or shows a pending approval "
        "gate's artefact (a diff, highlighted). Keys: a approve, r reject, c request changes (asks for a comment), "
        "p apply an approved diff to the project, x cancel the run, u resume a stopped run (a failed step runs "
        "again from there), t retry the selected failed, cancelled or stopped step with new calls (nothing else is "
        "re-sent), o read the step's output so far again, l this tenant's provider latency, i read the run's CI "
        "pipeline again. Under the runs, a line shows the fine-tuning jobs (provider and embedder) live with "
        "their progress, then the finished one's model or error: j lists them, d dismisses a finished one. Above: "
        "the engine with "
        "the p95 latency of your tenant's model calls, your tenant and role, quota headroom. F8 switches tenant; "
        "ctrl+r reconnects."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "approve", "Approve", id="dash_approve"),
        Binding("r", "reject", "Reject", id="dash_reject"),
        Binding("c", "request_changes", "Changes", id="dash_changes"),
        Binding("p", "apply_diff", "Apply", id="dash_apply"),
        Binding("x", "cancel_run", "Cancel run", id="dash_cancel"),
        Binding("u", "resume_run", "Resume", id="dash_resume"),
        Binding("i", "refresh_pipeline", "CI", id="dash_pipeline", show=False),
        Binding("t", "retry_step", "Retry", id="dash_retry", show=False),
        Binding("o", "step_output", "Output", id="dash_output", show=False),
        Binding("l", "latency", "Latency", id="dash_latency", show=False),
        Binding("j", "jobs", "Tune jobs", id="dash_jobs", show=False),
        Binding("d", "jobs_dismiss", "Dismiss job", id="dash_jobs_dismiss", show=False),
    ]

    def compose_body(self) -> ComposeResult:
        yield from self.compose_info()
        table: DataTable[Any] = DataTable(id="dash-runs", cursor_type="row", zebra_stripes=True)
        yield Panel(table, RunsNote("", id="dash-runs-note"), InfoBox(id="dash-next"), title="Runs",
                    id="dash-runs-panel")
        yield self.jobs_line()  # issue 19: fine-tuning jobs, one line (hidden with none)
        with Horizontal(id="dash-lower"):
            tree: Tree[str] = Tree("steps", id="dash-steps")
            tree.show_root = False
            yield Panel(tree, title="Steps", id="dash-steps-panel")
            yield Panel(
                Static("", id="dash-step-info", markup=False),
                self.pipeline_line(),
                VerticalScroll(Static("", id="dash-output", markup=False), id="dash-output-scroll"),
                ScrollableContainer(Static("", id="dash-gate"), id="dash-gate-scroll"),
                title="Output", id="dash-detail-panel",
            )

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[str, Run] = {}
        self.runs_error: str | None = None
        self.runs_loaded = False
        self.selected: str | None = None  # the run shown below the list
        self.shown: RunShown | None = None  # its steps, gates and artefacts
        self.steps: dict[str, RunStep] = {}
        self.step: str | None = None  # the step whose output (or gate) the right panel shows
        self.outputs: dict[tuple[str, str], str] = {}  # (run, step) -> streamed text seen here
        self.latencies = view.Latencies()  # from run.call events: only for an engine without /v1/providers/stats
        self.provider_stats: list[ProviderLatency] | None = None  # the engine's, for this tenant
        self.out_end: dict[tuple[str, str], int] = {}  # (run, step) -> characters of its stream shown
        self._fetched: set[tuple[str, str]] = set()  # steps whose output so far was read from the engine
        self._output_route = True  # False: an engine without GET /v1/runs/{id}/output
        self._stats_due = False
        self.dirty: set[str] = set()
        self.repaints: dict[str, int] = {}  # widget -> repaints (tests read it)
        self.flushes = 0
        self._pending_out = ""  # output of the shown step not yet written to the Log
        self._step_nodes: dict[str, TreeNode[str]] = {}
        self._tree_run: str | None = None
        self._gate_key: tuple[str, str, str] | None = None  # (run, gate, sha) the gate panel shows
        self._table_shape: tuple[list[str], bool] | None = None
        self._tree_width = 0  # the width the step labels were cut for (they are repainted when it changes)
        self._seeded: set[tuple[str, str]] = set()
        self._columns: list[Any] = []
        # While a run's details are read, its run.state/step/gate events are held and replayed onto the answer,
        # which may have been read before them: (the run's version when each came, the event); see view.stale.
        self._held_run: str | None = None
        self._held: list[tuple[str | None, dict[str, Any]]] = []
        self._versions: dict[str, str] = {}  # run -> updated_at of its last run.state event

    def on_mount(self) -> None:
        self.mount_info()
        self.ctx.engine_event.subscribe(self, self._on_event)
        self.set_interval(1 / REPAINT_HZ, self._flush)
        self.set_interval(1.0, self._tick)
        self.set_interval(STATS_EVERY_S, self._stats_tick)
        self.query_one("#dash-gate-scroll").display = False
        self._mark("runs", "tree", "detail")
        self._flush()
        if self.ctx.conn.name == "connected":
            self.load_runs()
            self.load_stats()
            self.load_jobs()

    def on_resize(self) -> None:
        self._mark("runs", "tree")  # the workflow column and the steps' detail depend on the width

    # -- the engine -----------------------------------------------------------------------

    def _on_conn(self, state: ConnState) -> None:
        super()._on_conn(state)
        if state.name == "connected":
            self.load_runs()  # events may have been missed while disconnected
            self.load_stats()
            self.load_jobs()
            self._fetched.clear()  # and streamed output: read the shown step's again

    def _on_data(self, what: str) -> None:
        super()._on_data(what)
        if what == "whoami":  # another tenant (F8) or other roles: start over
            self.runs, self.selected, self.shown, self.steps, self.step = {}, None, None, {}, None
            self._held_run, self._held, self._versions = None, [], {}
            self.runs_loaded, self.provider_stats = False, None
            self.tune_jobs, self.jobs_dismissed = {}, set()
            self.load_runs()
            self.load_stats()
            self.load_jobs()
            self._mark("runs", "tree", "detail", "jobs")

    @work(exclusive=True, group="dashboard-runs", exit_on_error=False)
    async def load_runs(self) -> None:
        try:
            rows = await self.ctx.api.call(calls.runs(limit=RUN_LIMIT))
        except MusubiError as exc:
            self.report_failure(exc, "Runs", notify=False)
            self.runs_error = view.NO_ROUTE if isinstance(exc, NotFound) else exc.message
            self.runs_loaded = True
            self._mark("runs")
            self._flush()
            return
        self.runs_error, self.runs_loaded = None, True
        # A run.state event that came while the list was read is newer than its row: it stays.
        had = self.runs
        self.runs = {r["id"]: had[r["id"]] if r["id"] in had and view.newer(had[r["id"]], r) else r for r in rows}
        if self.selected not in self.runs:
            self.select(next(iter(self.runs), None))
        elif self.selected is not None:
            self.load_run(self.selected)
        self._mark("runs")
        self._flush()

    def load_run(self, run_id: str) -> Any:
        """Read ``run_id``'s details in a worker, holding its events from now until the answer lands."""
        if self._held_run != run_id:
            self._held_run, self._held = run_id, []
        # (a read again of the same run keeps what is held: the answer it replaces may have been older still)
        return self._read_run(run_id)

    @work(exclusive=True, group="dashboard-run", exit_on_error=False)
    async def _read_run(self, run_id: str) -> None:
        try:
            shown = await self.ctx.api.call(calls.run_show(run_id))
        except MusubiError as exc:
            self.report_failure(exc, "Run details", notify=False)
            if run_id == self.selected:
                self.query_one("#dash-step-info", Static).update(f"Run {run_id} could not be read: {exc.message}")
            if run_id == self._held_run:
                self._held_run, self._held = None, []  # the next read starts later: its answer has them
            return
        if run_id != self.selected:
            return  # the user moved on meanwhile
        self.shown = shown
        self.runs[run_id] = {k: v for k, v in shown.items() if k not in ("steps", "approvals", "artefacts")}  # type: ignore[assignment]
        self.steps = {s["path"]: s for s in shown["steps"]}
        held, self._held_run, self._held = self._held, None, []
        for version, ev in held:  # what happened while the engine answered, unless the answer has it already
            if not view.stale(ev, version, shown):
                self._apply_detail(ev)
        for s in shown["steps"]:  # each step's last call seeds the p95 until calls arrive as events
            if s["model"] and s["latency_ms"] is not None and (run_id, s["path"]) not in self._seeded:
                self._seeded.add((run_id, s["path"]))
                self.latencies.add(s["model"], s["latency_ms"])
                self._mark("engine")
        if self.step not in self.steps:
            self.step = self._default_step()
        self._mark("runs", "tree", "detail")
        self._flush()  # an answer the user waited for shows at once; only events wait for the tick

    def _default_step(self) -> str | None:
        """The step to show first: a pending gate's, else the last running, else the last one."""
        gate = self.pending_approval()
        if gate is not None:
            return gate["step"]
        running = [p for p, s in self.steps.items() if s["status"] == "running"]
        return running[-1] if running else next(reversed(self.steps), None)

    def _on_event(self, ev: dict[str, Any]) -> None:
        """Apply one ``run.*`` or tuning ``job.*`` event to the model; the next repaint shows it (never a repaint per
        event)."""
        kind = str(ev.get("type") or "")
        if ev.get("tenant") not in (None, self.ctx.tenant):
            return
        if kind in ("job.state", "job.progress"):
            if self.job_event(ev):
                self._mark("jobs")
            return
        if not kind.startswith("run."):
            return
        rid = str(ev["run"]["id"] if kind == "run.state" else ev.get("run"))
        if kind == "run.state":  # its run.step events follow it: they are of this version
            self._versions[rid] = str(ev["run"]["updated_at"])
        if rid == self._held_run and kind in view.HELD_KINDS:
            self._held.append((self._versions.get(rid), ev))
        mine = rid == self.selected and self.shown is not None
        if kind == "run.state" or (kind == "run.step" and mine):
            self._apply_detail(ev)
        elif kind in ("run.output", "run.note"):
            path = ev.get("step") or ""
            key = (rid, path)
            if kind == "run.output":
                offset = ev.get("offset")
                text, self.out_end[key] = view.take(self.out_end.get(key), None if offset is None else int(offset),
                                                    ev["text"])
            else:
                text = f"\n· {ev['text']}\n"
            if text:
                self.outputs[key] = (self.outputs.get(key, "") + text)[-OUTPUT_KEEP:]
                if mine and path == self.step:
                    self._pending_out += text
                    self._mark("output")
        elif kind == "run.call":
            if ev.get("outcome") == "ok" and not ev.get("replayed") and ev.get("latency_ms") is not None:
                self.latencies.add(str(ev.get("model")), float(ev["latency_ms"]))
                self._stats_due = True  # the engine's figures moved: read them at the next stats tick
                self._mark("engine")
        elif kind == "run.gate":
            self._gate(ev)

    def _apply_detail(self, ev: dict[str, Any]) -> None:
        """Apply a ``run.state``, ``run.step`` or ``run.gate`` event to the model, live or replayed onto an answer
        (a replayed gate was announced when it came)."""
        kind = ev["type"]
        if kind == "run.state":
            self._run_changed(ev["run"])
        elif kind == "run.step":
            s, rid = ev["step"], str(ev["run"])
            before = self.steps.get(s["path"])
            self.steps[s["path"]] = s
            if before is not None and before["status"] == "running" and s["status"] != "running":
                self._fetched.discard((rid, s["path"]))  # over: its recorded output is read next
            self._mark("tree", *(("detail",) if s["path"] == self.step else ()))
        elif kind == "run.gate":
            self._gate_changed(ev["approval"], str(ev["run"]))

    def _run_changed(self, run: Run) -> None:
        rid = run["id"]
        before = self.runs.get(rid)
        self.runs[rid] = run
        if before is None and rid not in list(self.runs)[:-1]:
            # A new run goes on top, as the engine lists them (newest first).
            self.runs = {rid: run, **{k: v for k, v in self.runs.items() if k != rid}}
        if self.selected is None:
            self.select(rid)
        elif rid == self.selected and self.shown is not None:
            self.shown = {**self.shown, **run}
        self._mark("runs", *(("detail",) if rid == self.selected else ()))

    def _gate(self, ev: dict[str, Any]) -> None:
        ap: RunApproval = ev["approval"]
        self._gate_changed(ap, str(ev.get("run")))
        if ap["state"] == "pending":
            self.notify(f"Run {ev.get('run')} waits for your review at gate {ap['gate']!r}: select it, then "
                        "a approve · r reject · c request changes.", title="Approval needed", timeout=8)

    def _gate_changed(self, ap: RunApproval, rid: str) -> None:
        if rid == self.selected and self.shown is not None:
            others = [a for a in self.shown["approvals"] if a["gate"] != ap["gate"]]
            self.shown = {**self.shown, "approvals": [*others, ap]}
            if ap["state"] == "pending":
                self.step = ap["step"]
                self._mark("tree")
            self._mark("detail")
        run = self.runs.get(rid)
        if run is not None:
            self.runs[rid] = {**run, "pending_gate": ap["gate"] if ap["state"] == "pending" else None}
            self._mark("runs")

    # -- selection ------------------------------------------------------------------------

    def select(self, run_id: str | None) -> None:
        """Show ``run_id`` below the list (its details load in a worker)."""
        if run_id == self.selected:
            return
        self.selected, self.shown, self.steps, self.step = run_id, None, {}, None
        self._held_run, self._held = None, []
        self._mark("tree", "detail")
        self.show_pipeline(run_id)
        if run_id is not None:
            self.load_run(run_id)

    # Only the user's own moves select (the widget has the focus): repaints move cursors too, and their
    # highlight messages arrive later, when no flag set around the repaint could tell them apart.
    @on(DataTable.RowHighlighted, "#dash-runs")
    def _run_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.has_focus and event.row_key.value is not None:
            self.select(str(event.row_key.value))

    @on(Tree.NodeHighlighted, "#dash-steps")
    def _step_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        path = event.node.data
        if event.node.tree.has_focus and path is not None and path != self.step:
            self.step = path
            self._mark("detail")

    def artefacts(self) -> list[RunArtefact]:
        return self.shown["artefacts"] if self.shown is not None else []

    def pending_approval(self) -> RunApproval | None:
        """The selected run's pending gate, with what it shows."""
        if self.shown is None:
            return None
        return next((a for a in self.shown["approvals"] if a["state"] == "pending"), None)

    # -- repainting -----------------------------------------------------------------------

    def _mark(self, *what: str) -> None:
        self.dirty.update(what)

    def _tick(self) -> None:
        self._check_tree_width()
        # Elapsed times of live runs move on with the clock: one table repaint a second while any runs.
        if any(r["state"] not in view.ENDED and r["state"] != "stopped" for r in self.runs.values()):
            self._mark("runs")

    def settled(self) -> bool:
        """The runs are read and, when there are any, the selected run's details with a step to show."""
        return self.runs_loaded and (not self.runs or (self.shown is not None and self.step is not None))

    def repaint_now(self, full: bool = False) -> None:
        """Repaint what is pending at once instead of at the next tick (tests settle on it); ``full``: every
        panel, at the sizes the layout has now."""
        if full:
            self._mark("runs", "tree", "detail", "engine")
        self._check_tree_width()
        if self.dirty:
            self._flush()

    def _check_tree_width(self) -> None:
        # A step label shows as much as its width allows: a panel that changed size (layout, F10) relabels.
        try:
            width = self.query_one("#dash-steps", Tree).size.width
        except NoMatches:
            return
        if width and width != self._tree_width:
            self._mark("tree")

    def _flush(self) -> None:
        """Repaint what changed since the last repaint, each widget once."""
        self.flushes += 1
        dirty, self.dirty = self.dirty, set()
        for name, paint in (("runs", self._paint_runs), ("tree", self._paint_tree), ("detail", self._paint_detail),
                            ("output", self._paint_output), ("engine", self._redraw), ("jobs", self.paint_jobs)):
            if name in dirty and (name != "output" or "detail" not in dirty):  # a full detail repaint writes it
                self.repaints[name] = self.repaints.get(name, 0) + 1
                paint()

    def _paint_runs(self) -> None:
        table: DataTable[Any] = self.query_one("#dash-runs", DataTable)
        note = self.query_one("#dash-runs-note", RunsNote)
        empty = not self.runs
        table.display = not empty
        note.display = empty
        self.query_one("#dash-next").display = empty and bool(self.next_steps)
        self.query_one("#dash-lower").display = not empty
        panel = self.query_one("#dash-runs-panel")
        panel.set_class(empty, "-empty")
        if empty:
            note.update(self.runs_error or (view.NO_RUNS if self.runs_loaded else self.waiting_text()))
            panel.border_title = "Runs"
            return
        quotas = list(self.ctx.quotas["quotas"]) if self.ctx.quotas else []
        now, wide = self.ctx.clock(), self.size.width >= WIDE
        rows = {rid: view.run_row(view.live(run, now), quotas, wide) for rid, run in self.runs.items()}
        if self._table_shape == (list(rows), wide) and cells_fit(table, self._columns, rows.values()):
            # Same runs, same columns, each cell within its column's width: change the cells in place (no
            # clear, the cursor stays put).
            for rid, cells in rows.items():
                for col, value in zip(self._columns, cells, strict=True):
                    table.update_cell(rid, col, value)
        else:
            self._table_shape = (list(rows), wide)
            self._columns = fill_table(table, view.RUN_COLUMNS if wide else view.NARROW_COLUMNS, list(rows.items()))
        if self.selected in rows:
            table.move_cursor(row=list(rows).index(self.selected), animate=False)
        counts = [f"{n} {state}" for state in ("running", "waiting", "stopped")
                  if (n := sum(1 for r in self.runs.values() if view.shown_state(r) == state))]
        panel.border_title = " · ".join([f"Runs {len(self.runs)}", *counts])

    def info_changed(self) -> None:
        self._mark("runs")

    def jobs_changed(self) -> None:
        self._mark("jobs")
        self._flush()  # an answer or a dismissal shows at once; events wait for the tick

    def waiting_text(self) -> str:
        return "Loading runs…" if self.ctx.conn.name == "connected" else "waiting for the engine…"

    def _paint_tree(self) -> None:
        tree: Tree[str] = self.query_one("#dash-steps", Tree)
        panel = self.query_one("#dash-steps-panel")
        run = self.runs.get(self.selected or "")
        panel.border_title = view.run_title(run) if run else "Steps"
        if self._tree_run != self.selected or not self.steps:
            tree.clear()
            self._step_nodes, self._tree_run = {}, self.selected
        self._tree_width = tree.size.width
        width = max(20, tree.size.width or 36)
        for path, s in sorted(self.steps.items(), key=lambda kv: view.path_key(kv[0])):
            depth = path.count("/")
            label = view.step_label(s, width - 4 * (depth + 1))
            node = self._step_nodes.get(path)
            if node is None:
                parent = self._step_nodes.get(s["parent"] or "", tree.root)
                node = parent.add(label, data=path, expand=True, allow_expand=False)
                self._step_nodes[path] = node
                if node.parent is not None and node.parent is not tree.root:
                    node.parent.allow_expand = True
            elif str(node.label) != label.plain:
                node.set_label(label)
        tree.call_after_refresh(self._cursor_to_step)  # new nodes get their lines at the next refresh

    def _cursor_to_step(self) -> None:
        try:
            tree: Tree[str] = self.query_one("#dash-steps", Tree)
        except NoMatches:  # queued after a refresh, and the screen has gone meanwhile (mode switch, exit)
            return
        node = self._step_nodes.get(self.step or "")
        if node is not None and tree.cursor_node is not node:
            tree.move_cursor(node, animate=False)

    def _paint_detail(self) -> None:
        info = self.query_one("#dash-step-info", Static)
        out = self.query_one("#dash-output-scroll")
        gate_scroll = self.query_one("#dash-gate-scroll")
        panel = self.query_one("#dash-detail-panel")
        run = self.runs.get(self.selected or "")
        s = self.steps.get(self.step or "")
        ap = self.pending_approval()
        show_gate = ap is not None and (s is None or s["path"] == ap["step"])
        out.display = not show_gate
        gate_scroll.display = show_gate
        if show_gate and ap is not None:
            panel.border_title = f"Approval gate {ap['gate']}"
            info.update(view.gate_header(ap))
            self._show_gate(ap)
            return
        self._gate_key = None
        panel.border_title = f"Output {s['path']} {s['title']}" if s else "Output"
        lines = [view.step_detail(s)] if s else []
        if run is not None and (why := view.run_reason(run)):
            lines.append(why)
        if s is not None and s.get("reason"):
            lines.append(f"step: {s['reason']}")
        info.update("\n".join(lines) or ("Select a run above." if run is None else "Loading the run…"))
        self._pending_out = ""
        text = ""
        if s is not None and self.selected is not None:
            key = (self.selected, s["path"])
            if self._output_route and key not in self._fetched:
                self._fetched.add(key)
                self.load_output(*key)  # what it said before this screen saw it (the engine's tail or record)
            text = self.outputs.get(key) or self._artefact_text(s["path"])
        self._show_output(text)

    @work(group="dashboard-output", exit_on_error=False)
    async def load_output(self, run_id: str, path: str) -> None:
        """The step's output so far from the engine: its live tail (spliced with the events seen since, by
        offset) or, once it is over, its recorded output."""
        key = (run_id, path)
        try:
            got = await self.ctx.api.call(calls.run_output(run_id, path))
        except NotFound as exc:
            if exc.code in ("run_not_found", "step_not_found"):
                return  # gone meanwhile: nothing to show
            self._output_route = False  # an older engine: artefacts and events only
            return
        except MusubiError as exc:
            self.report_failure(exc, "Step output", notify=False)
            return
        if got["source"] == "live":
            self.outputs[key] = view.merge_answer(self.outputs.get(key, ""), self.out_end.get(key), got["text"],
                                                  got["end"])[-OUTPUT_KEEP:]
            self.out_end[key] = max(got["end"], self.out_end.get(key, 0))
        elif got["source"] == "record":
            self.outputs[key] = got["text"][-OUTPUT_KEEP:]  # what the step produced, in full
        if key == (self.selected, self.step):
            self._pending_out = "x"
            self._mark("output")
            self._flush()  # an answer the user waited for shows at once

    @work(exclusive=True, group="dashboard-stats", exit_on_error=False)
    async def load_stats(self, announce: bool = False) -> None:
        """This tenant's provider latency from the engine (p50/p95 per provider and model)."""
        self._stats_due = False
        try:
            rows = await self.ctx.api.call(calls.provider_stats())
        except NotFound:  # an older engine: the p95 of the calls this screen saw stands in
            self.provider_stats = None
            rows = None
        except MusubiError as exc:
            self.report_failure(exc, "Provider latency", notify=announce)
            return
        else:
            self.provider_stats = rows
        self._mark("engine")
        self._flush()
        if announce:
            body = (view.latency_table(rows) if rows is not None else "This engine has no latency route; the "
                    "p95 above is of the calls this Dashboard saw.")
            self.notify(body, title=f"Provider latency · {self.ctx.tenant}", timeout=12)

    def _stats_tick(self) -> None:
        if self._stats_due and self.ctx.conn.name == "connected":
            self.load_stats()

    def _artefact_text(self, path: str) -> str:
        """A finished step's output from its artefacts, until the engine's answer is here."""
        arts = [a for a in self.artefacts() if a["step"] == path]
        if arts:
            return "\n\n".join(f"── {a['name']} ({a['kind']}, {a['state']})\n{a['content']}" for a in arts)
        s = self.steps.get(path)
        if s is not None and s["status"] == "running":
            return "(streaming: new output appears here as it arrives)"
        return "(no output recorded for this step)"

    def _paint_output(self) -> None:
        # Everything that arrived since the last repaint, in one update of the panel.
        if self._pending_out and self.selected is not None and self.step is not None:
            # (set by events, and by an output answer: the panel then shows the spliced text)
            self._pending_out = ""
            self._show_output(self.outputs.get((self.selected, self.step), ""))

    def _show_output(self, text: str) -> None:
        scroll = self.query_one("#dash-output-scroll", VerticalScroll)
        following = scroll.scroll_y >= scroll.max_scroll_y  # at the end: stay there as text arrives
        self.query_one("#dash-output", Static).update(text[-OUTPUT_SHOWN:])
        if following:
            scroll.call_after_refresh(scroll.scroll_end, animate=False)

    def _show_gate(self, ap: RunApproval) -> None:
        key = (self.selected or "", ap["gate"], ap["shown_sha256"])
        if key == self._gate_key:
            return
        self._gate_key = key
        self.query_one("#dash-gate", Static).update(Text(ap["shown"], no_wrap=True))
        theme = "ansi_dark" if self.ctx.color.system in ("16", "none") else "monokai"
        self.highlight_gate(key, ap["shown"], theme)

    @work(group="dashboard-diff", exclusive=True, exit_on_error=False, thread=True)
    def highlight_gate(self, key: tuple[str, str, str], text: str, theme: str) -> None:
        body = view.highlight(text, theme)  # pygments loads here, off the event loop
        self.app.call_from_thread(self._set_gate, key, body)

    def _set_gate(self, key: tuple[str, str, str], body: Any) -> None:
        if key == self._gate_key:
            self.query_one("#dash-gate", Static).update(body)

    def engine_text(self) -> Content:
        lines = [super().engine_text()]
        if self.ctx.conn.name == "connected":
            if self.provider_stats is not None:  # the engine's figures for this tenant
                shown = view.latency_lines(self.provider_stats)
                lines.append(Content(" · ".join(shown) if shown else "p95: no calls in this tenant yet"))
            else:
                rows = self.latencies.p95()
                # The figure first: a narrow panel cuts the model's name, not the number.
                lines.append(Content(" · ".join(f"p95 {view.millis(ms)} {m}" for m, ms, _n in rows[:2]) if rows
                                     else "p95: no calls seen yet"))
        return Content("\n").join(lines)
