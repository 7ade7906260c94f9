"""Typed errors of the connector HTTP layer.

Every failure a connector call can end in is one of these.  Each carries the connector's
name, the HTTP status (when there was a response), the vendor's request id (for support
tickets) and a message that has already been through the connector's :class:`Redactor`,
so neither ``str(err)`` nor ``repr(err)`` can contain a key.  They are
:class:`core.errors.MusubiError` subclasses, so the engine answers them like any other
typed error (HTTP 502 for the vendor's failure, CLI exit 1).
"""

from __future__ import annotations

from typing import Any, Literal

from core.errors import MusubiError

ErrorKind = Literal["auth", "not_found", "rate_limited", "validation", "upstream", "connection", "timeout"]


class HttpError(MusubiError):
    """A connector call that failed; ``kind`` says how (and which subclass this is).

    A subclass names its kind in its class line (``class AuthError(HttpError, kind="auth")``);
    its ``code`` is then ``connector_<kind>``.
    """

    kind: ErrorKind = "upstream"
    code = "connector_error"
    http_status = 502

    def __init_subclass__(cls, kind: ErrorKind | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if kind is not None:
            cls.kind = kind
            cls.code = f"connector_{kind}"

    def __init__(
        self, message: str, *, connector: str, status: int | None = None, request_id: str | None = None,
        retry_after_s: float | None = None, vendor_text: str | None = None, vendor_code: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message, connector=connector, status=status, request_id=request_id, **extra)
        self.connector = connector
        self.status = status
        self.request_id = request_id
        self.retry_after_s = retry_after_s
        self.vendor_text = vendor_text  # the vendor's own error text, redacted
        self.vendor_code = vendor_code  # the vendor's machine code (OpenAI error.code, Anthropic error.type)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(connector={self.connector!r}, status={self.status!r}, "
            f"request_id={self.request_id!r}, message={self.message!r})"
        )


class AuthError(HttpError, kind="auth"):
    """401/403 (and vendor quirks such as Azure DevOps' 203 sign-in page): the credentials are wrong."""


class NotFoundError(HttpError, kind="not_found"):
    """404/410: the object or the endpoint does not exist (any more)."""


class RateLimitedError(HttpError, kind="rate_limited"):
    """429 (or a throttle) still in force after the retry budget: ``retry_after_s`` says when to try again."""


class ValidationError(HttpError, kind="validation"):
    """400/409/422 and other 4xx: the vendor refused the request as sent; retrying will not help."""


class UpstreamError(HttpError, kind="upstream"):
    """5xx, or an answer that cannot be read: the vendor failed."""


class ConnectionFailed(HttpError, kind="connection"):
    """No answer: DNS, refused connection, dropped connection."""


class RequestTimeout(HttpError, kind="timeout"):
    """The call took longer than its timeout."""


_BY_STATUS: dict[int, type[HttpError]] = {401: AuthError, 403: AuthError, 404: NotFoundError, 410: NotFoundError,
                                          429: RateLimitedError}


def error_for_status(status: int) -> type[HttpError]:
    """The error class for an HTTP status the vendor answered with."""
    return _BY_STATUS.get(status) or (UpstreamError if status >= 500 else ValidationError)
