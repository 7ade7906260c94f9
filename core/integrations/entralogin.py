"""``POST|GET /v1/integrations/{system}/login``: the engine's side of ``musubi integrations login teams|ado``.

The engine (not the CLI) runs msal's device flow (:mod:`core.integrations.entra`), because the
token cache it yields must live with the engine's other secrets and be refreshed by it, silently,
whenever a connector is built.  ``POST`` starts a flow and answers the code and the address at
once; a background task waits for the user (up to the code's lifetime), then stores the cache
(secret ``msal_cache``), sets ``auth=entra`` and audits ``integration.login``.  ``GET`` tells
how the last sign-in went.  Both need ``integrations.manage``.  One flow per tenant and system
at a time; a new ``POST`` replaces a pending one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from core.audit import ts_text
from core.errors import MusubiError
from core.integrations import entra

if TYPE_CHECKING:
    from core.engine.access import Caller
    from core.engine.runner import OpRunner
    from core.integrations.service import IntegrationService

log = logging.getLogger("musubi.integrations")


class EntraLogins:
    """``engine.entra_logins``: device-flow sign-ins per (tenant, system), in memory while they run."""

    def __init__(self, runner: OpRunner, integrations: IntegrationService) -> None:
        self.e = runner
        self.integrations = integrations
        self.last: dict[tuple[str, str], dict[str, Any]] = {}
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._flows: dict[tuple[str, str], dict[str, Any]] = {}

    async def _allowed(self, ctx: Caller, system: str) -> entra.EntraSettings:
        await self.e.run(ctx, "integration.login", f"integration:{system}",
                         lambda: self.e.require(ctx, "integrations.manage"))
        settings = (await asyncio.to_thread(self.integrations.store.settings, ctx.tenant)).get(system) or {}
        return entra.EntraSettings.of(system, settings)

    async def start(self, ctx: Caller, system: str) -> dict[str, Any]:
        """Start a device flow: answers the code, the address and msal's message to show."""
        es = await self._allowed(ctx, system)
        cache = (await asyncio.to_thread(self.integrations.store.secrets, ctx.tenant, system)).get(entra.CACHE)
        handle, flow = await asyncio.to_thread(entra.start, es, cache)
        key = (ctx.tenant, system)
        self._stop(key)  # a new POST replaces a pending flow
        self._flows[key] = flow
        expires = self.e.now() + timedelta(seconds=int(flow.get("expires_in") or 900))
        shown = {"system": system, "state": "pending", "user_code": str(flow["user_code"]),
                 "verification_uri": str(flow.get("verification_uri") or flow.get("verification_url") or ""),
                 "message": str(flow.get("message") or ""), "expires_at": ts_text(expires), "account": None,
                 "error": None}
        self.last[key] = shown
        self._tasks[key] = asyncio.get_running_loop().create_task(self._wait(ctx, es, handle, flow, shown))
        return dict(shown)

    async def _wait(self, ctx: Caller, es: entra.EntraSettings, handle: Any, flow: dict[str, Any],
                    shown: dict[str, Any]) -> None:
        resource = f"integration:{es.system}"
        try:
            who, cache = await asyncio.to_thread(entra.finish, es, handle, flow)
        except MusubiError as exc:
            if self.last.get((ctx.tenant, es.system)) is shown:  # not a flow replaced or stopped by the engine
                shown.update(state="failed", error=exc.message)
                await self._audit(ctx, resource, "error", {"system": es.system, "error": exc.message})
            return
        except Exception as exc:  # msal or the network: reported, never raised into the loop
            log.exception("Entra sign-in for %s failed", es.system)
            shown.update(state="failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return
        if self.last.get((ctx.tenant, es.system)) is not shown:
            return  # a newer sign-in replaced this one
        await asyncio.to_thread(self.integrations.store.update, ctx.tenant, es.system, {"auth": "entra"},
                                {entra.CACHE: cache}, [])
        shown.update(state="signed_in", account=who)
        await self._audit(ctx, resource, "success", {"system": es.system, "account": who})

    async def _audit(self, ctx: Caller, resource: str, outcome: str, details: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):  # the tenant may be gone; the log has the failure
            await self.e.run(None, "integration.login", resource, lambda: self.e.audit(
                ctx.tenant, ctx, "integration.login", resource, outcome=outcome, details=details))

    async def status(self, ctx: Caller, system: str) -> dict[str, Any]:
        """The last sign-in started here (``pending``, ``signed_in``, ``failed``), else whether a cache is stored."""
        await self._allowed(ctx, system)
        got = self.last.get((ctx.tenant, system))
        if got is not None:
            return dict(got)
        stored = entra.CACHE in await asyncio.to_thread(self.integrations.store.secrets, ctx.tenant, system)
        return {"system": system, "state": "signed_in" if stored else "none", "user_code": None,
                "verification_uri": None, "message": None, "expires_at": None, "account": None, "error": None}

    def _stop(self, key: tuple[str, str]) -> None:
        flow = self._flows.pop(key, None)
        if flow is not None:
            flow["expires_at"] = 0  # msal's documented way to end its polling loop early (within a second)
        self.last.pop(key, None)
        self._tasks.pop(key, None)

    async def close(self) -> None:
        """On the engine's stop: end the polling threads, so the stop does not wait for a code's expiry."""
        tasks = list(self._tasks.values())
        for key in list(self._flows):
            self._stop(key)
        for task in tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 3)
