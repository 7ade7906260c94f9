"""Admin ▸ Integrations: each connector's settings, its secrets (by name), a connection test (docs/integrations.md).

Settings are set one name at a time; a secret is typed into a password field, sent once to the
engine (which keeps it in a 0600 file outside the database) and never shown back: the table
lists only which secrets are stored.  "Test" makes one authenticated call to the vendor in a
worker and shows the vendor's own error text when it fails.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Static

from core.api import calls
from core.integrations.store import SECRET_NAMES
from tui.screens.admin.base import AdminPane
from tui.screens.admin.forms import FormField, FormModal
from tui.widgets.panel import Panel
from tui.widgets.table_fill import fill_table

if TYPE_CHECKING:
    from core.api.integrations import IntegrationRow

COLUMNS = (("System", "system"), ("Set up", "configured"), ("Settings", "settings"), ("Secrets", "secrets"))
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def setting_name_error(value: str) -> str | None:
    if not _NAME.match(value):
        return "lower-case letters, digits and _ (e.g. channel, events, requirement_type)"
    return None


class IntegrationsTable(DataTable[str]):
    HELP = (
        "Connectors of this tenant: Jira, Azure DevOps, GitLab, GitHub, Slack, Teams.\n\n**e** set a setting · "
        "**s** store a secret (typed hidden, never shown back) · **t** test the connection · **r** refresh. "
        "Needs `integrations.manage`. Notifications: set `events` on slack or teams (docs/integrations.md)."
    )


class IntegrationsPane(AdminPane):
    BINDINGS = [
        Binding("e", "set_setting", "Set", id="integrations_set"),
        Binding("s", "set_secret", "Secret", id="integrations_secret"),
        Binding("t", "test", "Test", id="integrations_test"),
        Binding("r", "refresh", "Refresh", id="integrations_refresh"),
    ]
    READ_PERMISSION = "integrations.manage"
    LIVE_ACTIONS = ("integration.set",)

    class Loaded(Message):
        def __init__(self, rows: list[IntegrationRow]) -> None:
            super().__init__()
            self.rows = rows

    def compose(self) -> ComposeResult:
        with Panel(title="Integrations", id="integrations-panel"):
            yield Static("", id="integrations-note", markup=False)
            yield IntegrationsTable(id="integrations-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.rows: list[IntegrationRow] = []
        fill_table(self.query_one(IntegrationsTable), COLUMNS, [])

    async def fetch(self) -> None:
        data = await self.ctx.api.call(calls.integrations())
        self.post_message(self.Loaded(list(data["integrations"])))

    def on_integrations_pane_loaded(self, message: Loaded) -> None:
        self.rows = message.rows
        table = self.query_one(IntegrationsTable)
        row = table.cursor_row
        fill_table(table, COLUMNS, [
            (r["system"], [r["system"], "yes" if r["configured"] else "no",
                           " ".join(f"{k}={v}" for k, v in sorted(r["settings"].items())) or "—",
                           ", ".join(r["secrets"]) or "—"])
            for r in self.rows
        ])
        if self.rows:
            table.move_cursor(row=min(row, len(self.rows) - 1))
        n = sum(1 for r in self.rows if r["configured"])
        self.query_one("#integrations-note", Static).update(
            f"{n} of {len(self.rows)} set up · e setting · s secret · t test")

    def selected(self) -> IntegrationRow | None:
        table = self.query_one(IntegrationsTable)
        if not self.rows or not 0 <= table.cursor_row < len(self.rows):
            return None
        return self.rows[table.cursor_row]

    def target(self, binding_id: str) -> IntegrationRow | None:
        """The selected row, or None (with a notification naming the permission when the user lacks it)."""
        return None if self.refuse(binding_id) else self.selected()

    # -- actions --------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.reload()

    def action_set_setting(self) -> None:
        r = self.target("integrations_set")
        if r is None:
            return
        system = r["system"]
        form = FormModal(
            f"Set a {system} setting",
            [FormField("name", "Setting:", placeholder="e.g. url, channel, events", validate=setting_name_error),
             FormField("value", "Value (empty: remove):", required=False)],
            "Save",
            intro=f"Not for secrets ({', '.join(SECRET_NAMES[system])}): use s.",
        )

        def submitted(values: dict[str, str] | None) -> None:
            if values:
                name, value = values["name"], values.get("value") or ""
                self.write(f"set {system} {name}",
                           lambda: self.ctx.api.call(calls.integration_set(system, settings={name: value})),
                           f"{system}: {name} " + (f"set to {value}." if value else "removed."))

        self.app.push_screen(form, submitted)

    def action_set_secret(self) -> None:
        r = self.target("integrations_secret")
        if r is None:
            return
        system = r["system"]
        names = [(n + (" (stored)" if n in r["secrets"] else ""), n) for n in SECRET_NAMES[system]]
        form = FormModal(
            f"Store a {system} secret",
            [FormField("name", "Secret:", value=names[0][1], choices=names),
             FormField("secret", "Value (hidden):", password=True)],
            "Store",
            intro="Sent once to the engine, kept outside the database, never shown back.",
        )

        def submitted(values: dict[str, str] | None) -> None:
            if values:
                name, secret = values["name"], values["secret"]
                self.write(f"store {system} {name}",
                           lambda: self.ctx.api.call(calls.integration_set(system, secrets={name: secret})),
                           f"{system}: secret {name} stored.")

        self.app.push_screen(form, submitted)

    def action_test(self) -> None:
        r = self.target("integrations_test")
        if r is None:
            return
        system = r["system"]

        async def job() -> None:
            answer = await self.ctx.api.call(calls.integration_test(system))
            detail = answer["detail"]
            who = detail.get("account") or detail.get("user") or "ok"
            self.notify(f"{system}: connected as {who}.", title="Connection ok")

        # A refusal (the vendor's own text, redacted) becomes the worker contract's notification.
        self.run_worker(job(), group="admin-write", description=f"test {system}", exit_on_error=False)
