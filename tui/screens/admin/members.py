"""Admin ▸ Members & roles: bindings per tenant and project; add, change role, remove; a role's permissions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, OptionList, Static
from textual.widgets.option_list import Option

from core.api import calls
from tui.screens.admin.base import AdminPane
from tui.screens.admin.forms import FormField, FormModal, user_name_error
from tui.screens.modals import ConfirmModal
from tui.widgets.format import short_ts
from tui.widgets.panel import Panel
from tui.widgets.table_fill import fill_table

if TYPE_CHECKING:
    from core.api.responses import MemberRow, Role, RoleShown

COLUMNS = (("User", "user"), ("Scope", "scope"), ("Role", "role"), ("Since (UTC)", "since"), ("Added by", "by"))  # (label, key)
TENANT_WIDE = "(tenant-wide)"


class BindingsTable(DataTable[str]):
    HELP = (
        "Role bindings of this tenant: at tenant scope, or for one project.\n\n"
        "**a** add · **c** change role · **d** remove · **r** refresh. "
        "The right-hand panel shows the permissions of the highlighted binding's role. "
        "Needs `members.manage`; you can grant only permissions you hold."
    )


class RoleList(OptionList):
    HELP = "Roles of this tenant (built in and custom). Highlight one to see its permission matrix."


class MembersPane(AdminPane):
    BINDINGS = [
        Binding("a", "add", "Add member", id="members_add"),
        Binding("c", "change_role", "Change role", id="members_change_role"),
        Binding("d,delete", "remove", "Remove", id="members_remove"),
        Binding("r", "refresh", "Refresh", id="members_refresh"),
    ]
    LIVE_ACTIONS = ("member.", "role.create", "role.delete", "project.add", "project.remove")

    class Loaded(Message):
        def __init__(self, members: list[MemberRow], roles: list[Role], projects: list[str]) -> None:
            super().__init__()
            self.members, self.roles, self.projects = members, roles, projects

    class MatrixLoaded(Message):
        def __init__(self, role: RoleShown) -> None:
            super().__init__()
            self.role = role

    def compose(self) -> ComposeResult:
        with Horizontal(id="members-split"):
            with Panel(title="Members", id="members-panel"):
                yield BindingsTable(id="members-table", cursor_type="row", zebra_stripes=True)
            with Panel(title="Role permissions", id="matrix-panel"):
                yield RoleList(id="role-list")
                with VerticalScroll(id="role-matrix-scroll"):
                    yield Static("", id="role-matrix", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.members: list[MemberRow] = []
        self.roles: list[Role] = []
        self.projects: list[str] = []
        fill_table(self.query_one(BindingsTable), COLUMNS, [])

    async def fetch(self) -> None:
        api = self.ctx.api
        members = await api.call(calls.members())
        roles = await api.call(calls.roles())
        projects = [p["name"] for p in await api.call(calls.projects())]
        self.post_message(self.Loaded(members, roles, projects))

    def on_members_pane_loaded(self, message: Loaded) -> None:
        # Reloads come with every change made elsewhere: the cursor stays on the binding it was on.
        kept = self.selected()
        self.members, self.roles, self.projects = message.members, message.roles, message.projects
        table = self.query_one(BindingsTable)
        # Columns too (fill_table): DataTable only ever widens a column, so a load after long names would keep
        # their widths and push Role off an 80-column screen (issue 15 item 9).
        fill_table(table, COLUMNS, [
            (str(i), [str(m["user"]), f"project {m['project']}" if m.get("project") else "tenant", str(m["role"]),
                      short_ts(m.get("since")), str(m.get("added_by") or "—")])
            for i, m in enumerate(self.members)
        ])
        where = [(m["user"], m.get("project")) for m in self.members]
        if kept and (kept["user"], kept.get("project")) in where:
            table.move_cursor(row=where.index((kept["user"], kept.get("project"))))
        roles = self.query_one(RoleList)
        highlighted = roles.highlighted
        roles.clear_options()
        roles.add_options([Option(f"{r['name']}{'' if r.get('builtin') else ' (custom)'}", id=str(r["name"])) for r in self.roles])
        if self.roles:
            roles.highlighted = highlighted if highlighted is not None and highlighted < len(self.roles) else 0
        self._follow_binding()

    def selected(self) -> MemberRow | None:
        table = self.query_one(BindingsTable)
        if not self.members or not 0 <= table.cursor_row < len(self.members):
            return None
        return self.members[table.cursor_row]

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._follow_binding()

    def _follow_binding(self) -> None:
        m = self.selected()
        if not m:
            return
        names = [r["name"] for r in self.roles]
        if m["role"] in names:
            self.query_one(RoleList).highlighted = names.index(m["role"])

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id:
            self.load_matrix(event.option.id)

    @work(exclusive=True, group="members-matrix", exit_on_error=False)
    async def load_matrix(self, role: str) -> None:
        self.post_message(self.MatrixLoaded(await self.ctx.api.call(calls.role_show(role))))

    def on_members_pane_matrix_loaded(self, message: MatrixLoaded) -> None:
        r = message.role
        matrix: dict[str, bool] = r.get("matrix") or {}
        lines = [f"{r['name']}: {r.get('description') or ''}", ""]
        # A mark and a word for each permission: readable without colour.
        lines += [f"{'✓ yes' if ok else '· no '}  {perm}" for perm, ok in matrix.items()]
        self.query_one("#role-matrix", Static).update("\n".join(lines))

    # -- actions --------------------------------------------------------------------------

    def _role_choices(self) -> list[tuple[str, str]]:
        return [(f"{r['name']} — {r.get('description') or 'custom role'}", str(r["name"])) for r in self.roles]

    def action_refresh(self) -> None:
        self.reload()

    def action_add(self) -> None:
        if self.refuse("members_add"):
            return
        projects = [(TENANT_WIDE, TENANT_WIDE)] + [(p, p) for p in self.projects]
        form = FormModal(
            f"Add a member to {self.ctx.tenant}",
            [
                FormField("user", "User (OS login):", placeholder="e.g. alice", validate=user_name_error),
                FormField("role", "Role:", value="member", choices=self._role_choices()),
                FormField("project", "Scope:", value=TENANT_WIDE, choices=projects),
            ],
            "Add",
        )

        def submitted(values: dict[str, str] | None) -> None:
            if values:
                self._bind(values["user"], values["role"], values["project"], "add")

        self.app.push_screen(form, submitted)

    def _bind(self, user: str, role: str, project: str, verb: str) -> None:
        proj = None if project in ("", TENANT_WIDE) else project
        where = f" on project {proj}" if proj else ""
        done = f"{user} is now {role}{where}."
        self.write(f"{verb} member {user}", lambda: self.ctx.api.call(calls.member_add(user, role, proj)), done)

    def action_change_role(self) -> None:
        if self.refuse("members_change_role"):
            return
        m = self.selected()
        if not m:
            return
        where = f"project {m['project']}" if m.get("project") else f"tenant {self.ctx.tenant}"
        form = FormModal(
            f"Change role of {m['user']} in {where}",
            [FormField("role", "New role:", value=str(m["role"]), choices=self._role_choices())],
            "Change",
        )

        def submitted(values: dict[str, str] | None) -> None:
            if values and values["role"] != m["role"]:
                self._bind(str(m["user"]), values["role"], str(m.get("project") or ""), "change role of")

        self.app.push_screen(form, submitted)

    def action_remove(self) -> None:
        if self.refuse("members_remove"):
            return
        m = self.selected()
        if not m:
            return
        user, project = str(m["user"]), m.get("project")
        where = f"project {project}" if project else f"tenant {self.ctx.tenant}"

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.write(
                    f"remove member {user}",
                    lambda: self.ctx.api.call(calls.member_remove(user, project or None)),
                    f"Removed {user}'s {m['role']} binding from {where}.",
                )

        body = f"{user} loses role {m['role']} in {where}. Their other bindings stay."
        self.app.push_screen(ConfirmModal(f"Remove {user} from {where}?", body, "Remove", danger=True), confirmed)
