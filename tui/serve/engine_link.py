"""What ``musubi serve`` asks of the engine: session tokens, and the audit of remote log-ins.

The server talks to the engine as its own OS user (the engine's), in tenant ``default``;
the routes it calls refuse everyone else (docs/api.md#remote-sessions).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from core.api import calls
from core.async_client import AsyncEngineClient
from core.errors import MusubiError
from core.paths import HomePaths
from core.wire import Identity

if TYPE_CHECKING:
    from core.api.sessions import SessionMinted

log = logging.getLogger("musubi.serve")


class EngineLink:
    """The serve process's engine client (one per server)."""

    def __init__(self, paths: HomePaths, mode: str, ttl_s: int) -> None:
        self.api = AsyncEngineClient(paths, Identity(tenant="default", cwd="/"))
        self.mode, self.ttl_s = mode, ttl_s

    async def start(self) -> None:
        """Start the engine when none runs (as any client would)."""
        await self.api.start()

    async def mint(self, user: str, tenant: str, client: str, *, auth: str | None = None,
                   groups: tuple[str, ...] = (), roles: tuple[str, ...] = (), subject: str = "") -> SessionMinted:
        """A token for ``user`` in ``tenant``, saying how the user was authenticated (``auth``; the
        mode's default when None) and, for SAML/OIDC, the groups/roles the engine maps to roles.
        The engine's refusal (a typed error) is raised as is."""
        return await self.api.call(calls.session_mint(user, tenant, self.mode, self.ttl_s, client, auth=auth,
                                                      groups=list(groups), roles=list(roles), subject=subject))

    async def revoke(self, session_id: str, reason: str) -> None:
        """End a session; a session already gone (expired, engine restarted) is no error here."""
        try:
            await self.api.call(calls.session_revoke(session_id, reason))
        except MusubiError as exc:
            log.info("session %s was not revoked: %s", session_id, exc.message)

    async def event(self, event: str, *, user: str | None = None, tenant: str | None = None, client: str = "",
                    reason: str | None = None) -> bool:
        """Audit a log-in, refusal or log-out; False (and logged) when the engine could not record it."""
        try:
            await self.api.call(calls.remote_event(self.mode, event, user, tenant, client[:300], reason))
            return True
        except MusubiError as exc:
            log.error("could not audit remote %s of %s: %s", event, user or client, exc.message)
            return False

    async def close(self) -> None:
        await self.api.close()
