"""Typed errors that carry a user-facing message, an HTTP status and a CLI exit code.

Every failure a user can reach is one of these; the engine turns them into
``{"error": {"code", "message", ...}}`` bodies and the CLI into exit codes:
0 ok, 1 error, 2 usage, 3 quota exceeded, 4 permission denied, 5 verification failed.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_QUOTA = 3
EXIT_DENIED = 4
EXIT_VERIFY = 5


class MusubiError(Exception):
    """Base error: ``code`` is a stable machine name, ``message`` says what is wrong and how to fix it."""

    code = "error"
    http_status = 500
    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra: dict[str, Any] = extra

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.extra)
        return body


class BadRequest(MusubiError):
    """The request is malformed or an argument is invalid (CLI exit 2)."""

    code = "bad_request"
    http_status = 400
    exit_code = EXIT_USAGE


class PayloadTooLarge(BadRequest):
    """The request body is larger than the engine accepts (HTTP 413, CLI exit 2)."""

    code = "body_too_large"
    http_status = 413


class NotFound(MusubiError):
    """A named thing (tenant, role, project, member, reservation) does not exist."""

    code = "not_found"
    http_status = 404
    exit_code = EXIT_ERROR


class Conflict(MusubiError):
    """The request clashes with current state (already exists, last owner, ...)."""

    code = "conflict"
    http_status = 409
    exit_code = EXIT_ERROR


class PermissionDenied(MusubiError):
    """The caller lacks a permission (CLI exit 4)."""

    code = "permission_denied"
    http_status = 403
    exit_code = EXIT_DENIED


class TenantSuspended(PermissionDenied):
    """The tenant is suspended: only admin reads and resume are allowed."""

    code = "tenant_suspended"


class QuotaExceeded(MusubiError):
    """A hard quota limit would be exceeded; nothing was charged (CLI exit 3)."""

    code = "quota_exceeded"
    http_status = 429
    exit_code = EXIT_QUOTA


class VerificationFailed(MusubiError):
    """An integrity check failed (CLI exit 5)."""

    code = "verification_failed"
    http_status = 200
    exit_code = EXIT_VERIFY


class TooManyStreams(MusubiError):
    """A cap on open event streams is reached (docs/api.md#get-v1events); CLI exit 1."""

    code = "too_many_streams"
    http_status = 429
    exit_code = EXIT_ERROR


class EngineUnavailable(MusubiError):
    """The engine could not be reached or started."""

    code = "engine_unavailable"
    http_status = 503
    exit_code = EXIT_ERROR


class StorageError(MusubiError):
    """The database cannot be opened or written (locked, corrupt, newer schema, disk full)."""

    code = "storage_error"
    http_status = 500
    exit_code = EXIT_ERROR


class ProviderNotConfigured(MusubiError):
    """No LLM provider can serve a model (none configured, or it failed to load); the message says
    exactly what to set for that provider (docs/providers.md).  CLI exit 1."""

    code = "provider_not_configured"
    http_status = 409
    exit_code = EXIT_ERROR


_BY_CODE: dict[str, type[MusubiError]] = {}
for _cls in (
    MusubiError,
    BadRequest,
    PayloadTooLarge,
    NotFound,
    Conflict,
    PermissionDenied,
    TenantSuspended,
    QuotaExceeded,
    VerificationFailed,
    EngineUnavailable,
    StorageError,
    TooManyStreams,
    ProviderNotConfigured,
):
    _BY_CODE[_cls.code] = _cls
# Codes that refine a class's own code.  Bodies carry only the code (a 500 or a start-up
# error says nothing more), so without these the client would rebuild a bare MusubiError.
_BY_CODE.update(
    {
        "database_locked": StorageError,
        "schema_too_new": StorageError,
        "database_corrupt": StorageError,
        "write_failed": StorageError,
        "home_path_too_long": EngineUnavailable,
        "settle_over_reservation": QuotaExceeded,
        "not_indexed": MusubiError,  # a 400 that is no usage error: run musubi index first (exit 1)
        "home_not_writable": EngineUnavailable,
        "provider_unavailable": ProviderNotConfigured,
    }
)


def from_dict(body: dict[str, Any], status: int = 500) -> MusubiError:
    """Rebuild a typed error from an engine error body (used by the client)."""
    code = str(body.get("code", "error"))
    message = str(body.get("message", "unknown error"))
    extra = {k: v for k, v in body.items() if k not in ("code", "message")}
    cls = _BY_CODE.get(code)
    if cls is None:
        cls = {400: BadRequest, 403: PermissionDenied, 404: NotFound, 409: Conflict, 429: QuotaExceeded}.get(
            status, MusubiError
        )
    err = cls(message, code=code, **extra)
    return err
