"""Admin ▸ Audit: filter the tenant's audit log, read an event's JSON, verify the chain, export."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.json import JSON
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Input, Select, Static

from core.api import calls
from core.api.auditfilter import AuditFilter
from core.errors import BadRequest
from tui.screens.admin.base import AdminPane
from tui.screens.admin.forms import REPLACE_CHOICES, FormField, FormModal
from tui.widgets.format import short_ts
from tui.widgets.panel import Panel
from tui.widgets.table_fill import fill_table

if TYPE_CHECKING:
    from core.api.models import AuditEvent
    from core.api.responses import Verified as VerifyResult

COLUMNS = (("Seq", "seq"), ("Time (UTC)", "ts"), ("Actor", "actor"), ("Action", "action"), ("Outcome", "outcome"),
           ("Resource", "resource"))  # (label, key)
LIMIT = 200
OUTCOME = {"success": "✓ success", "denied": "✗ denied", "error": "! error"}
FORMATS = ("jsonl", "csv", "parquet")


def matches(ev: Mapping[str, Any], f: dict[str, str]) -> bool:
    """Whether a live event joins the table: the engine's own filter (``core.api.auditfilter``).

    A bounded range (``until``) never grows live; filters the engine would refuse
    (a date that is not one) let nothing through, as the listing itself fails.
    """
    if f.get("until"):
        return False
    try:
        return AuditFilter.of(f).matches(ev)
    except BadRequest:
        return False


def unique_by_seq(events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Events newest first, each seq once (a row key may appear only once in the table)."""
    by_seq = {int(e["seq"]): e for e in reversed(events)}  # the first occurrence wins
    return [by_seq[k] for k in sorted(by_seq, reverse=True)]


def verify_text(r: Mapping[str, Any]) -> str:
    """The verification result in words (never colour alone)."""
    span = f"seq {r.get('start_seq')}..{r.get('last_seq')}"
    cps = f", {r['checkpoints']} checkpoint(s)" if r.get("checkpoints") else ""
    if r.get("ok"):
        return f"✓ Chain intact: {r.get('checked')} events checked ({span}{cps})."
    return f"✗ Chain BROKEN at seq {r.get('first_bad_seq')}: {r.get('reason')}. {r.get('checked')} events checked before it."


class AuditTable(DataTable[str]):
    HELP = (
        "The newest audit events of this tenant, live. The right (or lower) panel shows the highlighted event's JSON.\n\n"
        "**/** filters · **v** verify chain · **x** export · **c** copy event JSON · **r** refresh. "
        "Action filters take a prefix with `*`, e.g. `tenant.*`; times are UTC (`2026-01-31` or `2026-01-31T12:00`)."
    )


