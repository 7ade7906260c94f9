"""Tokens never reach a message or a log line (core/identity/redact.py)."""

from __future__ import annotations

import io
import logging

import pytest

from core.identity.redact import REDACTED, RedactingFilter, install, redact

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"


@pytest.mark.parametrize("text", [
    f"token {JWT} refused",
    "Authorization: Bearer at-abcdefgh12345",
    "grant_type=refresh_token&refresh_token=rt-0123456789abcdef&client_id=x",
    '{"id_token": "abc.def.ghijklmnop", "access_token": "at-Zz0123456789"}',
    "device_code=dc-QWERTYUIOP123",
    "X-Musubi-Session session=Qm9vLWJhLWJhLWJvb29vb29vb28",
])
def test_tokens_are_replaced(text: str) -> None:
    out = redact(text)
    assert REDACTED in out
    for secret in (JWT, "at-abcdefgh12345", "rt-0123456789abcdef", "at-Zz0123456789", "dc-QWERTYUIOP123",
                   "Qm9vLWJhLWJhLWJvb29vb29vb28"):
        assert secret not in out


def test_plain_text_is_left_alone() -> None:
    text = "unknown provider 'corp'; configured: a, b (client_id musubi-cli)"
    assert redact(text) == text


def test_the_filter_redacts_messages_args_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("musubi.test.redact")
    log.addHandler(handler)
    log.propagate = False
    handler.addFilter(RedactingFilter())
    try:
        log.warning("refusing %s for %s", JWT, "alice")
        try:
            raise ValueError(f"bad token {JWT}")
        except ValueError:
            log.exception("sign-in failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert JWT not in text and text.count(REDACTED) == 2 and "alice" in text


def test_install_puts_one_filter_on_each_handler() -> None:
    handler = logging.StreamHandler(io.StringIO())
    logging.getLogger("musubi").addHandler(handler)
    try:
        install("musubi")
        install("musubi")
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    finally:
        logging.getLogger("musubi").removeHandler(handler)
