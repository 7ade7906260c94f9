"""Admin ▸ SSO: the tenant's group/role → role rules and its "SSO required" policy (docs/identity.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Static

from core.api import calls
from tui.screens.admin.base import AdminPane
from tui.screens.admin.forms import FormField, FormModal, user_name_error
from tui.screens.modals import ConfirmModal
from tui.widgets.format import short_ts
from tui.widgets.panel import Panel
from tui.widgets.table_fill import fill_table

if TYPE_CHECKING:
    from core.api.responses import Role
    from core.api.sso import SsoPolicy, SsoRule

COLUMNS = (("Claim", "claim"), ("Value", "value"), ("Role", "role"), ("Provider", "provider"),
           ("Since (UTC)", "since"), ("By", "by"))  # (label, key)
CLAIMS = (("groups (group id or name)", "groups"), ("roles (app role)", "roles"))
REQUIRED = (("no: OS users may act without SSO", "no"), ("yes: refuse callers without an SSO session", "yes"))


def value_error(value: str) -> str | None:
    if not value.strip() or len(value) > 256 or not value.isprintable():
        return "1 to 256 printable characters, exactly as the ID token carries it (Entra: the group object id)"
    return None


class RulesTable(DataTable[str]):
    HELP = (
        "Rules that turn a signed-in user's groups or app roles into a role in this tenant, applied at each "
        "sign-in (musubi login).\n\n**a** add or change a rule · **d** remove · **p** SSO-required policy · "
        "**r** refresh. Needs `members.manage` (the policy: `tenant.manage`)."
    )


class SsoPane(AdminPane):
    BINDINGS = [
        Binding("a", "map", "Map group", id="sso_map"),
        Binding("d,delete", "unmap", "Remove rule", id="sso_unmap"),
        Binding("p", "policy", "SSO policy", id="sso_policy"),
        Binding("r", "refresh", "Refresh", id="sso_refresh"),
    ]
    READ_PERMISSION = "members.manage"
    LIVE_ACTIONS = ("sso.rule", "sso.policy")

    class Loaded(Message):
        def __init__(self, rules: list[SsoRule], policy: SsoPolicy, roles: list[Role]) -> None:
            super().__init__()
            self.rules, self.policy, self.roles = rules, policy, roles

    def compose(self) -> ComposeResult:
        with Panel(title="Group → role rules", id="sso-panel"):
            yield Static("", id="sso-policy", markup=False)
            yield RulesTable(id="sso-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.rules: list[SsoRule] = []
        self.roles: list[Role] = []
        self.policy: SsoPolicy | None = None
        fill_table(self.query_one(RulesTable), COLUMNS, [])

    async def fetch(self) -> None:
        api = self.ctx.api
        rules = await api.call(calls.sso_rules())
        policy = await api.call(calls.sso_policy())
        roles = await api.call(calls.roles())
        self.post_message(self.Loaded(rules, policy, roles))

    def on_sso_pane_loaded(self, message: Loaded) -> None:
        self.rules, self.policy, self.roles = message.rules, message.policy, message.roles
        table = self.query_one(RulesTable)
        row = table.cursor_row
        fill_table(table, COLUMNS, [
            (str(i), [str(r.get("claim")), str(r.get("value")), str(r.get("role")), str(r.get("provider") or "any"),
                      short_ts(r.get("created_at")), str(r.get("created_by") or "—")])
            for i, r in enumerate(self.rules)
        ])
        if self.rules:
            table.move_cursor(row=min(row, len(self.rules) - 1))
        p = self.policy
        required = "yes" if p["sso_required"] else "no"
        self.query_one("#sso-policy", Static).update(
            f"SSO required: {required} · break-glass owner: {p['break_glass'] or '—'}"
            + ("" if self.rules else " · no rules yet: a adds one (musubi sso map GROUP --role ROLE)"))

    def selected(self) -> SsoRule | None:
        table = self.query_one(RulesTable)
        if not self.rules or not 0 <= table.cursor_row < len(self.rules):
            return None
        return self.rules[table.cursor_row]

    # -- actions --------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.reload()

    def action_map(self) -> None:
        if self.refuse("sso_map"):
            return
        r = self.selected()
        roles = [(f"{x['name']} — {x.get('description') or 'custom role'}", str(x["name"])) for x in self.roles]
        form = FormModal(
            f"Map a group or app role to a role in {self.ctx.tenant}",
            [
                FormField("value", "Group id/name or app role:", value=str(r.get("value", "")) if r else "",
                          placeholder="e.g. 6f1c0a2e-… or Admins", validate=value_error),
                FormField("claim", "Claim:", value=str(r.get("claim", "groups")) if r else "groups", choices=CLAIMS),
                FormField("role", "Role:", value=str(r.get("role", "member")) if r else "member", choices=roles),
                FormField("provider", "Provider (empty: any):", value=str(r.get("provider") or "") if r else "",
                          required=False),
            ],
            "Save",
            intro="Applied at each sign-in: roles granted by rules that no longer match are removed.",
        )

        def submitted(values: dict[str, str] | None) -> None:
            if values:
                v, claim, role, prov = values["value"], values["claim"], values["role"], values.get("provider") or None
                self.write(f"map {claim} {v}", lambda: self.ctx.api.call(calls.sso_rule_set(v, role, claim, prov)),
                           f"{claim} {v!r} now grants {role} in {self.ctx.tenant} at sign-in.")

        self.app.push_screen(form, submitted)

    def action_unmap(self) -> None:
        if self.refuse("sso_unmap"):
            return
        r = self.selected()
        if not r:
            return
        value, claim, prov = str(r.get("value")), str(r.get("claim")), r.get("provider") or None

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.write(f"unmap {claim} {value}",
                           lambda: self.ctx.api.call(calls.sso_rule_remove(value, claim, prov)),
                           f"Removed the rule for {claim} {value!r}.")

        body = f"Users lose role {r.get('role')} it granted at their next sign-in. Bindings made by hand stay."
        self.app.push_screen(ConfirmModal(f"Remove the rule for {claim} {value!r}?", body, "Remove", danger=True),
                             confirmed)

    def action_policy(self) -> None:
        if self.refuse("sso_policy"):
            return
        p = self.policy
        form = FormModal(
            f"SSO policy of {self.ctx.tenant}",
            [
                FormField("required", "SSO required:", value="yes" if p and p["sso_required"] else "no",
                          choices=REQUIRED),
                FormField("break_glass", "Break-glass owner (may act without SSO):",
                          value=str(p["break_glass"] or "") if p else "", validate=user_name_error, required=False),
            ],
            "Save",
            intro="With SSO required, the engine refuses callers without a live musubi login session "
                  "(audited), except the break-glass owner acting as their own OS user.",
        )

        def submitted(values: dict[str, str] | None) -> None:
            if values:
                on, bg = values["required"] == "yes", values.get("break_glass") or None
                self.write("set SSO policy", lambda: self.ctx.api.call(calls.sso_policy_set(on, bg)),
                           f"SSO required: {'yes' if on else 'no'} in {self.ctx.tenant}.")

        self.app.push_screen(form, submitted)
