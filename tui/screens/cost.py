"""Cost (mode 4): pick models and a scope, see what the run would cost, live.

Models are a multi-select list; the scope is a workflow (or one task) plus files
chosen by glob or from a directory tree of the folder musubi was started in.  Every
change schedules a new estimate in a worker (the engine counts the files; a newer
request replaces a stale one, latest wins).  The table shows per model the tokens,
the cost range, whether the run fits the context window and a quota-headroom bar
with a word, so nothing rests on colour alone.  ``x`` exports the estimate as
JSON, CSV or Markdown.
"""

from __future__ import annotations

import asyncio
import glob as globmod
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, DirectoryTree, Input, Select, SelectionList, Static
from textual.widgets.selection_list import Selection

from core.api import calls
from core.errors import MusubiError
from core.exports import write_export
from core.models.report import EXTENSIONS, FORMATS, render
from tui.context import ConnState
from tui.screens.base import ModeScreen
from tui.widgets.checklist import CheckList
from tui.widgets.format import bar
from tui.widgets.panel import Panel
from tui.widgets.table_fill import Row, fill_table

if TYPE_CHECKING:
    from core.api.calls import Call
    from core.api.responses import Estimate, ModelEntry

DEFAULT_PICKS = ("gpt-6.1-sol", "claude-sonnet-5-5", "gemini-3.8-flash")
TASK_SCOPES = ("implementation", "review", "summarise", "requirements", "design", "tasks", "test", "classify")
MAX_FILES = 5000
DEBOUNCE_S = 0.3


def expand_glob(root: Path, pattern: str) -> list[str]:
    """Absolute regular files under ``root`` matching ``pattern`` (``**`` recurses), sorted, capped."""
    pattern = pattern.strip()
    if not pattern:
        return []
    base = Path(os.path.expanduser(pattern))
    hits = globmod.glob(str(base if base.is_absolute() else root / pattern), recursive=True)
    return sorted(os.path.abspath(h) for h in hits if os.path.isfile(h))[:MAX_FILES]


def files_under(path: Path) -> list[str]:
    """``path`` itself, or every regular file below a directory (hidden folders skipped), capped."""
    if path.is_file():
        return [str(path.resolve())]
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [os.path.join(dirpath, f) for f in sorted(filenames)]
        if len(out) >= MAX_FILES:
            break
    return [os.path.abspath(p) for p in out[:MAX_FILES]]


def headroom_cell(m: dict[str, Any], with_bar: bool = False) -> str:
    """The tightest quota after the run (high figure) as a word and figures (a bar on wide screens).

    A quota the run would trip names what it needs and what is left: "TRIPS tokens/day" alone
    gives no amount to act on.
    """
    quotas = m.get("quotas") or []
    tripped = [q for q in quotas if (q.get("trips") or {}).get("expected")]
    if tripped or m.get("trips"):
        if not tripped:
            return "TRIPS " + ", ".join(t.split(" (")[0] for t in m["trips"])
        q = min(tripped, key=lambda q: q["remaining_after"]["expected"])
        return (f"TRIPS {q['metric']}/{q['period']}: needs {q['needed']['expected']:,}, "
                f"{max(0, q['remaining_now']):,} left")
    if not quotas:
        return "no quotas"
    tight = min(quotas, key=lambda q: q["headroom_after"]["high"])
    frac = max(0.0, float(tight["headroom_after"]["high"]))
    word = "MAY TRIP" if m.get("trips_high") else "OK"
    cell = f"{word} {frac:.0%} left {tight['metric']}/{tight['period']}"
    return f"{cell} {bar(frac, 6)}" if with_bar else cell


def usd(v: str) -> str:
    """A dollar string to 4 decimals (the table is narrow; exports keep all six)."""
    return f"{float(v):.4f}"


def _rng(d: dict[str, int]) -> str:
    vals = (d["low"], d["expected"], d["high"])
    return f"{d['expected']:,}" if min(vals) == max(vals) else f"~{d['expected']:,}"


