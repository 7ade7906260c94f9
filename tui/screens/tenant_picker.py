"""F8: pick the tenant to work in, from the tenants you belong to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker

from core.api import calls
from core.errors import MusubiError
from tui.context import app_ctx
from tui.screens.base import DIALOG_CSS
from tui.workers import WorkerContract

if TYPE_CHECKING:
    from core.api.responses import TenantRow


def tenant_label(t: TenantRow, current: str) -> str:
    mark = "▸" if t.get("name") == current else " "
    roles = ", ".join(t.get("your_roles") or []) or "system view"
    return f"{mark} {t.get('name')}  [{t.get('status')}]  {roles}"


class TenantPicker(WorkerContract, ModalScreen[str | None]):
    """Lists tenants from ``/v1/tenants``; enter switches, escape keeps the current one."""

    CSS_PATH = DIALOG_CSS
    WORKER_TITLES: ClassVar[dict[str, str]] = {"tenant-picker": "Cannot list tenants"}

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="tenant_picker_cancel")]
    HELP = "Pick a tenant with the arrows and **enter**. The status bar and every screen switch to it."

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="tenant-dialog"):
            yield Static("Switch tenant", classes="dialog-title")
            yield OptionList(id="tenant-options")
            yield Static("enter switch · escape cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.add_class("dialog-screen")
        self.query_one(OptionList).loading = True
        self.load()

    @work(exclusive=True, group="tenant-picker", exit_on_error=False)
    async def load(self) -> None:
        ctx = app_ctx(self)
        options = self.query_one(OptionList)
        try:
            tenants = await ctx.api.call(calls.tenants())
        except MusubiError as exc:
            self.report_failure(exc, "Cannot list tenants")
            self.dismiss(None)
            return
        options.loading = False
        options.add_options([Option(Content(tenant_label(t, ctx.tenant)), id=str(t["name"])) for t in tenants])
        for i, t in enumerate(tenants):
            if t["name"] == ctx.tenant:
                options.highlighted = i
        options.focus()

    def worker_failed(self, worker: Worker[Any]) -> None:
        self.dismiss(None)  # nothing to pick from: back to where the user was

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
