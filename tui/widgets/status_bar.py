"""The status line: tenant, user, project, engine connection and the tightest quota's headroom."""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from tui.context import AppContext, ConnState, app_ctx
from tui.widgets.format import headroom, quota_level, quota_name


class StatusBar(Widget):
    """One line at the bottom of every mode: tenant (F8 switches), user, project, engine, quota headroom."""

    DEFAULT_CSS = """
    StatusBar { height: 1; width: 1fr; background: $panel; color: $foreground; }
    StatusBar.-reconnecting, StatusBar.-down { background: $error 30%; }
    """

    def on_mount(self) -> None:
        ctx = app_ctx(self)
        ctx.conn_changed.subscribe(self, self._conn_changed)
        ctx.data_changed.subscribe(self, self._data_changed)
        self._conn_changed(ctx.conn)

    def _conn_changed(self, state: ConnState) -> None:
        for name in ("connecting", "connected", "reconnecting", "down"):
            self.set_class(state.name == name, f"-{name}")
        self.refresh()

    def _data_changed(self, _what: str) -> None:
        self.refresh()

    def render(self) -> Content:
        return render_status(app_ctx(self), self.size.width or 80)


def _conn_text(conn: ConnState, room: int) -> str:
    text = f"{conn.symbol} engine {conn.name}"
    if conn.name in ("reconnecting", "down"):
        retry = f", retry in {conn.retry_in:.0f}s" if conn.retry_in else ""
        text += f" (attempt {conn.attempt}{retry})"
        if conn.reason and room > len(text) + 10:
            text += f": {conn.reason}"
    return text


def _quota_text(ctx: AppContext) -> str:
    tight = ctx.quotas["tightest"] if ctx.quotas else None
    if tight:
        word, _cls = quota_level(tight)
        return f"{quota_name(tight)} {headroom(tight)} {word}"
    if ctx.quota_error:
        return "quotas: no access"
    return "quotas: —"


def render_status(ctx: AppContext, width: int) -> Content:
    """The status line for ``width`` cells; labels drop first when space is short."""
    project = (ctx.whoami["project"] if ctx.whoami else None) or "—"
    wide = width >= 100
    segs = [
        f"F8 tenant {ctx.tenant}" if wide else ctx.tenant,
        f"user {ctx.user}" if wide else ctx.user,
        f"project {project}" if wide else f"proj {project}",
    ]
    quota = _quota_text(ctx) if ctx.conn.name == "connected" else ""
    fixed = sum(len(s) + 3 for s in segs) + len(quota) + 3
    segs.append(_conn_text(ctx.conn, max(0, width - fixed)))
    if quota:
        segs.append(quota)
    # The tenant segment is a link to the tenant switcher (F8 does the same from the keyboard).
    tenant = Content.from_markup("[@click=app.switch_tenant]$seg[/]", seg=segs[0])
    line = Content.assemble(" ", tenant, " │ " + " │ ".join(segs[1:]))
    return line.truncate(width, ellipsis=True) if line.cell_length > width else line