class CostTable(DataTable[str]):
    HELP = (
        "One row per selected model: input and output tokens (~ = estimated tokenizer), cost expected "
        "(low-high) in dollars, context fit, and the tightest quota's headroom after the run."
    )


class CostScreen(ModeScreen):
    MODE = "cost"
    WORKER_TITLES: ClassVar[dict[str, str]] = {
        "cost-models": "Models", "cost-glob": "Files", "cost-estimate": "Estimate", "cost-export": "Export failed",
    }
    HELP = (
        "Cost: what a run would cost before it starts. Select models (space), a workflow or task, and files "
        "by glob or from the tree (t, then enter on a file or folder). The estimate updates by itself; "
        "r re-estimates, x exports JSON/CSV/Markdown, c clears the files."
    )
    BINDINGS = [
        Binding("r", "estimate", "Estimate", id="cost_estimate"),
        Binding("x", "export", "Export", id="cost_export"),
        Binding("t", "toggle_tree", "Files tree", id="cost_tree"),
        Binding("c", "clear_files", "Clear files", id="cost_clear"),
    ]
    DEFAULT_CSS = """
    #cost-split { height: 1fr; }
    #cost-models-panel { width: 36; }
    /* Below 150 columns the models list sits above the estimate, so the table has the full width. */
    CostScreen.-narrow #cost-split, CostScreen.-wide #cost-split { layout: vertical; }
    CostScreen.-narrow #cost-models-panel { width: 1fr; height: 7; }
    CostScreen.-wide #cost-models-panel { width: 1fr; height: 30%; }
    CostScreen.-xwide #cost-models-panel { width: 46; }
    #cost-models { height: 1fr; border: none; padding: 0; }
    #cost-right { width: 1fr; }
    #cost-scope-panel { height: auto; }
    #cost-scope-row { height: auto; }
    #cost-workflow { width: 26; }
    CostScreen.-narrow #cost-workflow { width: 26; }
    #cost-glob { width: 1fr; }
    #cost-scope-info { height: 1; color: $foreground 70%; }
    #cost-tree-panel { height: 1fr; display: none; }
    #cost-tree-panel.-shown { display: block; }
    #cost-table-panel { height: 1fr; }
    #cost-table { height: 1fr; }
    #cost-notes { height: auto; max-height: 3; color: $foreground 70%; }
    """

    class Estimated(Message):
        def __init__(self, data: Estimate) -> None:
            super().__init__()
            self.data = data

    class ModelsLoaded(Message):
        def __init__(self, models: list[ModelEntry], workflows: list[dict[str, Any]]) -> None:
            super().__init__()
            self.models = models
            self.workflows = workflows

    def compose_body(self) -> ComposeResult:
        self.root = Path(self.ctx.api.identity.cwd or os.getcwd())
        with Horizontal(id="cost-split"):
            with Panel(title="Models (space selects)", id="cost-models-panel"):
                yield CheckList(id="cost-models")
            with Vertical(id="cost-right"):
                with Panel(title="Scope", id="cost-scope-panel"):
                    with Horizontal(id="cost-scope-row"):
                        yield Select([(f"task {t}", f"task:{t}") for t in TASK_SCOPES], value="task:implementation",
                                     allow_blank=False, id="cost-workflow", compact=True)
                        glob_in = Input(placeholder="files: glob, e.g. src/**/*.py", id="cost-glob", compact=True)
                        glob_in.cursor_blink = self.ctx.animations
                        yield glob_in
                    yield Static("no files chosen: the estimate covers the prompts only", id="cost-scope-info", markup=False)
                # The tree mounts on first use (t): its loader worker then runs for the screen's life.
                yield Panel(title=f"Files under {self.root}", id="cost-tree-panel")
                with Panel(title="Estimate", id="cost-table-panel"):
                    yield CostTable(id="cost-table", cursor_type="row", zebra_stripes=True)
                    yield Static("", id="cost-notes", markup=False)

    def on_mount(self) -> None:
        self.estimate: Estimate | None = None
        self.glob_files: list[str] = []
        self.tree_files: dict[str, None] = {}
        self._models_loaded = False
        self._table_width = ""
        self._fill_table()
        self._stale = False
        self._quotas_seen = self.ctx.quotas  # the headroom the estimates answer to
        self.ctx.conn_changed.subscribe(self, self._on_conn)
        # Quotas changed by anyone (usage, a new limit): the headroom column must follow.
        self.ctx.data_changed.subscribe(self, self._on_data)
        if self.ctx.conn.name == "connected":
            self.load_models()
        else:
            self._note("waiting for the engine…")

    def _on_conn(self, state: ConnState) -> None:
        if state.name == "connected" and not self._models_loaded:
            self.load_models()

    def _on_data(self, what: str) -> None:
        if what != "quotas" or not self._models_loaded:
            return
        if self.ctx.quotas == self._quotas_seen:
            return  # the periodic re-read found nothing new: the estimate shown still holds
        self._quotas_seen = self.ctx.quotas
        if self.is_current:
            self.schedule()  # debounced and exclusive: a burst of quota events makes one estimate
        else:
            self._stale = True

    def on_screen_resume(self) -> None:
        if getattr(self, "_stale", False):
            self._stale = False
            self.schedule()

    def _note(self, text: str) -> None:
        self.query_one("#cost-notes", Static).update(text)

    # -- loading ----------------------------------------------------------------------------

    @work(exclusive=True, group="cost-models", exit_on_error=False)
    async def load_models(self) -> None:
        try:
            models = (await self.ctx.api.call(calls.models_list()))["models"]
            workflows = (await self.ctx.api.call(calls.cost_workflows()))["workflows"]
        except MusubiError as exc:
            self._note(f"cannot list models: {exc.message}")
            self.report_failure(exc, "Models", notify=False)  # the note shows it in place
            return
        self.post_message(self.ModelsLoaded(models, workflows))

    def on_cost_screen_models_loaded(self, message: ModelsLoaded) -> None:
        self._models_loaded = True
        # A retired model would only be refused: the list offers the models one can still run.
        message.models = [m for m in message.models if m.get("status") != "retired"]
        allowed = [m for m in message.models if m.get("allowed", True)]
        saved = self.ctx.saved.section("cost")  # the last session's choice (tui.state), if still offered
        kept = {m["id"] for m in allowed if m["id"] in (saved.get("models") or [])}
        picks = kept or {m["id"] for m in allowed if m["id"] in DEFAULT_PICKS} or {m["id"] for m in allowed[:2]}
        sl = self.query_one("#cost-models", SelectionList)
        sl.clear_options()
        sl.add_options([
            Selection(f"{m['id']} · {m['tier']} · ${_price(m['input_per_mtok'])}/${_price(m['output_per_mtok'])}"
                      + ("" if m.get("allowed", True) else " · not allowed"),
                      m["id"], m["id"] in picks, disabled=not m.get("allowed", True))
            for m in message.models
        ])
        chosen = [i for i, m in enumerate(message.models) if m["id"] in picks]
        if chosen:  # the list opens on the first chosen model, so a [x] row is in view (once laid out)
            self.call_after_refresh(self._show_first_choice, chosen[0])
        sel = self.query_one("#cost-workflow", Select)
        options = [(f"flow {w['name']}", f"workflow:{w['name']}") for w in message.workflows]
        options += [(f"task {t}", f"task:{t}") for t in TASK_SCOPES]
        sel.set_options(options)
        sel.value = "workflow:implement" if any(w["name"] == "implement" for w in message.workflows) else options[0][1]
        if saved.get("scope") in [v for _, v in options]:
            sel.value = saved["scope"]
        if isinstance(saved.get("glob"), str) and saved["glob"]:
            self.query_one("#cost-glob", Input).value = saved["glob"]
        self.schedule()

    def _show_first_choice(self, index: int) -> None:
        sl = self.query_one("#cost-models", SelectionList)
        if index < sl.option_count:
            sl.highlighted = index
            sl.scroll_to_highlight(top=True)

    # -- inputs -----------------------------------------------------------------------------

    @on(SelectionList.SelectedChanged, "#cost-models")
    @on(Select.Changed, "#cost-workflow")
    def _inputs_changed(self, event: Message) -> None:
        if self._models_loaded:
            self.schedule()

    @on(Input.Changed, "#cost-glob")
    def _glob_changed(self, event: Input.Changed) -> None:
        self.resolve_glob(event.value)

    @work(exclusive=True, group="cost-glob", thread=True, exit_on_error=False)
    def resolve_glob(self, pattern: str) -> None:
        files = expand_glob(self.root, pattern)
        self.app.call_from_thread(self._set_glob_files, pattern, files)

    def _set_glob_files(self, pattern: str, files: list[str]) -> None:
        if pattern != self.query_one("#cost-glob", Input).value:
            return  # a slower walk of an older pattern: the newer one wins
        self.glob_files = files
        self._scope_info()
        self.schedule()

    @on(DirectoryTree.FileSelected, "#cost-tree")
    @on(DirectoryTree.DirectorySelected, "#cost-tree")
    def _tree_pick(self, event: DirectoryTree.FileSelected | DirectoryTree.DirectorySelected) -> None:
        picked = files_under(Path(event.path))
        if picked and all(p in self.tree_files for p in picked):
            for p in picked:
                self.tree_files.pop(p, None)  # picking a chosen file or folder again removes it
        else:
            self.tree_files.update(dict.fromkeys(picked))
        self._scope_info()
        self.schedule()

    def paths(self) -> list[str]:
        return list(dict.fromkeys([*self.glob_files, *self.tree_files]))

    def _scope_info(self) -> None:
        n = len(self.paths())
        text = f"{n} file(s) chosen" + (f" (glob {len(self.glob_files)}, tree {len(self.tree_files)})" if n else "")
        if not n:
            text = "no files chosen: the estimate covers the prompts only"
        self.query_one("#cost-scope-info", Static).update(text)

    def request(self) -> Call[Estimate] | None:
        """The estimate the form asks for; None until a model is selected."""
        models = [str(m) for m in self.query_one("#cost-models", SelectionList).selected]
        if not models:
            return None
        scope = str(self.query_one("#cost-workflow", Select).value)
        kind, _, name = scope.partition(":")
        if kind == "workflow":
            return calls.cost_estimate(models, self.paths(), workflow=name)
        return calls.cost_estimate(models, self.paths(), task=name)

    # -- estimating -------------------------------------------------------------------------

    def schedule(self) -> None:
        if self._models_loaded:
            self.ctx.saved.update("cost", models=list(self.query_one("#cost-models", SelectionList).selected),
                                  scope=str(self.query_one("#cost-workflow", Select).value),
                                  glob=self.query_one("#cost-glob", Input).value)
        self.run_estimate()

    @work(exclusive=True, group="cost-estimate", exit_on_error=False)
    async def run_estimate(self) -> None:
        await asyncio.sleep(DEBOUNCE_S)  # typing a glob or ticking several models makes one request
        request = self.request()
        if request is None:
            self.estimate = None
            self.query_one(CostTable).clear()
            self._note("select at least one model (space) to see an estimate.")
            return
        self._note("estimating…")
        try:
            data = await self.ctx.api.call(request)
        except MusubiError as exc:
            self._note(f"{exc.message}")
            self.report_failure(exc, "Estimate refused", timeout=8)
            return
        self.post_message(self.Estimated(data))

    def on_cost_screen_estimated(self, message: Estimated) -> None:
        self.estimate = d = message.data
        self._fill_table()
        notes = []
        if any(not m["exact_tokens"] for m in d["models"]):
            notes.append("* estimated tokenizer: counts are the middle of a band.")
        src = {s["output_source"] for m in d["models"] for s in m["steps"]}
        notes.append("output: " + ("ledger history" if src == {"history"} else "per-task defaults" if src == {"default"}
                                   else "history where there is enough, else defaults"))
        notes += d.get("warnings", [])
        if d.get("skipped"):
            notes.append(f"{len(d['skipped'])} file(s) skipped (binary or unreadable)")
        self._note(" · ".join(notes) + " · x export")

    def on_resize(self) -> None:
        if self.estimate and self._table_width != self._width_class():
            self._fill_table()

    def _width_class(self) -> str:
        width = self.app.size.width
        return "xwide" if width >= 150 else "wide" if width >= 100 else "narrow"

    def _fill_table(self) -> None:
        """One row per model; at 80 columns the quota comes right after the model, detail columns from 100."""
        models = self.estimate["models"] if self.estimate else []
        self._table_width = size = self._width_class()
        t = self.query_one(CostTable)
        detail = size != "narrow"
        labels = ["MODEL", "QUOTA AFTER RUN", "COST $ (LOW-HIGH)" if detail else "COST $", "FITS",
                  *(("INPUT", "OUTPUT") if detail else ())]
        rows: list[Row] = []
        for m in models:
            name = m["model"] + ("" if m["exact_tokens"] else " *")
            if m.get("does_not_fit"):
                rows.append((m["model"], [name, "-", "-", "does not fit", *(("-", "-") if detail else ())]))
                continue
            c = m["cost_usd"]
            cost = f"{usd(c['expected'])} ({usd(c['low'])}-{usd(c['high'])})" if detail else usd(c["expected"])
            rows.append((m["model"], [
                name, headroom_cell(m, with_bar=size == "xwide"), cost,
                "yes" if m["fits"] else f"no: {m['max_chunks']} chunks",
                *((_rng(m["input_tokens"]), _rng(m["output_tokens"])) if detail else ()),
            ]))
        fill_table(t, labels, rows)  # widths given, not measured when the table next goes idle

    # -- actions ----------------------------------------------------------------------------

    def action_estimate(self) -> None:
        self.schedule()

    def action_toggle_tree(self) -> None:
        panel = self.query_one("#cost-tree-panel")
        if not panel.query(DirectoryTree):
            panel.mount(DirectoryTree(self.root, id="cost-tree"))
        panel.toggle_class("-shown")
        if panel.has_class("-shown"):
            self.call_after_refresh(self.query_one("#cost-tree", DirectoryTree).focus)

    def action_clear_files(self) -> None:
        self.tree_files.clear()
        self.query_one("#cost-glob", Input).value = ""  # its Changed event clears the glob files
        self.glob_files = []
        self._scope_info()
        self.schedule()

    def action_export(self) -> None:
        if self.refuse("cost_export"):
            return
        if not self.estimate:
            self.notify("Nothing to export yet: select a model and wait for the estimate.", severity="warning")
            return
        from tui.screens.admin.forms import REPLACE_CHOICES, FormField, FormModal

        est = self.estimate
        fields = [
            FormField("format", "Format:", "markdown", choices=[(f, f) for f in FORMATS]),
            # A value, not a placeholder that looks like one (saving said "File: required").
            FormField("path", f"File (relative to {self.root}):", f"musubi-estimate.{EXTENSIONS['markdown']}"),
            FormField("force", "If the file exists:", "keep", choices=REPLACE_CHOICES),
        ]

        def done(values: dict[str, str] | None) -> None:
            if values:
                fmt = values["format"]
                path = values["path"] or f"musubi-estimate.{EXTENSIONS[fmt]}"
                self.write_export(est, fmt, path, values.get("force") == "replace")

        self.app.push_screen(FormModal("Export estimate", fields, "Export", extensions=EXTENSIONS), done)

    @work(group="cost-export", thread=True, exit_on_error=False)
    def write_export(self, est: dict[str, Any], fmt: str, path: str, force: bool = False) -> None:
        target = Path(os.path.expanduser(path))
        target = target if target.is_absolute() else self.root / target
        try:
            text = render(est, fmt)
            # The rules of every export (core.exports): not inside MUSUBI_HOME, not through a symlink,
            # not over an existing file unless the user chose to replace it.
            write_export(str(target), self.ctx.api.paths.home, text, force=force)
        except MusubiError as exc:
            self.app.call_from_thread(self.report_failure, exc, "Export failed")
            return
        self.app.call_from_thread(self.notify, f"Wrote the estimate ({fmt}, {len(text):,} characters) to {target}.",
                                  title="Exported")


def _price(v: str) -> str:
    f = float(v)
    return "0" if f == 0 else f"{f:g}"
