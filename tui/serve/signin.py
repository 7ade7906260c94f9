"""Browser sign-ins of ``musubi serve web``: the access token, and the cookie a sign-in earns.

A sign-in (by the token, or by SAML: ``saml.py``) records who the browser is (a musubi user and
tenant established by the server, never by the browser) under a random cookie value; only its
SHA-256 is kept.  The cookie is ``HttpOnly``, ``SameSite=Strict``, ``Secure`` over TLS.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from tui.serve.keys import KeysFileError

COOKIE = "musubi_web"
MIN_TOKEN = 32  # characters of an access token read from a file


@dataclass(frozen=True)
class SignIn:
    """Who a signed-in browser is."""

    user: str
    tenant: str
    via: str  # "token" or "saml"
    expires: float  # time.monotonic()
    subject: str = ""  # the SAML NameID / OIDC subject, for the audit
    auth: str = "web-token"  # how: web-token, saml:IDP, oidc:PROVIDER (the engine's "SSO required" reads it)
    groups: tuple[str, ...] = ()  # SAML/OIDC group and role values, for the engine's SSO mapping rules
    roles: tuple[str, ...] = ()


def _h(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class SignIns:
    """Live sign-ins by cookie."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._by_hash: dict[str, SignIn] = {}

    def add(self, user: str, tenant: str, via: str, subject: str = "", auth: str = "web-token",
            groups: tuple[str, ...] = (), roles: tuple[str, ...] = ()) -> str:
        """A new sign-in; returns the cookie value (given to the browser, not kept)."""
        now = time.monotonic()
        self._by_hash = {k: v for k, v in self._by_hash.items() if v.expires > now}
        value = secrets.token_urlsafe(32)
        self._by_hash[_h(value)] = SignIn(user, tenant, via, now + self.ttl_s, subject, auth, groups, roles)
        return value

    def get(self, value: str | None) -> SignIn | None:
        """The live sign-in of a cookie value, or None."""
        if not value:
            return None
        s = self._by_hash.get(_h(value))
        if s is None or s.expires <= time.monotonic():
            return None
        return s

    def remove(self, value: str | None) -> SignIn | None:
        """Sign out (the sign-in it was, if any)."""
        return self._by_hash.pop(_h(value), None) if value else None


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of an access token."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def new_token() -> str:
    """A fresh access token (printed once at start)."""
    return secrets.token_urlsafe(32)


def read_token_file(path: Path) -> str:
    """An access token kept in ``path``: its owner's alone (0600) and long enough."""
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise KeysFileError(f"cannot read the token file {path}: {exc.strerror}.") from None
    if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077 or st.st_uid not in (os.getuid(), 0):
        raise KeysFileError(f"the token file {path} may be read by other users; fix with: chmod 600 {path}")
    if len(text) < MIN_TOKEN or any(c.isspace() for c in text):
        raise KeysFileError(f"the token in {path} is shorter than {MIN_TOKEN} characters or has spaces; put one "
                            "long random word there (e.g. python -c 'import secrets; print(secrets.token_urlsafe())').")
    return text
