"""The wire format of the engine's HTTP API, shared by every client.

One definition of what a request carries (path and query, identity headers, JSON body)
and of how an answer is decoded (JSON, or a typed :class:`~core.errors.MusubiError` for
an error status).  :class:`Verbs` gives ``get/post/put/delete`` once for the sync client,
the async client and the TUI's engine API; each only implements ``request``.  No HTTP
library here (the TUI imports this before its first frame); the sockets are in
:mod:`core.transport`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from core.config import current_dir, env_tenant
from core.errors import MusubiError, from_dict

R = TypeVar("R")


@dataclass
class Identity:
    """What the client asks for: tenant, impersonation, project, working directory."""

    tenant: str | None = None
    as_user: str | None = None
    project: str | None = None
    cwd: str | None = None
    # An engine-minted remote-session token (docs/remote.md), read from the pipe `musubi serve`
    # hands the TUI; never from the environment.
    session: str | None = field(default=None, repr=False)
    # identity / SSO: the engine session of `musubi login` (docs/identity.md)
    sso_session: str | None = field(default=None, repr=False)
    # identity / SSO: when set, asked before each request instead of ``sso_session`` (the TUI's
    # core.identity.store.LiveSession: a `musubi login`/`logout` applies without a restart)
    sso_source: Callable[[], str | None] | None = field(default=None, repr=False)

    def headers(self) -> dict[str, str]:
        """The identity headers of every request (``MUSUBI_TENANT`` fills an unset tenant)."""
        h = {"X-Musubi-Cwd": self.cwd or current_dir()}
        tenant = env_tenant(self.tenant)
        if tenant:
            h["X-Musubi-Tenant"] = tenant
        if self.as_user:
            h["X-Musubi-As"] = self.as_user
        if self.project:
            h["X-Musubi-Project"] = self.project
        if self.session:
            h["X-Musubi-Session"] = self.session
        sso = self.sso_source() if self.sso_source is not None else self.sso_session
        if sso and not self.session:  # a remote session never carries an SSO session (docs/remote.md)
            h["X-Musubi-Sso-Session"] = sso
        return h


@dataclass(frozen=True)
class Prepared:
    """One request ready for any HTTP library: target (path and query), headers, body bytes."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes | None


def prepare(
    method: str,
    path: str,
    identity: Identity,
    body: dict[str, Any] | None = None,
    query: dict[str, Any] | None = None,
) -> Prepared:
    """Build a request: empty query values are dropped, the body is JSON."""
    target = path
    if query:
        q = {k: v for k, v in query.items() if v is not None and v != ""}
        if q:
            target = path + "?" + urlencode(q, doseq=True)
    headers = identity.headers()
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    return Prepared(method, target, headers, data)


def raise_for(status: int, raw: bytes) -> None:
    """Raise the typed error an error answer carries (a plain MusubiError if it carries none)."""
    try:
        data = json.loads(raw or b"{}")
    except json.JSONDecodeError:
        raise MusubiError(f"engine answered {status} with a non-JSON body.") from None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        raise from_dict(err, status)
    raise MusubiError(f"engine answered HTTP {status}.")


def decode(status: int, raw: bytes) -> Any:
    """The JSON of a successful answer (None when empty); a typed error otherwise."""
    if status >= 400:
        raise_for(status, raw)
    return json.loads(raw) if raw else None


class Verbs(Generic[R]):
    """``get/post/put/delete`` over one ``request``; ``R`` is its result (a value, or an awaitable)."""

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> R:
        """Send one request and return its decoded answer."""
        raise NotImplementedError

    def get(self, path: str, query: dict[str, Any] | None = None) -> R:
        """GET ``path`` with ``query``."""
        return self.request("GET", path, query=query)

    def post(self, path: str, body: dict[str, Any] | None = None) -> R:
        """POST ``body`` (an empty object when None) to ``path``."""
        return self.request("POST", path, body=body or {})

    def put(self, path: str, body: dict[str, Any]) -> R:
        """PUT ``body`` to ``path``."""
        return self.request("PUT", path, body=body)

    def delete(self, path: str, query: dict[str, Any] | None = None) -> R:
        """DELETE ``path`` with ``query``."""
        return self.request("DELETE", path, query=query)
