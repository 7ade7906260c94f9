"""A TLS fake identity provider on 127.0.0.1 (aiohttp in a thread), after docs/identity.md and the
vendor notes (shared/api-notes/connectors.md §6): OIDC discovery (both the Entra
``{authority}/v2.0/.well-known/...`` and the plain ``{issuer}/.well-known/...`` paths), a JWKS with
key rotation, the device authorization endpoint, the token endpoint (device code with
authorization_pending / slow_down / expired_token / access_denied, refresh, authorization code +
PKCE), ``/authorize`` that approves at once, and Graph ``getMemberObjects`` for group overage.

TLS comes from a self-signed CA made here with ``cryptography``: ``ca_path`` is what clients trust.
``mint()`` signs arbitrary ID tokens (for the attack tests).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import secrets
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

CLIENT_ID = "musubi-test-client"
TENANT = "tenant1"


def make_ca(folder: Path) -> tuple[Path, Path, Path]:
    """(CA cert, server cert, server key) PEM files for 127.0.0.1, made with cryptography."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "musubi test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


@dataclass
class User:
    sub: str
    name: str
    email: str
    groups: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)


@dataclass
class Device:
    user_code: str
    client_id: str
    scope: str
    expires_at: float
    approved: bool = False
    denied: bool = False
    polls: int = 0
    last_poll: float = 0.0


