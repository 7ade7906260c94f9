"""Delegated Entra tokens for Teams (Graph) and Azure DevOps by msal's device flow (issue 17 gaps).

Against the TLS fake Entra ID of the SSO tests (tests/identity/fake_idp.py), taught here to answer
the scopes asked for with JWT-shaped access tokens carrying ``scp`` (what Graph checks), and a
short lifetime when a test wants msal to refresh.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from core.integrations import entra
from core.integrations.contracts import IntegrationError
from tests.engine.helpers import Home, poll
from tests.fakes.teams import TeamsFake, claims_of, fake_jwt
from tests.fakes.threaded import threaded
from tests.identity.fake_idp import CLIENT_ID, FakeIdp
from tests.notify.test_notify_engine import HOOK
from tests.runs.helpers import runs_home

ADO_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"


class ScopedIdp(FakeIdp):
    """The fake Entra ID, answering each grant with an access token for the scopes requested."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.expires_in = 3600
        self.scopes_asked: list[str] = []
        self._scope = ""
        self._device_scope = ""

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        asked = str(form.get("scope") or self._device_scope)  # a device-code grant names no scope: its code's
        self._scope = " ".join(s for s in asked.split() if s not in ("openid", "profile", "offline_access"))
        self.scopes_asked.append(f"{form.get('grant_type')!s}:{self._scope}")
        return await super().token(request)

    async def devicecode(self, request: web.Request) -> web.Response:
        form = await request.post()
        self._device_scope = str(form.get("scope", ""))
        self.scopes_asked.append(f"devicecode:{self._device_scope}")
        return await super().devicecode(request)

    def _tokens(self, client_id: str, nonce: str | None = None) -> dict[str, Any]:
        out = super()._tokens(client_id, nonce)
        at = fake_jwt({"scp": self._scope, "aud": self._scope.split("/")[0], "n": secrets.token_hex(4)})
        self.access[at] = self.user.sub
        return {**out, "access_token": at, "scope": self._scope, "expires_in": self.expires_in}


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[ScopedIdp]:
    fake = ScopedIdp(tmp_path)
    with fake:
        yield fake


def settings(idp: FakeIdp, **extra: str) -> dict[str, str]:
    return {"client_id": CLIENT_ID, "authority": idp.authority, "ca_bundle": str(idp.ca_path), **extra}


def test_settings_name_what_is_missing() -> None:
    with pytest.raises(Exception, match="client_id=APP_ID"):
        entra.EntraSettings.of("teams", {})
    with pytest.raises(Exception, match="https"):
        entra.EntraSettings.of("ado", {"client_id": "x", "authority": "http://login.example/t"})
    es = entra.EntraSettings.of("ado", {"client_id": "x", "tenant_id": "contoso.onmicrosoft.com"})
    assert es.authority == "https://login.microsoftonline.com/contoso.onmicrosoft.com" and es.scopes == (ADO_SCOPE,)


def test_device_flow_then_silent_tokens_and_refresh(idp: ScopedIdp) -> None:
    es = entra.EntraSettings.of("ado", settings(idp))
    handle, flow = entra.start(es, None)
    assert flow["user_code"] == "ABCD-EFGH" and "/device" in flow["verification_uri"]
    who, cache = entra.finish(es, handle, flow)
    assert who == "alice@example.com" and json.loads(cache)["RefreshToken"]  # the refresh token is in the cache
    assert any(s.startswith("devicecode:") and ADO_SCOPE in s for s in idp.scopes_asked)
    token, changed = entra.token(es, cache)
    assert claims_of(token)["scp"] == ADO_SCOPE and changed is None  # from the cache: no call, nothing to store
    grants = len(idp.scopes_asked)
    assert entra.token(es, cache)[0] == token and len(idp.scopes_asked) == grants
    idp.expires_in = 1  # the next token msal gets is already "expired" (within its 5-minute margin)
    es_new = entra.EntraSettings.of("ado", settings(idp, scopes=ADO_SCOPE))
    # expire the cached token: msal refreshes silently with the refresh token and the cache changes
    data = json.loads(cache)
    for at in data["AccessToken"].values():
        at["expires_on"] = at["extended_expires_on"] = "1"
    refreshed, changed = entra.token(es_new, json.dumps(data))
    assert refreshed != token and changed is not None and idp.scopes_asked[-1] == f"refresh_token:{ADO_SCOPE}"


def test_no_cache_or_a_declined_sign_in_says_what_to_do(idp: ScopedIdp) -> None:
    es = entra.EntraSettings.of("teams", settings(idp))
    with pytest.raises(IntegrationError, match="musubi integrations login teams") as e:
        entra.token(es, None)
    assert e.value.kind == "auth"
    with pytest.raises(IntegrationError, match="musubi integrations login teams"):
        entra.token(es, "{not json")  # a damaged cache is a cache miss
    idp.deny = True
    handle, flow = entra.start(es, None)
    with pytest.raises(IntegrationError, match="access_denied"):
        entra.finish(es, handle, flow)


# -- the engine: POST/GET /v1/integrations/{system}/login, then Graph posts with the token ------------


@pytest.fixture
def home() -> Iterator[Home]:
    with runs_home(MUSUBI_TEST_CONNECTORS=HOOK) as h:
        yield h


