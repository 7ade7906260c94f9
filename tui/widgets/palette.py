"""Command palette provider: switch to any tenant you belong to (ctrl+p, type its name)."""

from __future__ import annotations

import contextlib
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from core.api import calls
from core.errors import MusubiError
from tui.context import app_ctx

if TYPE_CHECKING:
    from core.api.responses import TenantRow


class TenantCommands(Provider):
    """One command per tenant: "Switch tenant: NAME"."""

    async def startup(self) -> None:
        self._tenants: list[TenantRow] = []
        # Offline or refused: the palette just has no tenant commands.
        with contextlib.suppress(MusubiError):
            self._tenants = await app_ctx(self.screen).api.call(calls.tenants())

    def _commands(self) -> list[tuple[str, str, str]]:
        current = app_ctx(self.screen).tenant
        out = []
        for t in self._tenants:
            name = str(t.get("name"))
            if name == current:
                continue
            roles = ", ".join(t.get("your_roles") or []) or "system view"
            out.append((f"Switch tenant: {name}", f"{t.get('status')} · your roles: {roles}", name))
        return out

    async def discover(self) -> Hits:
        for title, help_text, name in self._commands():
            yield DiscoveryHit(title, partial(self.app.action_switch_tenant_to, name), help=help_text)  # type: ignore[attr-defined]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, name in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.app.action_switch_tenant_to, name), help=help_text)  # type: ignore[attr-defined]
