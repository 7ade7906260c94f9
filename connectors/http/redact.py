"""Keeping secrets out of every log line, repr and error of the connector HTTP layer.

Three kinds of secret: header values (``Authorization``, ``api-key``, ``PRIVATE-TOKEN``, ...),
query-string values (``?token=``, Teams' ``sig=``, ...) and the configured key values
themselves, which vendors sometimes echo back in an error body (OpenAI's 401 quotes the
first and last characters of the key) — those are replaced wherever they appear, together
with their Basic-auth base64 forms.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "[redacted]"

SENSITIVE_HEADERS = frozenset({
    "authorization", "proxy-authorization", "api-key", "x-api-key", "private-token", "job-token",
    "x-gitlab-token", "cookie", "set-cookie", "ocp-apim-subscription-key", "x-slack-signature",
})
SENSITIVE_PARAMS = frozenset({
    "token", "access_token", "refresh_token", "id_token", "api_key", "api-key", "apikey", "key", "sig",
    "signature", "code", "client_secret", "password", "private_token", "secret",
})
# Token shapes worth masking even when nobody configured them (a pasted key in an error body).
_TOKEN_SHAPES = re.compile(
    r"(?:sk-(?:ant-)?[A-Za-z0-9_\-]{8,}|xox[abposr]-[A-Za-z0-9\-]{8,}|glpat-[A-Za-z0-9_\-]{8,}"
    r"|gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,})"
)
_SLACK_HOOK = re.compile(r"(hooks\.slack\.com/services/)[A-Za-z0-9/]+")
_MIN_SECRET = 4  # shorter "secrets" would mask ordinary words


class Redactor:
    """Masks the configured secrets (plus well-known header, parameter and token shapes)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: list[str] = []
        for value in secrets:
            self.add(value)

    def add(self, secret: str | None) -> None:
        """Also mask ``secret`` (and its base64 forms, as Basic auth sends it)."""
        if not secret or len(secret) < _MIN_SECRET:
            return
        forms = {secret, base64.b64encode(secret.encode()).decode()}
        forms.add(base64.b64encode(f":{secret}".encode()).decode())  # Azure DevOps PAT: empty user
        for form in forms:
            if form not in self._secrets:
                self._secrets.append(form)
        self._secrets.sort(key=len, reverse=True)  # longest first: a key inside a longer form

    def text(self, value: object) -> str:
        """``value`` as text with every secret masked."""
        out = str(value)
        for secret in self._secrets:
            if secret in out:
                out = out.replace(secret, MASK)
        out = _TOKEN_SHAPES.sub(MASK, out)
        return _SLACK_HOOK.sub(r"\1" + MASK, out)

    def headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        """A copy of ``headers`` with sensitive values masked."""
        if not headers:
            return {}
        return {k: (MASK if k.lower() in SENSITIVE_HEADERS else self.text(v)) for k, v in headers.items()}

    def url(self, url: object) -> str:
        """``url`` with sensitive query values (and user:password) masked."""
        raw = str(url)
        try:
            parts = urlsplit(raw)
        except ValueError:
            return self.text(raw)
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, MASK if k.lower() in SENSITIVE_PARAMS else v) for k, v in pairs], safe="[]")
        netloc = parts.netloc
        if "@" in netloc:
            netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
        return self.text(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secret forms)"