def test_engine_login_stores_the_cache_and_teams_posts_to_graph_with_the_token(home: Home, idp: ScopedIdp) -> None:
    h = home
    tenant = h.new_tenant("e", members={"vera": "viewer"})
    with threaded(TeamsFake) as teams:
        status, body = h.raw("PUT", "/v1/integrations/teams", {"settings": {
            **settings(idp), "graph_url": teams.url, "team": "T1", "channel": "C1"}}, tenant=tenant)
        assert status == 200, body
        status, body = h.raw("POST", "/v1/integrations/teams/login", {}, tenant=tenant, as_user="vera")
        assert status == 403, body
        status, started = h.raw("POST", "/v1/integrations/teams/login", {}, tenant=tenant)
        assert status == 202, started
        assert started["state"] == "pending" and started["user_code"] == "ABCD-EFGH"
        assert "ABCD-EFGH" in started["message"] and started["verification_uri"].endswith("/device")
        done = poll(lambda: (lambda b: b if b["state"] != "pending" else None)(
            h.raw("GET", "/v1/integrations/teams/login", tenant=tenant)[1]), timeout=30)
        assert done["state"] == "signed_in" and done["account"] == "alice@example.com", done
        listing = h.raw("GET", "/v1/integrations", tenant=tenant)[1]
        row = next(r for r in listing["integrations"] if r["system"] == "teams")
        assert row["settings"]["auth"] == "entra" and row["secrets"] == ["msal_cache"]
        assert "RefreshToken" not in json.dumps(listing)
        status, body = h.raw("POST", "/v1/integrations/teams/notify", {"title": "Deploy", "text": "done",
                                                                       "target": "graph"}, tenant=tenant)
        assert status == 200, body
        (msg,) = teams.graph_messages
        assert "Deploy" in msg["body"]["content"]
        status, body = h.raw("PUT", "/v1/integrations/teams", {"secrets": {"msal_cache": "{}"}}, tenant=tenant)
        assert status == 400 and "musubi integrations login teams" in body["error"]["message"]
    secrets_file = h.paths.tenant_dir(tenant) / "integrations" / "secrets.json"
    assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"
    assert "RefreshToken" in json.loads(secrets_file.read_text())["teams"]["msal_cache"]
    audit = [(e["action"], e["outcome"]) for e in h.audit(tenant) if e["action"] == "integration.login"]
    assert ("integration.login", "success") in audit and ("integration.login", "denied") in audit
    assert "RefreshToken" not in json.dumps(h.audit(tenant))
    status, body = h.raw("POST", "/v1/integrations/slack/login", {}, tenant=tenant)
    assert status == 400 and "teams and ado" in body["error"]["message"]


def test_cli_login_prints_the_code_then_the_outcome_as_json_lines(idp: ScopedIdp) -> None:
    from tests.cli.helpers import cli_fixture

    with cli_fixture(env={"MUSUBI_TEST_CONNECTORS": HOOK}) as cli:
        r = cli.fails(2, "integrations", "login", "slack")
        assert "teams" in r.err and "ado" in r.err
        r = cli.fails(2, "integrations", "login", "ado")  # no client_id yet: the fix is named
        assert "musubi integrations set ado client_id=" in r.err
        cli.ok("integrations", "set", "ado", "org_url=https://dev.azure.com/acme", "project=app",
               *(f"{k}={v}" for k, v in settings(idp).items()))
        out = cli.ok("integrations", "login", "ado", "--json").out.strip().splitlines()
        started, done = (json.loads(x) for x in out)
        assert (started["state"], started["user_code"]) == ("pending", "ABCD-EFGH")
        assert (done["state"], done["account"]) == ("signed_in", "alice@example.com")
        human = cli.ok("integrations", "login", "ado", "--status").out
        assert "signed in as alice@example.com" in human
        assert any(s.startswith("devicecode:") and ADO_SCOPE in s for s in idp.scopes_asked)


async def test_the_signed_in_token_reaches_the_ado_connector_as_bearer(idp: ScopedIdp, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from core.integrations.service import IntegrationService

    runner: Any = SimpleNamespace(tenant_dir=lambda t: tmp_path / "home" / t)
    svc = IntegrationService(runner, SimpleNamespace(register=lambda *a, **k: None))  # type: ignore[arg-type]
    es = entra.EntraSettings.of("ado", settings(idp))
    handle, flow = entra.start(es, None)
    _who, cache = entra.finish(es, handle, flow)
    svc.store.update("acme", "ado", {"org_url": "https://dev.azure.com/acme", "project": "app", "auth": "entra",
                                     **settings(idp)}, {entra.CACHE: cache}, [])
    conn = await svc.open_connector("acme", "ado")
    try:
        header = conn.http._headers["Authorization"]  # type: ignore[attr-defined]
        assert header.startswith("Bearer ") and claims_of(header[7:])["scp"] == ADO_SCOPE
    finally:
        await conn.close()
    svc.store.update("acme", "ado", {}, {}, [entra.CACHE])  # signed out: the connector says how to sign in
    with pytest.raises(IntegrationError, match="musubi integrations login ado"):
        await svc.open_connector("acme", "ado")
