"""The client's side of sign-in: getting an ID token from the provider (``musubi login``).

- :func:`device_flow` — any OIDC provider (Okta, Keycloak, Auth0, Google): discovery, then the
  device authorization grant (RFC 8628): print the code, poll the token endpoint every
  ``interval`` seconds; ``authorization_pending`` keeps polling, ``slow_down`` adds 5 s,
  ``expired_token`` / ``access_denied`` stop with a clear message.  Works over SSH: no browser
  on the box.
- :func:`msal_device_flow` — Entra ID through msal's ``PublicClientApplication``
  (``initiate_device_flow`` / ``acquire_token_by_device_flow``), token cache in a 0600 file
  (msal-extensions), silent refresh first.
- :func:`pkce_flow` — authorization code + PKCE (RFC 7636) with a loopback redirect on
  127.0.0.1, for a desktop (``musubi login --browser``), with ``state`` and ``nonce``.
- :func:`refresh` — a refresh-token grant (the generic client's cache), so a new login needs
  no code when the provider still honours the refresh token.

The engine validates whatever these return; nothing here is trusted by it.  Errors name the
provider's ``error`` and never include a token.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from core.identity.errors import IdpError, SignInFailed
from core.identity.keys import TIMEOUT, get_json
from core.identity.redact import redact

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
MSAL_RESERVED = {"openid", "profile", "offline_access"}


@dataclass
class Tokens:
    """What a flow got from the provider (kept in memory; the refresh token goes to a 0600 file)."""

    id_token: str
    access_token: str | None = None
    refresh_token: str | None = None
    nonce: str | None = None


@dataclass
class Provider:
    """The public settings of one provider, as ``GET /v1/sso/providers`` answers them."""

    name: str
    kind: str
    client_id: str
    issuer: str | None
    authority: str | None
    scopes: list[str]
    ca_bundle: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> Provider:
        return cls(str(row["name"]), str(row["kind"]), str(row["client_id"]), row.get("issuer"),
                   row.get("authority"), list(row.get("scopes") or ["openid"]), row.get("ca_bundle"))

    @property
    def verify(self) -> str | bool:
        return self.ca_bundle or True

    def discovery(self) -> dict[str, Any]:
        base = (self.authority.rstrip("/") + "/v2.0") if self.kind == "entra" and self.authority else \
            str(self.issuer).rstrip("/")
        doc = get_json(base + "/.well-known/openid-configuration", self.verify, what="discovery document")
        if not isinstance(doc, dict) or not isinstance(doc.get("token_endpoint"), str):
            raise IdpError(f"the discovery document of {self.name!r} names no token_endpoint.")
        return doc


def _post(url: str, form: dict[str, str], verify: str | bool) -> tuple[int, dict[str, Any]]:
    import requests

    try:
        r = requests.post(url, data=form, timeout=TIMEOUT, verify=verify, headers={"Accept": "application/json"})
    except requests.exceptions.SSLError:
        raise IdpError(f"TLS to {url} failed; if the provider uses a private CA, set ca_bundle in config.toml.") \
            from None
    except requests.RequestException as exc:
        raise IdpError(f"cannot reach the identity provider at {url}: {type(exc).__name__}.") from None
    try:
        body = r.json()
    except ValueError:
        raise IdpError(f"the identity provider answered HTTP {r.status_code} at {url} with a body that is not JSON.") \
            from None
    return r.status_code, body if isinstance(body, dict) else {}


def _failed(body: dict[str, Any], what: str) -> SignInFailed:
    err = str(body.get("error", "unknown_error"))[:80]
    desc = redact(str(body.get("error_description", "")))[:300]
    return SignInFailed(f"{what}: the provider answered {err}" + (f" ({desc})" if desc else "") + ".", idp_error=err)


def _tokens(body: dict[str, Any], nonce: str | None = None) -> Tokens:
    if not isinstance(body.get("id_token"), str):
        raise SignInFailed("the provider's answer has no id_token; make sure the scopes include 'openid'.")
    return Tokens(body["id_token"], body.get("access_token"), body.get("refresh_token"), nonce)


def device_flow(p: Provider, show: Callable[[str], None], *, sleep: Callable[[float], None] = time.sleep,
                clock: Callable[[], float] = time.monotonic) -> Tokens:
    """RFC 8628 against any OIDC provider; ``show`` prints the code to enter."""
    disc = p.discovery()
    dae = disc.get("device_authorization_endpoint")
    if not isinstance(dae, str):
        raise SignInFailed(f"provider {p.name!r} offers no device flow (no device_authorization_endpoint); "
                           "on a desktop use: musubi login --browser")
    status, body = _post(dae, {"client_id": p.client_id, "scope": " ".join(p.scopes)}, p.verify)
    if status != 200 or "device_code" not in body:
        raise _failed(body, "the provider refused to start a device sign-in")
    uri = body.get("verification_uri_complete") or body.get("verification_uri") or body.get("verification_url")
    show(str(body.get("message") or f"To sign in, open {uri} in a browser and enter the code {body.get('user_code')}."))
    interval = max(1.0, float(body.get("interval") or 5))
    deadline = clock() + float(body.get("expires_in") or 900)
    form = {"grant_type": DEVICE_GRANT, "device_code": str(body["device_code"]), "client_id": p.client_id}
    while True:
        if clock() >= deadline:
            raise SignInFailed("the sign-in code expired before it was entered; run musubi login again.",
                               idp_error="expired_token")
        sleep(interval)
        status, got = _post(str(disc["token_endpoint"]), form, p.verify)
        if status == 200:
            return _tokens(got)
        err = got.get("error")
        if err == "authorization_pending":
            continue
        if err == "slow_down":
            interval += 5  # RFC 8628 3.5
            continue
        if err == "expired_token":
            raise SignInFailed("the sign-in code expired before it was entered; run musubi login again.",
                               idp_error="expired_token")
        if err in ("access_denied", "authorization_declined"):
            raise SignInFailed("the sign-in was declined at the provider; nothing changed.", idp_error=str(err))
        raise _failed(got, "the device sign-in failed")


def refresh(p: Provider, refresh_token: str) -> Tokens:
    """A refresh-token grant; :class:`SignInFailed` when the provider no longer honours it."""
    disc = p.discovery()
    status, body = _post(str(disc["token_endpoint"]), {"grant_type": "refresh_token", "refresh_token": refresh_token,
                                                       "client_id": p.client_id, "scope": " ".join(p.scopes)}, p.verify)
    if status != 200:
        raise _failed(body, "the saved sign-in could not be refreshed")
    return _tokens(body)


# -- authorization code + PKCE with a loopback redirect ------------------------------------------


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636."""
    verifier = secrets.token_urlsafe(48)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def pkce_flow(p: Provider, open_url: Callable[[str], None], *, timeout: float = 300.0) -> Tokens:
    """Authorization code + PKCE: a one-shot HTTP listener on 127.0.0.1 receives the redirect."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    disc = p.discovery()
    if not isinstance(disc.get("authorization_endpoint"), str):
        raise SignInFailed(f"provider {p.name!r} has no authorization_endpoint; use the device flow (musubi login).")
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    got: dict[str, str] = {}
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            q = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            if urlsplit(self.path).path != "/callback" or done.is_set():
                self.send_response(404)
                self.end_headers()
                return
            got.update(q)
            done.set()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"Musubi: sign-in received; you can close this window.\n")

        def log_message(self, *_args: Any) -> None:
            return  # the query holds the code: never logged

    server = HTTPServer(("127.0.0.1", 0), Handler)
    redirect = f"http://127.0.0.1:{server.server_address[1]}/callback"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    try:
        open_url(authorize_url(p, disc, redirect, state, nonce, challenge))
        if not done.wait(timeout):
            raise SignInFailed(f"no sign-in arrived within {int(timeout)} s; run musubi login --browser again.")
    finally:
        server.shutdown()
        server.server_close()
    if "error" in got:
        raise _failed(got, "the browser sign-in failed")
    if not secrets.compare_digest(got.get("state", ""), state):
        raise SignInFailed("the sign-in answer's state does not match this request (a forged redirect?); "
                           "nothing was exchanged.")
    return exchange_code(p, disc, got.get("code", ""), redirect, verifier, nonce)


def authorize_url(p: Provider, disc: dict[str, Any], redirect: str, state: str, nonce: str, challenge: str) -> str:
    """The authorization request (code flow, PKCE S256, ``state`` and ``nonce``) to send a browser to."""
    auth = disc.get("authorization_endpoint")
    if not isinstance(auth, str) or not auth.startswith("https://"):
        raise SignInFailed(f"provider {p.name!r} has no https authorization_endpoint in its discovery document.")
    return f"{auth}?" + urlencode({
        "client_id": p.client_id, "response_type": "code", "redirect_uri": redirect, "scope": " ".join(p.scopes),
        "state": state, "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256"})


def exchange_code(p: Provider, disc: dict[str, Any], code: str, redirect: str, verifier: str, nonce: str) -> Tokens:
    """The authorization code for tokens at the token endpoint (a public client: the PKCE verifier, no secret)."""
    status, body = _post(str(disc["token_endpoint"]), {
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
        "client_id": p.client_id, "code_verifier": verifier}, p.verify)
    if status != 200:
        raise _failed(body, "the code exchange failed")
    return _tokens(body, nonce)


# -- Entra ID through msal ----------------------------------------------------------------------


def msal_app(p: Provider, cache_path: str | None = None, *, cache: Any = None) -> Any:
    """A msal ``PublicClientApplication`` for ``p`` with a 0600 file token cache (msal-extensions).

    Or with ``cache``, a token cache the caller keeps (the engine's Entra sign-ins for Teams and
    Azure DevOps serialize theirs into the tenant's secrets file: core/integrations/entra.py).
    """
    import msal

    if cache is None:
        from msal_extensions import FilePersistence, PersistedTokenCache

        cache = PersistedTokenCache(FilePersistence(str(cache_path)))
    http = None
    if p.ca_bundle:
        # msal's own verify= is set on its requests.Session, where a REQUESTS_CA_BUNDLE in the environment
        # beats it; a per-request verify is never overridden, so the provider's CA bundle really applies.
        import functools

        import requests

        http = requests.Session()
        http.request = functools.partial(http.request, verify=p.ca_bundle, timeout=TIMEOUT)  # type: ignore[method-assign]
        http.mount("https://", requests.adapters.HTTPAdapter(max_retries=1))
    return msal.PublicClientApplication(
        p.client_id, authority=p.authority, instance_discovery=False, token_cache=cache, timeout=TIMEOUT[1],
        http_client=http,
    )


def msal_scopes(p: Provider) -> list[str]:
    """msal adds openid/profile/offline_access itself and refuses them in the list."""
    return [s for s in p.scopes if s not in MSAL_RESERVED]


def msal_device_flow(p: Provider, show: Callable[[str], None], cache_path: str) -> Tokens:
    """Entra ID: silent refresh from the cache when possible, else msal's device flow."""
    app = msal_app(p, cache_path)
    scopes = msal_scopes(p)
    for account in app.get_accounts():
        result = app.acquire_token_silent(scopes, account=account, force_refresh=True)
        if result and isinstance(result.get("id_token"), str):
            return Tokens(result["id_token"], result.get("access_token"))
    try:
        flow = app.initiate_device_flow(scopes=scopes)
    except ValueError as exc:
        raise IdpError(f"msal could not use authority {p.authority}: {redact(str(exc))[:200]}") from None
    if "user_code" not in flow:
        raise _failed(flow, "Entra ID refused to start a device sign-in")
    show(str(flow["message"]))
    result = app.acquire_token_by_device_flow(flow)
    if not isinstance(result.get("id_token"), str):
        err = result.get("error")
        if err == "expired_token" or (err is None and "error_description" not in result):
            raise SignInFailed("the sign-in code expired before it was entered; run musubi login again.",
                               idp_error="expired_token")
        if err in ("access_denied", "authorization_declined"):
            raise SignInFailed("the sign-in was declined at the provider; nothing changed.", idp_error=str(err))
        raise _failed(result, "the Entra ID sign-in failed")
    return Tokens(result["id_token"], result.get("access_token"))


def msal_forget(p: Provider, cache_path: str) -> int:
    """Remove every account from the msal cache; how many there were."""
    app = msal_app(p, cache_path)
    accounts = app.get_accounts()
    for a in accounts:
        app.remove_account(a)
    return len(accounts)
