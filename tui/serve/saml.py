"""SAML 2.0 sign-in for ``musubi serve web``: a service provider on python3-saml (xmlsec underneath).

No XML signature is checked by hand here: python3-saml validates the response in strict mode,
with these settings forced whatever ``settings.json`` says:

- ``strict``: Destination and Recipient must be this server's ACS URL, the Audience its
  entity id, NotBefore/NotOnOrAfter must hold (python3-saml's small clock allowance);
- ``wantAssertionsSigned``: an unsigned assertion is refused (a signed response around an
  unsigned assertion too); python3-saml also refuses more than one assertion, signatures on
  anything but the response and the assertion, and references that do not point at the
  element they sign, which is what signature-wrapping attacks rely on;
- ``rejectDeprecatedAlgorithm``: no SHA-1 signatures or digests.

On top, this module refuses an unsolicited response (``InResponseTo`` must name a request this
server sent, once, in the last 10 minutes) and a replayed assertion (its ID remembered until its
NotOnOrAfter), and maps the NameID to a musubi user and tenant through its own users file::

    # DIR/users
    musubi:user=mia,tenant=acme mia@example.com

A NameID the file does not list is refused: the identity provider says who someone is, the
server's administrator says what they may be here.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.errors import OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from core import names
from core.api.sessions import AUTH_NAME as PROVIDER_NAME
from core.errors import MusubiError
from tui.serve.keys import KeysFileError, check_safe

if TYPE_CHECKING:
    from tui.serve.web import WebServer

log = logging.getLogger("musubi.serve")
REQUEST_TTL_S = 600  # how long an AuthnRequest may wait for its answer
MAX_RESPONSE = 256 * 1024  # characters of a base64 SAMLResponse
MAX_PENDING = 10_000  # AuthnRequests awaiting an answer (the oldest is dropped beyond)
FORCED_SECURITY = {
    "wantAssertionsSigned": True,
    "wantNameId": True,
    "rejectDeprecatedAlgorithm": True,
    "rejectUnsolicitedResponsesWithInResponseTo": True,
    "allowRepeatAttributeName": False,
    "wantAttributeStatement": False,  # groups/roles attributes are optional (default deny: none grants nothing)
}
MUSUBI_KEYS = {"name", "groups_attribute", "roles_attribute"}
MAX_ATTR_VALUES = 1000


@dataclass(frozen=True)
class SamlSignIn:
    """A valid response: who it signs in, and the group/role attribute values for the SSO mapping rules."""

    user: str
    tenant: str
    subject: str  # the NameID
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()


@dataclass
class SamlSP:
    """The service provider: python3-saml settings, the users map, outstanding requests, seen assertions."""

    settings: dict[str, Any]
    users: dict[str, tuple[str, str]]
    # "musubi" of settings.json: the IdP's name for `musubi sso map --provider NAME`, and which
    # attributes carry groups and roles (docs/remote.md#saml)
    name: str = "saml"
    groups_attribute: str = "groups"
    roles_attribute: str = "roles"
    outstanding: dict[str, float] = field(default_factory=dict)  # AuthnRequest id -> expiry (monotonic)
    seen: dict[str, float] = field(default_factory=dict)  # assertion id -> forget after (epoch seconds)

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: Path) -> SamlSP:
        """``folder/settings.json`` (python3-saml's format) and ``folder/users``; a clear error otherwise."""
        try:
            raw = json.loads((folder / "settings.json").read_text(encoding="utf-8"))
        except OSError as exc:
            raise KeysFileError(f"cannot read {folder / 'settings.json'}: {exc.strerror}.") from None
        except json.JSONDecodeError as exc:
            raise KeysFileError(f"{folder / 'settings.json'} is not JSON: {exc}.") from None
        users_file = folder / "users"
        try:
            check_safe(users_file, users_file.stat())
            users = parse_users(users_file.read_text(encoding="utf-8"), str(users_file))
        except OSError as exc:
            raise KeysFileError(f"cannot read the SAML users file {users_file}: {exc.strerror}.") from None
        return cls.from_settings(raw, users)

    @classmethod
    def from_settings(cls, raw: dict[str, Any], users: dict[str, tuple[str, str]]) -> SamlSP:
        """Force the security settings and check them with python3-saml."""
        if not isinstance(raw, dict):
            raise KeysFileError("SAML settings must be a JSON object (python3-saml's settings.json format).")
        settings = copy.deepcopy(raw)
        ours = settings.pop("musubi", None) or {}
        if not isinstance(ours, dict) or set(ours) - MUSUBI_KEYS or not all(
                isinstance(v, str) and v for v in ours.values()):
            raise KeysFileError("settings.json: \"musubi\" must be an object with only "
                                f"{', '.join(sorted(MUSUBI_KEYS))} (non-empty strings).")
        name = ours.get("name", "saml")
        if not PROVIDER_NAME.fullmatch(name):
            raise KeysFileError(f"settings.json: musubi.name {name[:40]!r} must be letters, digits, - and _ "
                                "(it is the provider name of `musubi sso map --provider NAME`).")
        settings["strict"] = True
        settings["debug"] = False
        settings["security"] = {**settings.get("security", {}), **FORCED_SECURITY}
        try:
            OneLogin_Saml2_Settings(settings, sp_validation_only=False)
        except OneLogin_Saml2_Error as exc:
            raise KeysFileError(f"SAML settings refused by python3-saml: {exc}.") from None
        return cls(settings, dict(users), name, ours.get("groups_attribute", "groups"),
                   ours.get("roles_attribute", "roles"))

    @property
    def acs_url(self) -> str:
        return str(self.settings["sp"]["assertionConsumerService"]["url"])

    def install(self, app: web.Application, server: WebServer) -> None:
        """Add ``/saml/login``, ``/saml/acs`` and ``/saml/metadata``; the ACS URL must be this server's."""
        expected = f"{server.public_url}/saml/acs"
        if self.acs_url != expected:
            raise KeysFileError(f"the SAML ACS URL in settings.json is {self.acs_url}, but this server's is "
                                f"{expected}: set sp.assertionConsumerService.url to it (or give --public-url).")
        routes = SamlRoutes(self, server)
        app.add_routes([web.get("/saml/login", routes.login), web.post("/saml/acs", routes.acs),
                        web.get("/saml/metadata", routes.metadata)])

    # -- python3-saml's view of a request -----------------------------------------------------

    def request_data(self, post: dict[str, str] | None = None) -> dict[str, Any]:
        """The request as python3-saml wants it, built from the configured ACS URL (never the Host header)."""
        u = urlsplit(self.acs_url)
        return {"https": "on" if u.scheme == "https" else "off", "http_host": u.netloc, "script_name": u.path,
                "get_data": {}, "post_data": post or {}}

    def begin(self) -> str:
        """A new AuthnRequest: the identity provider's URL to send the browser to."""
        auth = OneLogin_Saml2_Auth(self.request_data(), copy.deepcopy(self.settings))
        url = str(auth.login())
        now = time.monotonic()
        self.outstanding = {k: v for k, v in self.outstanding.items() if v > now}
        if len(self.outstanding) >= MAX_PENDING:  # /saml/login is open to anyone: bound what it can fill
            del self.outstanding[next(iter(self.outstanding))]
        self.outstanding[str(auth.get_last_request_id())] = now + REQUEST_TTL_S
        return url

    def finish(self, saml_response: str) -> tuple[str, str, str]:
        """(user, tenant, NameID) of a valid response; :class:`SamlRefused` naming why not."""
        got = self.sign_in(saml_response)
        return got.user, got.tenant, got.subject

    def sign_in(self, saml_response: str) -> SamlSignIn:
        """The sign-in of a valid response (with its group/role attributes); :class:`SamlRefused` naming why not."""
        if len(saml_response) > MAX_RESPONSE:
            raise SamlRefused("SAML response too large")
        settings = OneLogin_Saml2_Settings(copy.deepcopy(self.settings))
        try:
            peek = OneLogin_Saml2_Response(settings, saml_response)
            in_response_to = peek.document.get("InResponseTo")
        except Exception as exc:  # noqa: BLE001 - anything unparsable is refused, never a traceback
            raise SamlRefused(f"not a SAML response ({type(exc).__name__})") from None
        expiry = self.outstanding.pop(in_response_to or "", None)
        if expiry is None or expiry <= time.monotonic():
            raise SamlRefused("unsolicited response: InResponseTo names no pending request of this server")
        auth = OneLogin_Saml2_Auth(self.request_data({"SAMLResponse": saml_response}), copy.deepcopy(self.settings))
        try:
            auth.process_response(request_id=in_response_to)
        except (OneLogin_Saml2_Error, OneLogin_Saml2_ValidationError) as exc:
            raise SamlRefused(f"invalid SAML response: {exc}") from None
        errors = auth.get_errors()
        if errors or not auth.is_authenticated():
            raise SamlRefused(f"invalid SAML response: {auth.get_last_error_reason() or ', '.join(errors)}")
        assertion_id = str(auth.get_last_assertion_id())
        now = time.time()
        self.seen = {k: v for k, v in self.seen.items() if v > now}
        if assertion_id in self.seen:
            raise SamlRefused(f"replayed assertion {assertion_id}")
        self.seen[assertion_id] = float(auth.get_last_assertion_not_on_or_after() or now + REQUEST_TTL_S)
        name_id = str(auth.get_nameid())
        mapped = self.users.get(name_id)
        if mapped is None:
            raise SamlRefused(f"NameID {name_id!r} is not in the SAML users file", subject=name_id)
        attrs = auth.get_attributes() or {}
        return SamlSignIn(mapped[0], mapped[1], name_id, _attr(attrs, self.groups_attribute),
                          _attr(attrs, self.roles_attribute))


def _attr(attrs: dict[str, Any], name: str) -> tuple[str, ...]:
    """An attribute's values (bounded, printable strings only), from the validated assertion."""
    values = attrs.get(name) or []
    return tuple(sorted({str(v) for v in values[:MAX_ATTR_VALUES]
                         if isinstance(v, str) and 0 < len(v) <= 256 and v.isprintable()}))


class SamlRefused(MusubiError):
    """A SAML response that does not sign anyone in."""

    code = "saml_refused"
    http_status = 403


def parse_users(text: str, source: str = "users") -> dict[str, tuple[str, str]]:
    """``musubi:user=NAME,tenant=TENANT NAMEID`` lines: NameID -> (user, tenant)."""
    out: dict[str, tuple[str, str]] = {}
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head, _, name_id = line.partition(" ")
        name_id = name_id.strip()
        opts = dict(p.partition("=")[::2] for p in head.removeprefix("musubi:").split(","))
        if not head.startswith("musubi:") or set(opts) != {"user", "tenant"} or not name_id:
            raise KeysFileError(f"{source}, line {no}: give musubi:user=NAME,tenant=TENANT NAMEID.")
        try:
            names.user_name(opts["user"])
            names.tenant_name(opts["tenant"])
        except MusubiError as exc:
            raise KeysFileError(f"{source}, line {no}: {exc.message}") from None
        if name_id in out:
            raise KeysFileError(f"{source}, line {no}: NameID {name_id!r} is listed twice.")
        out[name_id] = (opts["user"], opts["tenant"])
    return out


class SamlRoutes:
    """The SP's three routes on the web server."""

    def __init__(self, sp: SamlSP, server: WebServer) -> None:
        self.sp, self.srv = sp, server

    async def login(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": self.sp.begin(), "Cache-Control": "no-store"})

    async def acs(self, request: web.Request) -> web.StreamResponse:
        addr, client = str(request.remote), self.srv.client(request)
        blocked = await self.srv.refuse_if_blocked(request)
        if blocked is not None:
            return blocked
        form = await request.post()
        value = form.get("SAMLResponse")
        try:
            if not isinstance(value, str):
                raise SamlRefused("no SAMLResponse in the form")
            got = self.sp.sign_in(value)
        except SamlRefused as exc:
            self.srv.limiter.failed(addr)
            await self.srv.link.event("refused", client=client, reason=f"SAML: {exc.message}"[:1000])
            return await self.srv.login_page(request, f"SAML sign-in refused: {exc.message}", 403)
        return await self.srv.signed_in(request, got.user, got.tenant, "saml", got.subject,
                                        auth=f"saml:{self.sp.name}", groups=got.groups, roles=got.roles)

    async def metadata(self, request: web.Request) -> web.StreamResponse:
        settings = OneLogin_Saml2_Settings(copy.deepcopy(self.sp.settings), sp_validation_only=True)
        xml = settings.get_sp_metadata()
        text = xml.decode() if isinstance(xml, bytes) else str(xml)
        return web.Response(text=text, content_type="application/samlmetadata+xml")