class AuditPane(AdminPane):
    READ_PERMISSION = "audit.read"
    BINDINGS = [
        Binding("v", "verify", "Verify chain", id="audit_verify"),
        Binding("x", "export", "Export", id="audit_export"),
        Binding("slash", "filters", "Filter", id="audit_filter"),
        Binding("c", "copy", "Copy JSON", id="audit_copy"),
        Binding("r", "refresh", "Refresh", id="audit_refresh"),
    ]

    class Loaded(Message):
        def __init__(self, events: list[AuditEvent]) -> None:
            super().__init__()
            self.events = events

    class Verified(Message):
        def __init__(self, result: VerifyResult) -> None:
            super().__init__()
            self.result = result

    def compose(self) -> ComposeResult:
        blink = self.ctx.animations
        with Horizontal(id="audit-filters"):
            for name, hint in (("actor", "actor"), ("action", "action (tenant.*)"), ("since", "since (UTC)"), ("until", "until (UTC)")):
                inp = Input(placeholder=hint, id=f"f-{name}", compact=True)
                inp.cursor_blink = blink
                yield inp
            yield Select([(o, o) for o in OUTCOME], prompt="any outcome", id="f-outcome", compact=True)
        yield Static("Chain not verified yet: press v.", id="audit-verify", markup=False)
        with Horizontal(id="audit-split"):
            with Panel(title="Events", id="audit-events-panel"):
                yield AuditTable(id="audit-table", cursor_type="row", zebra_stripes=True)
            with Panel(title="Event", id="audit-detail-panel"), VerticalScroll(id="audit-detail-scroll"):
                yield Static("Highlight an event to see its JSON.", id="audit-detail")

    def on_mount(self) -> None:
        super().on_mount()
        # Fetched events and live ones from the event stream (the same keys, untyped on the stream).
        self.events: list[Mapping[str, Any]] = []
        self._pending: list[dict[str, Any]] = []
        fill_table(self.query_one(AuditTable), COLUMNS, [])
        self.ctx.engine_event.subscribe(self, self._live_event)

    def filters(self) -> dict[str, str]:
        f = {n: self.query_one(f"#f-{n}", Input).value.strip() for n in ("actor", "action", "since", "until")}
        outcome = self.query_one("#f-outcome", Select).value
        f["outcome"] = "" if outcome is Select.NULL else str(outcome)
        return {k: v for k, v in f.items() if v}

    async def fetch(self) -> None:
        events = await self.ctx.api.call(calls.audit_list(**self.filters(), limit=LIMIT))
        self.post_message(self.Loaded(events))

    def on_audit_pane_loaded(self, message: Loaded) -> None:
        # A fetch answers with the log as it was when read; live events that arrived meanwhile
        # are newer than its head and stay, so a slow answer never hides the newest events.
        head = max((int(e["seq"]) for e in message.events), default=0)
        f = self.filters()
        newer = [e for e in self.events if int(e["seq"]) > head and matches(e, f)]
        self.events = unique_by_seq([*newer, *message.events])[:LIMIT]
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(AuditTable)
        keep = table.cursor_row
        fill_table(table, COLUMNS, [
            (str(ev["seq"]), [str(ev["seq"]), short_ts(ev.get("ts"))[5:], str(ev.get("actor")), str(ev.get("action")),
                              OUTCOME.get(str(ev.get("outcome")), str(ev.get("outcome"))), str(ev.get("resource"))])
            for ev in self.events
        ])
        if self.events:
            table.move_cursor(row=min(max(keep, 0), len(self.events) - 1))
        # The filter fields' placeholders vanish once typed into: the title names each value in use.
        f = self.filters()
        filtered = f" (filtered: {', '.join(f'{k} {v}' for k, v in f.items())})" if f else ""
        self.query_one("#audit-events-panel", Panel).border_title = f"Events: {len(self.events)} newest{filtered}"
        self._show_detail()

    def _live_event(self, ev: dict[str, Any]) -> None:
        if not self.loaded or ev.get("type") != "audit" or ev.get("tenant") != self.ctx.tenant:
            return
        event = ev.get("event") or {}
        if matches(event, self.filters()):
            if not self._pending:
                self.set_timer(0.25, self._flush_live)  # a burst of events redraws once
            self._pending.append(event)

    def _flush_live(self) -> None:
        fresh, self._pending = list(reversed(self._pending)), []
        events = unique_by_seq(fresh + self.events)[:LIMIT]
        if [e["seq"] for e in events] != [e["seq"] for e in self.events]:
            self.events = events
            self._fill()

    def selected(self) -> Mapping[str, Any] | None:
        row = self.query_one(AuditTable).cursor_row
        return self.events[row] if self.events and 0 <= row < len(self.events) else None

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        ev = self.selected()
        detail = self.query_one("#audit-detail", Static)
        detail.update(JSON.from_data(ev, indent=2) if ev else "No events match; change the filters (/) or press r.")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id and event.input.id.startswith("f-"):
            event.stop()
            self.reload()
            self.query_one(AuditTable).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "f-outcome" and self.loaded:
            self.reload()

    # -- actions --------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.reload()

    def action_filters(self) -> None:
        self.query_one("#f-actor", Input).focus()

    def action_copy(self) -> None:
        ev = self.selected()
        if ev:
            self.app.copy_to_clipboard(json.dumps(ev, indent=2, ensure_ascii=False))
            self.notify(f"Copied event {ev['seq']} as JSON (OSC 52).", title="Copied")

    def action_verify(self) -> None:
        if self.refuse("audit_verify"):
            return
        self.query_one("#audit-verify", Static).update("… verifying the chain")
        self.run_worker(self._verify(), group="audit-verify", description="verify the audit chain", exclusive=True, exit_on_error=False)

    async def _verify(self) -> None:
        self.post_message(self.Verified(await self.ctx.api.call(calls.audit_verify())))

    def on_audit_pane_verified(self, message: Verified) -> None:
        text = verify_text(message.result)
        widget = self.query_one("#audit-verify", Static)
        widget.update(text)
        widget.set_class(not message.result.get("ok"), "-broken")
        self.notify(text, title="Audit chain", severity="information" if message.result.get("ok") else "error")

    def action_export(self) -> None:
        if self.refuse("audit_export"):
            return
        stamp = self.ctx.clock().strftime("%Y%m%d-%H%M%S")
        default = os.path.join(os.path.expanduser("~"), f"musubi-audit-{self.ctx.tenant}-{stamp}.jsonl")
        filters = self.filters()
        note = f" Filters: {', '.join(f'{k}={v}' for k, v in filters.items())}." if filters else " All events (no filters)."
        form = FormModal(
            "Export the audit log",
            [
                FormField("format", "Format:", value="jsonl", choices=[(f, f) for f in FORMATS]),
                FormField("path", "File (absolute, or relative to the current folder):", value=default),
                FormField("force", "If the file exists:", value="keep", choices=REPLACE_CHOICES),
            ],
            "Export",
            intro="This app writes the file, as `musubi audit export` does: never inside MUSUBI_HOME "
                  "(but its exports/ folder), never through a symbolic link." + note,
            extensions={f: f for f in FORMATS},  # the file name follows the chosen format
        )

        def submitted(values: dict[str, str] | None) -> None:
            if values:
                self._export(values["format"], values["path"], filters, values.get("force") == "replace")

        self.app.push_screen(form, submitted)

    def _export(self, fmt: str, path: str, filters: dict[str, str], force: bool = False) -> None:
        path = os.path.abspath(os.path.expanduser(path))
        root, ext = os.path.splitext(path)
        if ext.lstrip(".") in FORMATS and ext.lstrip(".") != fmt:
            path = f"{root}.{fmt}"  # keep the extension honest when the format changed

        async def job() -> None:
            r = await self.ctx.api.export_audit(fmt, filters, path, force=force)
            self.notify(f"Exported {r['events']} events to {r['path']}.", title="Export done")

        self.run_worker(job(), group="audit-export", description=f"export audit log to {path}", exit_on_error=False)