class FakeIdp:
    """Start with ``with FakeIdp(tmp) as idp:``; ``idp.issuer``, ``idp.authority``, ``idp.ca_path``."""

    def __init__(self, folder: Path, *, overage_after: int | None = None) -> None:
        self.ca_path, self._cert, self._key = make_ca(folder)
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.current_kid = self.rotate()
        self.user = User("sub-alice", "Alice Example", "alice@example.com", ["grp-dev"], ["Reader"])
        self.pending_polls = 1  # authorization_pending answers before the device flow succeeds
        self.slow_down_polls: set[int] = set()  # poll numbers answered with slow_down
        self.auto_approve = True  # approve a device code once pending_polls were answered
        self.deny = False
        self.device_expires_in = 600
        self.overage_after = overage_after  # more groups than this: _claim_names instead of groups
        self.devices: dict[str, Device] = {}
        self.refresh: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.access: dict[str, str] = {}  # access token -> sub (Graph checks it)
        self.requests: list[str] = []
        self.extra_jwks: list[dict[str, Any]] = []  # published as they are (foreign keys, odd entries)
        self.poll_times: list[float] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # -- addresses ---------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.base}/{TENANT}"

    @property
    def issuer(self) -> str:
        return f"{self.authority}/v2.0"

    # -- keys and tokens ---------------------------------------------------------------------

    def rotate(self, *, drop_old: bool = False) -> str:
        """A new signing key (the JWKS publishes it); it signs from now on."""
        if drop_old:
            self.keys.clear()
        kid = "k-" + secrets.token_hex(4)
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.current_kid = kid
        return kid

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, k in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key()))
            out.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": out + self.extra_jwks}

    def public_pem(self, kid: str | None = None) -> bytes:
        return self.keys[kid or self.current_kid].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def claims(self, user: User | None = None, **over: Any) -> dict[str, Any]:
        u = user or self.user
        now = int(time.time())
        c: dict[str, Any] = {
            "iss": self.issuer, "aud": CLIENT_ID, "sub": u.sub, "oid": u.sub, "tid": TENANT,
            "iat": now, "nbf": now, "exp": now + 3600, "name": u.name, "preferred_username": u.email,
            "email": u.email, "roles": list(u.roles), "uti": secrets.token_urlsafe(8),
        }
        if self.overage_after is not None and len(u.groups) > self.overage_after:
            c["_claim_names"] = {"groups": "src1"}
            c["_claim_sources"] = {"src1": {"endpoint": f"{self.base}/graph/v1.0/users/{u.sub}/getMemberObjects"}}
        else:
            c["groups"] = list(u.groups)
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def mint(self, claims: dict[str, Any] | None = None, *, kid: str | None = None, alg: str = "RS256",
             key: Any = None, headers: dict[str, Any] | None = None) -> str:
        """An ID token signed with the current key (or ``key``/``kid``)."""
        kid = kid or self.current_kid
        signing = key if key is not None else self.keys.get(kid) or self.keys[self.current_kid]
        return jwt.encode(claims or self.claims(), signing, algorithm=alg, headers={"kid": kid, **(headers or {})})

    def _tokens(self, client_id: str, nonce: str | None = None) -> dict[str, Any]:
        rt = "rt-" + secrets.token_urlsafe(16)
        at = "at-" + secrets.token_urlsafe(16)
        self.refresh[rt] = {"client_id": client_id}
        self.access[at] = self.user.sub
        info = base64.urlsafe_b64encode(json.dumps({"uid": self.user.sub, "utid": TENANT}).encode()).decode()
        info = info.rstrip("=")
        return {"token_type": "Bearer", "expires_in": 3600, "access_token": at, "refresh_token": rt,
                "id_token": self.mint(self.claims(aud=client_id, nonce=nonce)), "scope": "openid profile email",
                "client_info": info}

    # -- handlers ----------------------------------------------------------------------------

    def _discovery(self) -> dict[str, Any]:
        a = self.authority
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{a}/oauth2/v2.0/authorize",
            "token_endpoint": f"{a}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{a}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{a}/discovery/v2.0/keys",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "grant_types_supported": ["authorization_code", "refresh_token",
                                      "urn:ietf:params:oauth:grant-type:device_code"],
        }

    async def discovery(self, request: web.Request) -> web.Response:
        self.requests.append("discovery")
        return web.json_response(self._discovery())

    async def keys_doc(self, request: web.Request) -> web.Response:
        self.requests.append("jwks")
        return web.json_response(self.jwks())

    async def devicecode(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id = str(form.get("client_id", ""))
        if not client_id:
            return web.json_response({"error": "invalid_request", "error_description": "client_id missing"}, status=400)
        dc = "dc-" + secrets.token_urlsafe(16)
        self.devices[dc] = Device("ABCD-EFGH", client_id, str(form.get("scope", "")),
                                  time.time() + self.device_expires_in)
        return web.json_response({
            "device_code": dc, "user_code": "ABCD-EFGH", "verification_uri": f"{self.base}/device",
            "expires_in": self.device_expires_in, "interval": 1,
            "message": f"To sign in, use a browser to open {self.base}/device and enter the code ABCD-EFGH.",
        })

    async def approve(self, request: web.Request) -> web.Response:
        body = await request.json()
        for d in self.devices.values():
            if d.user_code == body.get("user_code"):
                d.approved = not body.get("deny")
                d.denied = bool(body.get("deny"))
        return web.json_response({"ok": True})

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        code = "code-" + secrets.token_urlsafe(12)
        self.codes[code] = {"client_id": q.get("client_id"), "redirect_uri": q.get("redirect_uri"),
                            "challenge": q.get("code_challenge"), "method": q.get("code_challenge_method"),
                            "nonce": q.get("nonce")}
        sep = "&" if "?" in q.get("redirect_uri", "") else "?"
        raise web.HTTPFound(f"{q.get('redirect_uri')}{sep}code={code}&state={q.get('state', '')}")

    @staticmethod
    def _err(error: str, status: int = 400) -> web.Response:
        return web.json_response({"error": error, "error_description": f"{error} (fake IdP)"}, status=status)

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = str(form.get("grant_type", ""))
        client_id = str(form.get("client_id", ""))
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            d = self.devices.get(str(form.get("device_code", "")))
            if d is None:
                return self._err("invalid_grant")
            d.polls += 1
            self.poll_times.append(time.monotonic())
            if time.time() > d.expires_at:
                return self._err("expired_token")
            if self.deny or d.denied:
                return self._err("access_denied")
            if d.polls in self.slow_down_polls:
                return self._err("slow_down")
            if not d.approved and self.auto_approve and d.polls > self.pending_polls:
                d.approved = True
            if not d.approved:
                return self._err("authorization_pending")
            del self.devices[str(form.get("device_code"))]
            return web.json_response(self._tokens(d.client_id))
        if grant == "refresh_token":
            rt = str(form.get("refresh_token", ""))
            if rt not in self.refresh:
                return self._err("invalid_grant")
            del self.refresh[rt]  # rotated, as providers do
            return web.json_response(self._tokens(client_id))
        if grant == "authorization_code":
            c = self.codes.pop(str(form.get("code", "")), None)
            if c is None or c["redirect_uri"] != form.get("redirect_uri"):
                return self._err("invalid_grant")
            verifier = str(form.get("code_verifier", ""))
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
            if c["method"] != "S256" or digest != c["challenge"]:
                return self._err("invalid_grant")
            return web.json_response(self._tokens(client_id or str(c["client_id"]), c["nonce"]))
        return self._err("unsupported_grant_type")

    async def member_objects(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        sub = self.access.get(auth.removeprefix("Bearer "))
        if sub is None or sub != request.match_info["oid"]:
            return web.json_response({"error": {"code": "Authorization_RequestDenied", "message": "denied"}},
                                     status=403)
        self.requests.append("graph")
        return web.json_response({"value": list(self.user.groups)})

    # -- life --------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application()
        t = TENANT
        app.router.add_get(f"/{t}/v2.0/.well-known/openid-configuration", self.discovery)
        app.router.add_get(f"/{t}/.well-known/openid-configuration", self.discovery)
        app.router.add_get(f"/{t}/discovery/v2.0/keys", self.keys_doc)
        app.router.add_post(f"/{t}/oauth2/v2.0/devicecode", self.devicecode)
        app.router.add_post(f"/{t}/oauth2/v2.0/token", self.token)
        app.router.add_get(f"/{t}/oauth2/v2.0/authorize", self.authorize)
        app.router.add_post("/_approve", self.approve)
        app.router.add_post("/graph/v1.0/users/{oid}/getMemberObjects", self.member_objects)
        return app

    def __enter__(self) -> FakeIdp:
        started = threading.Event()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self._cert, self._key)

        def main() -> None:
            loop = self._loop = asyncio.new_event_loop()
            self._runner = web.AppRunner(self._app())
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ctx)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=main, name="fake-idp", daemon=True)
        self._thread.start()
        started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def config_toml(self, name: str = "corp", kind: str = "oidc", **extra: str) -> str:
        """A config.toml ``[sso]`` section pointing at this fake."""
        lines = ["[sso]", f'default = "{name}"', "", f"[sso.providers.{name}]", f'kind = "{kind}"',
                 f'client_id = "{CLIENT_ID}"', f'ca_bundle = "{self.ca_path}"']
        if kind == "entra":
            lines += [f'authority = "{self.authority}"', f'graph_url = "{self.base}/graph"']
        else:
            lines.append(f'issuer = "{self.issuer}"')
        lines += [f'{k} = "{v}"' for k, v in extra.items()]
        return "\n".join(lines) + "\n"


def new_id() -> str:
    return uuid.uuid4().hex[:8]
