"""The Admin mode screen: four tabs, each pane loading its data when first shown."""

from __future__ import annotations

from functools import partial

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import TabbedContent, TabPane

from tui.screens.actions import PaletteAction, node_actions, palette_entry
from tui.screens.admin.audit import AuditPane
from tui.screens.admin.base import AdminPane
from tui.screens.admin.integrations import IntegrationsPane
from tui.screens.admin.members import MembersPane
from tui.screens.admin.quotas import QuotasPane
from tui.screens.admin.sso import SsoPane
from tui.screens.admin.tenants import TenantsPane
from tui.screens.base import STYLES, ModeScreen

TABS = (("tenants", "Tenants"), ("members", "Members & roles"), ("quotas", "Quotas"), ("audit", "Audit"),
        ("sso", "SSO"), ("integrations", "Integrations"))


class AdminScreen(ModeScreen):
    MODE = "admin"
    HELP = (
        "Admin: tenants, members and roles, quotas, the audit log, the SSO rules and the integrations of the current "
        "tenant.\n\n"
        "**[** / **]** previous / next tab; each tab lists its own keys in the footer. "
        "Whatever the engine refuses (a missing permission, a quota) is shown as a notification and changes nothing."
    )
    CSS_PATH = STYLES / "admin.tcss"
    BINDINGS = [
        Binding("left_square_bracket", "tab(-1)", "Prev tab", id="admin_prev_tab"),
        Binding("right_square_bracket", "tab(1)", "Next tab", id="admin_next_tab"),
    ]

    def compose_body(self) -> ComposeResult:
        with TabbedContent(id="admin-tabs"):
            with TabPane("Tenants", id="tenants"):
                yield TenantsPane(id="tenants-pane")
            with TabPane("Members & roles", id="members"):
                yield MembersPane(id="members-pane")
            with TabPane("Quotas", id="quotas"):
                yield QuotasPane(id="quotas-pane")
            with TabPane("Audit", id="audit"):
                yield AuditPane(id="audit-pane")
            with TabPane("SSO", id="sso"):  # identity / SSO: group -> role rules, the SSO-required policy
                yield SsoPane(id="sso-pane")
            with TabPane("Integrations", id="integrations"):  # notify (issue 17): connectors, secrets, test
                yield IntegrationsPane(id="integrations-pane")

    def on_mount(self) -> None:
        tab = self.ctx.saved.section("admin").get("tab")  # the last session's tab (tui.state)
        if tab in [t for t, _ in TABS]:
            self.query_one(TabbedContent).active = tab
        self.call_after_refresh(self._load_active)

    def on_tabbed_content_tab_activated(self, _event: TabbedContent.TabActivated) -> None:
        self.ctx.saved.update("admin", tab=self.query_one(TabbedContent).active)
        self._load_active()

    def _load_active(self) -> None:
        active = self.query_one(TabbedContent).active
        if active:
            pane = self.query_one(f"#{active}-pane", AdminPane)
            pane.ensure_loaded()
            # Focus after the switch is painted: a still-hidden pane cannot take focus.
            self.call_after_refresh(self._focus_pane, pane)

    def _focus_pane(self, pane: AdminPane) -> None:
        if pane.id != f"{self.query_one(TabbedContent).active}-pane":
            return  # the user moved on to another tab meanwhile; focusing here would pull them back
        target = pane.query("DataTable, QuotaGauge, GaugeList").first()
        if not target.has_focus_within:
            target.focus()

    def palette_actions(self) -> list[PaletteAction]:
        """The tab keys, then every tab's actions: choosing one opens its tab first."""
        out = super().palette_actions()
        for tab, title in TABS:
            pane = self.query_one(f"#{tab}-pane", AdminPane)
            out += [palette_entry(f"Admin ▸ {title}", b, self.ctx, keys, partial(self._run_in_tab, tab, pane, b.action))
                    for b, keys in node_actions(pane)]
        return out

    def _run_in_tab(self, tab: str, pane: AdminPane, action: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.call_after_refresh(pane.run_action, action)

    def action_tab(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        # Drop focus first: a focused widget left in the hidden pane would hand focus to an
        # ancestor there, and TabbedContent follows focus back to that pane.
        self.set_focus(None)
        ids = [t for t, _ in TABS]
        tabs.active = ids[(ids.index(tabs.active) + step) % len(ids)] if tabs.active in ids else ids[0]
