"""Admin ▸ Tenants: list with status; create, suspend and resume (each confirmed first)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Static

from core.api import calls
from tui.screens.admin.base import AdminPane
from tui.screens.admin.forms import FormField, FormModal, tenant_name_error
from tui.screens.modals import ConfirmModal
from tui.widgets.format import short_ts
from tui.widgets.panel import Panel
from tui.widgets.table_fill import fill_table

if TYPE_CHECKING:
    from core.api.responses import TenantRow

COLUMNS = (("Tenant", "name"), ("Status", "status"), ("Members", "members"), ("Projects", "projects"),
           ("Your roles", "roles"), ("Created (UTC)", "created"))  # (label, key)
STATUS = {"active": "● active", "suspended": "⏸ suspended"}


class TenantsTable(DataTable[str]):
    HELP = (
        "Tenants you belong to (all of them for system owners).\n\n"
        "**n** create · **s** suspend · **u** resume (unsuspend) · **r** refresh. "
        "Creating, suspending and resuming need `tenant.manage` in tenant 'default'."
    )


class TenantsPane(AdminPane):
    BINDINGS = [
        Binding("n", "create", "New tenant", id="tenants_create"),
        Binding("s", "suspend", "Suspend", id="tenants_suspend"),
        Binding("u", "resume", "Resume", id="tenants_resume"),
        Binding("r", "refresh", "Refresh", id="tenants_refresh"),
    ]
    # Member and project counts are columns too.
    LIVE_ACTIONS = ("tenant.create", "tenant.suspend", "tenant.resume", "member.add", "member.remove", "project.add", "project.remove")

    class Loaded(Message):
        def __init__(self, tenants: list[TenantRow]) -> None:
            super().__init__()
            self.tenants = tenants

    def compose(self) -> ComposeResult:
        with Panel(title="Tenants", id="tenants-panel"):
            yield TenantsTable(id="tenants-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="tenant-detail", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.tenants: list[TenantRow] = []
        fill_table(self.query_one(TenantsTable), COLUMNS, [])

    async def fetch(self) -> None:
        self.post_message(self.Loaded(await self.ctx.api.call(calls.tenants())))

    def on_tenants_pane_loaded(self, message: Loaded) -> None:
        keep = self.selected_name()
        self.tenants = message.tenants
        table = self.query_one(TenantsTable)
        fill_table(table, COLUMNS, [
            (str(t["name"]), [
                ("▸ " if t["name"] == self.ctx.tenant else "  ") + str(t["name"]),
                STATUS.get(str(t.get("status")), str(t.get("status"))),
                str(t.get("members", "")),
                str(t.get("projects", "")),
                ", ".join(t.get("your_roles") or []) or "—",
                short_ts(t.get("created_at")),
            ])
            for t in self.tenants
        ])
        if keep and keep in {t["name"] for t in self.tenants}:
            table.move_cursor(row=table.get_row_index(keep))
        self._show_detail()

    def selected(self) -> TenantRow | None:
        row = self.query_one(TenantsTable).cursor_row
        return self.tenants[row] if self.tenants and 0 <= row < len(self.tenants) else None

    def selected_name(self) -> str | None:
        t = self.selected()
        return str(t["name"]) if t else None

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        t = self.selected()
        text = "No tenant selected."
        if t:
            text = f"{t['name']}: {t.get('status')}, created {short_ts(t.get('created_at'))} by {t.get('created_by')}"
            if t.get("status_changed_at"):
                text += f"; {t.get('status')} since {short_ts(t.get('status_changed_at'))}"
            if t.get("status_reason"):
                text += f" — reason: {t['status_reason']}"
        self.query_one("#tenant-detail", Static).update(text)

    # -- actions --------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.reload()

    def action_create(self) -> None:
        if self.refuse("tenants_create"):
            return
        form = FormModal(
            "Create tenant",
            [FormField("name", "Name:", placeholder="e.g. acme-dev", validate=tenant_name_error)],
            "Create",
            intro="You become its owner. It starts with 100,000 tokens/day and 100 requests/hour.",
        )

        def submitted(values: dict[str, str] | None) -> None:
            if values:
                name = values["name"]
                self.write(f"create tenant {name}", lambda: self.ctx.api.call(calls.tenant_create(name)), f"Created tenant {name}.")

        self.app.push_screen(form, submitted)

    def action_suspend(self) -> None:
        if self.refuse("tenants_suspend"):
            return
        t = self.selected()
        if not t:
            return
        name = str(t["name"])
        form = FormModal(
            f"Suspend tenant {name}?",
            [FormField("reason", "Reason (optional, kept in the audit log):", required=False)],
            "Suspend",
            intro=f"Everyone in {name} is refused everything but admin reads until it is resumed.",
        )

        def submitted(values: dict[str, str] | None) -> None:
            if values is not None:
                reason = values.get("reason") or None
                self.write(f"suspend tenant {name}", lambda: self.ctx.api.call(calls.tenant_suspend(name, reason)),
                           f"Suspended tenant {name}.")

        self.app.push_screen(form, submitted)

    def action_resume(self) -> None:
        if self.refuse("tenants_resume"):
            return
        t = self.selected()
        if not t:
            return
        name = str(t["name"])

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.write(f"resume tenant {name}", lambda: self.ctx.api.call(calls.tenant_resume(name)), f"Resumed tenant {name}.")

        self.app.push_screen(ConfirmModal(f"Resume tenant {name}?", f"Members of {name} can work again.", "Resume"), confirmed)
