"""Typed refusals of the sign-in path (each a :class:`core.errors.MusubiError` with its exit code)."""

from __future__ import annotations

from core.errors import MusubiError, PermissionDenied


class TokenRefused(PermissionDenied):
    """An ID token failed validation (signature, issuer, audience, time, nonce); CLI exit 4."""

    code = "sso_token_refused"


class IdpError(MusubiError):
    """The identity provider could not be reached or answered something unusable; CLI exit 1."""

    code = "idp_error"
    http_status = 502


class SignInFailed(MusubiError):
    """The device or browser flow ended without tokens (expired, declined, IdP error); CLI exit 1."""

    code = "sign_in_failed"
