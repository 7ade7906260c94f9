"""Trace (mode 2): requirement → design / tasks / code / tests, coverage, filters, impact.

The engine does the work (``/v1/trace``, ``/v1/spec/lint``, ``/v1/trace/impact/{id}``);
this screen draws a tree of its answer, shows details and a preview of linked
lines, opens a location in ``$EDITOR`` (the app is suspended meanwhile), and
re-scans on ``r`` and by itself while shown: every few seconds it asks the engine
for a summary (``view=changes``), which the engine answers from memory unless its file watcher saw a
change (where watching is unavailable, an incremental scan: only files whose
size/mtime changed are read); the full matrix is fetched again only when something changed.
State is always shown by a symbol and a word, never by colour alone.  The labels and the
preview are in ``tui.screens.trace_labels``; handing the terminal to the editor is ``tui.editor``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Static, Tree
from textual.widgets.tree import TreeNode
from textual.worker import Worker

from core.api import calls
from core.errors import EngineUnavailable, MusubiError, PermissionDenied, TenantSuspended
from core.exports import write_export
from tui.context import ConnState
from tui.editor import editor_command, run_in_terminal
from tui.failures import failure_message
from tui.screens.base import ModeScreen
from tui.screens.trace_labels import (
    COLUMNS,
    column_label,
    component_of,
    link_label,
    live_links,
    read_preview,
    req_label,
    req_state,
    suggestions_hint,
    summary_text,
)
from tui.widgets.panel import Panel

if TYPE_CHECKING:
    from core.api.responses import SpecLint, TraceReport

EXPORT_FORMATS = ("html", "md", "csv", "json")  # what /v1/trace/export renders (core.trace.export.FORMATS)
ENGINE_GONE = "engine not reachable (the status bar shows when it is back; the matrix reloads then)"
NEEDS = "this screen needs"  # the start of a lasting permission notice
POLL_S = 3.0  # how often the shown screen asks the engine whether the repository changed

NodeData = tuple[str, ...]  # ("req", id) | ("col", id, column) | ("link", id, column, index)


class TraceScreen(ModeScreen):
    MODE = "trace"
    # The tree, never the filter input: an input focused before the data arrives swallows the next digit.
    AUTO_FOCUS = "#trace-tree"
    WORKER_TITLES: ClassVar[dict[str, str]] = {
        "trace-load": "Trace", "trace-poll": "Trace re-scan", "trace-preview": "Preview",
        "trace-impact": "Impact", "trace-decide": "Links", "trace-review": "Review",
        "trace-export": "Trace export",
    }
    HELP = (
        "Trace: each requirement of the repository around the folder you started musubi in, with its "
        "design, tasks, code and tests. ✔ covered, ◐ partial, ✘ uncovered, ⚠ suspect (changed since review). "
        "Enter expands; r re-scans (it also re-scans by itself); u uncovered only; c component; t status; "
        "/ text filter; i impact; e opens the location in $EDITOR; v marks the requirement reviewed; "
        "a / x accept or reject a suggested link; s exports the matrix (JSON, CSV, Markdown, HTML) to a file."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "rescan", "Re-scan", id="trace_rescan"),
        Binding("u", "toggle_uncovered", "Uncovered", id="trace_uncovered", show=False),
        Binding("c", "cycle_component", "Component", id="trace_component", show=False),
        Binding("t", "cycle_status", "Status", id="trace_status", show=False),
        Binding("slash", "search", "Filter", id="trace_search"),
        Binding("i", "impact", "Impact", id="trace_impact"),
        Binding("e", "open_editor", "Edit", id="trace_open"),
        Binding("v", "review", "Review", id="trace_review"),
        Binding("s", "export", "Export", id="trace_export"),
        Binding("a", "decide('accepted')", "Accept", id="trace_accept", show=False),
        Binding("x", "decide('rejected')", "Reject", id="trace_reject", show=False),
    ]
    DEFAULT_CSS = """
    #trace-header { height: auto; padding: 0 1; text-style: bold; }
    #trace-filter-row { height: 1; padding: 0 1; }
    #trace-search { width: 40; height: 1; border: none; padding: 0; }
    TraceScreen.-narrow #trace-search { width: 22; }
    #trace-filter-state { width: 1fr; height: 1; padding: 0 1; color: $text-muted; }
    #trace-main { height: 1fr; }
    #trace-tree-panel { width: 3fr; }
    #trace-details-panel { width: 2fr; }
    #trace-tree { height: 1fr; }
    """

    class Loaded(Message):
        def __init__(self, report: TraceReport | None, lint: SpecLint | None, error: str | None) -> None:
            super().__init__()
            self.report, self.lint, self.error = report, lint, error

    def compose_body(self) -> ComposeResult:
        yield Static("Trace — waiting for the engine…", id="trace-header", markup=False)
        with Horizontal(id="trace-filter-row"):
            yield Input(placeholder="/ filter: id, title, text", id="trace-search")
            yield Static("", id="trace-filter-state", markup=False)
        with Horizontal(id="trace-main"):
            tree: Tree[NodeData] = Tree("requirements", id="trace-tree")
            tree.show_root = False
            yield Panel(tree, title="Requirements", id="trace-tree-panel")
            yield Panel(VerticalScroll(Static("", id="trace-details", markup=False)), title="Details",
                        id="trace-details-panel")

    def on_mount(self) -> None:
        self.report: TraceReport | None = None
        self.lint: SpecLint | None = None
        self.error: str | None = None
        # The filters and selection of the last session (tui.state; musubi --fresh starts clean).
        saved = self.ctx.saved.section("trace")
        self.uncovered_only = saved.get("uncovered_only") is True
        self.component: str | None = _str_or_none(saved.get("component"))
        self.status: str | None = _str_or_none(saved.get("status"))
        self.text = _str_or_none(saved.get("text")) or ""
        self._restore_selected = _str_or_none(saved.get("selected"))
        if self.text:
            self.query_one("#trace-search", Input).value = self.text
        self._focused_once = False
        self._load_worker: Worker[None] | None = None
        self._load_again = False
        self._poll_worker: Worker[None] | None = None
        self._seq = 0  # latest detail request; older answers are dropped
        self.ctx.conn_changed.subscribe(self, self._on_conn)
        if self.ctx.conn.name == "connected":
            self.load()
        self.set_interval(POLL_S, self._poll)

    # -- which repository -----------------------------------------------------------------

    def repo_path(self) -> str | None:
        """The repository to trace: the one around the folder the app was started in (None: the engine's project)."""
        from core.trace.root import find_repo_root

        root = find_repo_root(self.ctx.api.identity.cwd or os.getcwd())
        return str(root) if root else None

    # -- loading --------------------------------------------------------------------------

    def _on_conn(self, state: ConnState) -> None:
        if state.name == "connected":
            if self.error is not None or self.report is None:
                self.error = None  # a failure from before the reconnect is no longer true
                self._rebuild_or_wait()
                self.load(again=True)
        elif state.name in ("reconnecting", "down") and self.report is None:
            self.error = ENGINE_GONE
            self._rebuild()

    def load(self, again: bool = False) -> None:
        """Fetch the matrix again, unless a fetch is already on its way (it will do; with ``again``, once more after).

        Workers here are never cancelled by a newer one (a cancelled worker surprises
        whoever waits on it); redundant requests are skipped and stale answers dropped.
        """
        if self._load_worker is not None and self._load_worker.is_running:
            self._load_again = self._load_again or again  # its answer may predate the change: fetch once more
            return
        self._load_again = False
        self._load_worker = self.run_worker(self._load(), group="trace-load", exit_on_error=False)

    async def _load(self) -> None:
        repo = self.repo_path()
        try:
            report = await self.ctx.api.call(calls.trace_report(repo))
        except MusubiError as exc:
            self.report_failure(exc, "Trace", notify=False)  # the screen shows it in place; F12 has the details
            self.post_message(self.Loaded(None, None, short_error(exc)))
            return
        try:
            lint = await self.ctx.api.call(calls.spec_lint(repo))
        except MusubiError as exc:
            lint = None  # the matrix is still worth showing
            self.report_failure(exc, "Spec lint", notify=False)
        self.post_message(self.Loaded(report, lint, None))

    def _poll(self) -> None:
        if not self.is_current or self.ctx.conn.name != "connected" or self.report is None:
            return
        busy = [w for w in (self._load_worker, self._poll_worker) if w is not None and w.is_running]
        if not busy:  # polls never overlap on a slow link: the next one waits for this one
            self._poll_worker = self.run_worker(self._poll_once(), group="trace-poll", exit_on_error=False)

    async def _poll_once(self) -> None:
        if self.report is None:
            return
        try:
            s = await self.ctx.api.call(calls.trace_report(self.repo_path(), view="changes"))
        except MusubiError as exc:
            self.report_failure(exc, "Trace re-scan", notify=False)  # the next poll tries again
            return
        if s["scan"].get("parsed") or s["summary"] != self.report.get("summary"):
            self.load()

    def worker_failed(self, worker: Worker[Any]) -> None:
        if worker.group == "trace-load" and worker.error is not None:
            self.post_message(self.Loaded(None, None, short_error(worker.error)))  # not "loading…" forever

    def on_trace_screen_loaded(self, message: Loaded) -> None:
        self.error = message.error
        if message.report is not None:
            self.report, self.lint = message.report, message.lint
        self._rebuild()
        if self._load_again:
            self.call_after_refresh(self.load)

    def _rebuild_or_wait(self) -> None:
        if self.report is None:
            self.query_one("#trace-header", Static).update("Trace — engine reachable again; loading…")
        else:
            self._rebuild()

    # -- filters --------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        if not self.report:
            return []
        out = []
        text = self.text.lower()
        for r in self.report["requirements"]:
            if self.uncovered_only and all(r["shallow"].values()):
                continue
            if self.component and component_of(r["id"]) != self.component:
                continue
            if self.status and (r["status"] or "none") != self.status:
                continue
            if text and text not in f"{r['id']} {r['title']} {r['statement']}".lower():
                continue
            out.append(r)
        return out

    def _choices(self, key: str) -> list[str]:
        reqs = self.report.get("requirements", []) if self.report else []
        if key == "component":
            return sorted({component_of(r["id"]) for r in reqs})
        return sorted({r["status"] or "none" for r in reqs})

    def _cycle(self, current: str | None, key: str) -> str | None:
        options: list[str | None] = [None, *self._choices(key)]
        i = options.index(current) if current in options else 0
        return options[(i + 1) % len(options)]

    def action_toggle_uncovered(self) -> None:
        self.uncovered_only = not self.uncovered_only
        self._rebuild()

    def action_cycle_component(self) -> None:
        self.component = self._cycle(self.component, "component")
        self._rebuild()

    def action_cycle_status(self) -> None:
        self.status = self._cycle(self.status, "status")
        self._rebuild()

    def action_search(self) -> None:
        self.query_one("#trace-search", Input).focus()

    @on(Input.Changed, "#trace-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.text = event.value.strip()
        self._rebuild()

    @on(Input.Submitted, "#trace-search")
    def _search_done(self, _event: Input.Submitted) -> None:
        self.query_one("#trace-tree", Tree).focus()

    def action_rescan(self) -> None:
        self.notify("Re-scanning the repository…", title="Trace", timeout=2)
        self.load()

    # -- drawing --------------------------------------------------------------------------

    def _rebuild(self) -> None:
        header = self.query_one("#trace-header", Static)
        tree: Tree[NodeData] = self.query_one("#trace-tree", Tree)
        if self.error and self.report is None:
            header.update(f"Trace — {self.error}")
            tree.clear()
            if self.error.startswith(NEEDS):  # not "nothing to trace": the user may not read it
                self._details(Content(f"{self.error}\n\nAn owner or admin can grant a role that holds it: "
                                      f"musubi member add {self.ctx.user} --role ROLE."))
                return
            self._details(Content(
                "Nothing to trace here.\n\nStart musubi inside a repository (a folder with .git, musubi.toml, "
                ".kiro or storage/specs), or register it: musubi project add PATH.\n\nFrom a shell: musubi trace PATH"))
            return
        if self.report is None:
            return
        root = self.report["root"]
        stale = f"  (last re-scan failed: {self.error})" if self.error else ""
        header.update(f"{summary_text(self.report)}\n{root}{stale}{suggestions_hint(self.report)}")
        rows = self.rows()
        self.query_one("#trace-filter-state", Static).update(self._filter_text(len(rows)))
        expanded = {n.data[1] for n in _walk(tree.root) if n.data and n.data[0] == "req" and n.is_expanded}
        cursor = tree.cursor_node.data if tree.cursor_node else None
        if cursor is None and self._restore_selected:
            cursor, self._restore_selected = ("req", self._restore_selected), None
        self.ctx.saved.update("trace", uncovered_only=self.uncovered_only, component=self.component,
                              status=self.status, text=self.text)
        tree.clear()
        target: TreeNode[NodeData] | None = None
        for r in rows:
            node = tree.root.add(req_label(r), data=("req", r["id"]), expand=r["id"] in expanded)
            target = node if cursor and cursor[:2] == ("req", r["id"]) else target
            for c in COLUMNS:
                links = live_links(r, c)
                # Text, not str: a label such as "[suggested]" must not be read as markup.
                cn = node.add(Text(column_label(r, c)), data=("col", r["id"], c), expand=bool(links))
                for i, lk in enumerate(links):
                    leaf = cn.add_leaf(Text(link_label(c, lk)), data=("link", r["id"], c, str(i)))
                    if cursor == leaf.data:
                        target = leaf
        if not rows:
            self._details(Content(self._empty_text()))
        if target is not None:
            tree.move_cursor(target)
            if tree.cursor_node is not target:  # a fresh tree has no lines yet: move once they are laid out
                self.call_after_refresh(tree.move_cursor, target)
        elif rows and tree.cursor_node is None:
            tree.move_cursor(tree.root.children[0])
        if not self._focused_once:
            self._focused_once = True
            tree.focus()  # first load: the screen's keys work from the tree; / jumps to the filter
        # The tree lays out its new lines on the next refresh; read the cursor after that.
        self.call_after_refresh(self._show_selected)

    def _filter_text(self, shown: int) -> str:
        """Every active filter, short enough for the 80-column filter line (the keys are named once)."""
        total = len(self.report.get("requirements", [])) if self.report else 0
        parts = [
            f"{shown}/{total}",
            "uncovered" if self.uncovered_only else "all",
            f"comp {self.component or 'any'}",
            f"status {self.status or 'any'}",
        ]
        if self.text:
            parts.append(f"text {self.text!r}")
        return " · ".join(parts) + "  (u c t /)"

    def _empty_text(self) -> str:
        if self.report and not self.report["requirements"]:
            return ("No requirements found.\n\nWrite them as headings like\n  ## REQ-AUTH-001: Password login\n"
                    "in storage/specs/*.md or .kiro/specs/<feature>/requirements.md (see docs/trace.md).")
        return "No requirement matches the filters (u, c, t, / change them)."

    def _details(self, content: Content | str) -> None:
        self.query_one("#trace-details", Static).update(content)

    # -- selection and details ------------------------------------------------------------

    def _selected(self) -> tuple[dict[str, Any] | None, NodeData | None]:
        tree: Tree[NodeData] = self.query_one("#trace-tree", Tree)
        data = tree.cursor_node.data if tree.cursor_node else None
        if not data or not self.report:
            return None, None
        row = next((r for r in self.report["requirements"] if r["id"] == data[1]), None)
        return row, data

    @on(Tree.NodeHighlighted, "#trace-tree")
    def _highlighted(self, _event: Tree.NodeHighlighted[NodeData]) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        row, data = self._selected()
        if row is None or data is None:
            return
        self.ctx.saved.update("trace", selected=row["id"])
        if data[0] == "link":
            lk = live_links(row, data[2])[int(data[3])]
            self._seq += 1
            self._details(Content(f"{link_label(data[2], lk)}\nsource {lk['source']} · state {lk['state']} · "
                                  f"cites {lk['via']}\n\n…loading preview"))
            self.preview(row["id"], lk, self._seq)
            return
        self._seq += 1
        self._details(self._requirement_text(row))

    def _requirement_text(self, row: dict[str, Any]) -> Content:
        sym, word = req_state(row)
        review = "⚠ suspect: changed since its last review (v marks it reviewed)" if row["suspect"] else (
            "reviewed" if row["reviewed"] else "never reviewed")
        lines = [
            f"{sym} {row['id']} — {word}",
            row["title"],
            f"{row['path']}:{row['line']} · priority {row['priority'] or '-'} · status {row['status'] or '-'}",
            f"review: {review}",
            "",
            row["statement"] or "(no statement)",
        ]
        lines += [f"  AC{i}. {c}" for i, c in enumerate(row["criteria"], 1)]
        lines += ["", "coverage   " + "  ".join(f"{c} {'✔' if row['shallow'][c] else '✘'}" for c in COLUMNS),
                  "deep       " + "  ".join(f"{c} {'✔' if row['deep'][c] else '✘'}" for c in COLUMNS)]
        findings = [f for f in (self.lint["findings"] if self.lint else []) if f.get("id") == row["id"]]
        if findings:
            lines += ["", "lint:"] + [f"  {f['severity']} {f['rule']} (line {f['line']}): {f['message']}" for f in findings]
        elif self.lint is not None:
            lines += ["", "lint: no findings"]
        return Content("\n".join(lines))

    @work(group="trace-preview", exit_on_error=False, thread=True)
    def preview(self, rid: str, lk: dict[str, Any], seq: int) -> None:
        root = self.report["root"] if self.report else ""
        text = read_preview(root, lk["path"], int(lk.get("line") or 0))
        head = f"{link_label('code', lk) if lk['kind'] in ('code', 'test') else link_label('design', lk)}"
        body = f"{head}\nsource {lk['source']} · state {lk['state']} · cites {lk['via']} · for {rid}\n\n{text}"
        self.app.call_from_thread(self._details_if_current, seq, Content(body))

    def _details_if_current(self, seq: int, content: Content) -> None:
        if seq == self._seq:
            self._details(content)

    # -- actions on the selection ---------------------------------------------------------

    def action_impact(self) -> None:
        row, _data = self._selected()
        if row is None:
            self.notify("Select a requirement first.", title="Impact", severity="warning")
            return
        self._seq += 1
        self.impact(row["id"], self._seq)

    @work(group="trace-impact", exit_on_error=False)
    async def impact(self, rid: str, seq: int) -> None:
        try:
            d = await self.ctx.api.call(calls.trace_impact(rid, self.repo_path()))
        except MusubiError as exc:
            self.report_failure(exc, "Impact")
            return
        lines = [f"Impact of {d['id']} — {d['title']}", "Everything to revisit when it changes:"]
        if d.get("suspect"):
            lines.append("⚠ suspect: its text changed since the last review")
        columns: dict[str, Any] = dict(d)
        for c in COLUMNS:
            items = columns.get(c, [])
            lines.append(f"\n{c} ({len(items)})")
            lines += [f"  {i['target'] + ' ' if c in ('design', 'tasks') else ''}{i['path']}:{i['line']}"
                      + (f" via {i['via']}" if i["via"] != rid else "") for i in items]
        if d.get("requirements"):
            lines.append(f"\nrequirements citing it ({len(d['requirements'])})")
            lines += [f"  {r['id']} {r['path']}:{r['line']}" for r in d["requirements"]]
        lines.append(f"\n{len(d.get('files', []))} file(s) to revisit")
        self._details_if_current(seq, Content("\n".join(lines)))

    def location(self) -> tuple[str, int] | None:
        """Absolute path and line of the selection (a link's location, or the requirement's heading)."""
        row, data = self._selected()
        if row is None or data is None or not self.report:
            return None
        if data[0] == "link":
            lk = live_links(row, data[2])[int(data[3])]
            rel, line = lk["path"], int(lk.get("line") or 1)
        else:
            rel, line = row["path"], int(row["line"])
        return str(Path(self.report["root"]) / rel), line

    def editor_command(self, path: str, line: int) -> list[str]:
        return editor_command(path, line)

    def action_open_editor(self) -> None:
        loc = self.location()
        if loc is None:
            self.notify("Select a requirement or a link first.", title="Edit", severity="warning")
            return
        cmd = self.editor_command(*loc)
        self.run_editor(cmd)

    def run_editor(self, cmd: list[str]) -> None:
        """Hand the terminal to the editor, then re-scan (the file may have changed)."""
        problem = run_in_terminal(self.app, cmd)
        if problem is not None:
            self.notify(problem.message, title="Edit", severity=problem.severity)
            return
        self.load()

    def action_decide(self, state: str) -> None:
        """Accept or reject the selected suggested link; the decision is kept in links.yml."""
        if self.refuse("trace_accept" if state == "accepted" else "trace_reject"):
            return
        row, data = self._selected()
        if row is None or data is None or data[0] != "link":
            self.notify("Select a suggested link first (a, x decide on suggestions).", title="Links", severity="warning")
            return
        lk = live_links(row, data[2])[int(data[3])]
        if lk["state"] != "suggested":
            self.notify("Only suggested links need a decision; this one comes from the repository itself.",
                        title="Links", severity="warning")
            return
        body = {"requirement": row["id"], "kind": lk["kind"], "target": lk["target"],
                "line": lk.get("line") or None, "state": state, "source": "suggested"}
        self.decide(body)

    @work(group="trace-decide", exit_on_error=False)
    async def decide(self, body: dict[str, Any]) -> None:
        try:
            await self.ctx.api.call(calls.trace_link(**body, path=self.repo_path()))
        except MusubiError as exc:
            self.report_failure(exc, "Links")
            return
        self.notify(f"{body['state'].capitalize()} {body['kind']} link {body['requirement']} → {body['target']}.",
                    title="Links")
        self.load()

    def action_review(self) -> None:
        if self.refuse("trace_review"):
            return
        row, _data = self._selected()
        if row is None:
            self.notify("Select a requirement first.", title="Review", severity="warning")
            return
        self.review(row["id"])

    @work(group="trace-review", exit_on_error=False)
    async def review(self, rid: str) -> None:
        try:
            d = await self.ctx.api.call(calls.trace_review(rid, self.repo_path()))
        except MusubiError as exc:
            self.report_failure(exc, "Review")
            return
        note = "; its links are no longer suspect" if d.get("was_suspect") else ""
        self.notify(f"Reviewed {rid}{note}. Commit storage/traceability/links.yml to share it.", title="Review")
        self.load()

    # -- export ---------------------------------------------------------------------------

    def action_export(self) -> None:
        """A form like Admin's audit export; the engine renders the matrix, this app writes the file."""
        if self.refuse("trace_export"):
            return
        if self.report is None:
            self.notify("Nothing to export yet: the matrix has not loaded.", title="Trace export", severity="warning")
            return
        from tui.screens.admin.forms import REPLACE_CHOICES, FormField, FormModal

        root = self.report["root"]
        fields = [
            FormField("format", "Format:", "html", choices=[(f, f) for f in EXPORT_FORMATS]),
            FormField("path", f"File (relative to {root}):", "musubi-trace.html"),
            FormField("force", "If the file exists:", "keep", choices=REPLACE_CHOICES),
        ]
        intro = ("Every requirement with its design, tasks, code and tests, as `musubi trace export` writes it: "
                 "never inside MUSUBI_HOME (but its exports/ folder), never through a symbolic link.")

        def done(values: dict[str, str] | None) -> None:
            if values:
                target = Path(os.path.expanduser(values["path"]))
                self.export(values["format"], str(target if target.is_absolute() else Path(root) / target),
                            values.get("force") == "replace")

        self.app.push_screen(FormModal("Export the trace matrix", fields, "Export", intro=intro,
                                       extensions={f: f for f in EXPORT_FORMATS}), done)

    @work(group="trace-export", exit_on_error=False, description="export the trace matrix")
    async def export(self, fmt: str, path: str, force: bool) -> None:
        try:
            d = await self.ctx.api.call(calls.trace_export(fmt, self.repo_path()))
            target = await asyncio.to_thread(write_export, path, self.ctx.api.paths.home, d["content"], force=force)
        except MusubiError as exc:
            self.report_failure(exc, "Trace export")
            return
        self.notify(f"Wrote the trace matrix ({fmt}) to {target}.", title="Exported")


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def short_error(exc: BaseException) -> str:
    """One short line for the header: no transport text (F12 lists the full failure)."""
    if isinstance(exc, EngineUnavailable):
        return ENGINE_GONE
    if isinstance(exc, PermissionDenied) and not isinstance(exc, TenantSuspended):
        perm = exc.extra.get("permission") or "specs.read"
        return f"{NEEDS} {perm}, which you lack in this tenant"
    text = failure_message(exc).splitlines()[0] if failure_message(exc) else type(exc).__name__
    return text if len(text) <= 110 else text[:109] + "…"


def _walk(node: TreeNode[NodeData]) -> list[TreeNode[NodeData]]:
    out = []
    for child in node.children:
        out.append(child)
        out.extend(_walk(child))
    return out
