"""Keep tokens out of messages and logs.

A JWT (three base64url parts), a ``Bearer`` credential or a ``*_token=`` form/JSON value is
replaced by ``[REDACTED]``; :class:`RedactingFilter` does it to every record of a logger.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[REDACTED]"
_PATTERNS = (
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),  # a JWS/JWT
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)((?:id|access|refresh)_token|device_code|code_verifier|client_secret|session)"
               r"([\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._~+/=-]{6,}"),
)


def redact(text: str) -> str:
    """``text`` with every token-looking value replaced by ``[REDACTED]``."""
    text = _PATTERNS[0].sub(REDACTED, text)
    text = _PATTERNS[1].sub(lambda m: m.group(1) + REDACTED, text)
    return _PATTERNS[2].sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message (and drops the args it used)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # The traceback's last line repeats the exception's message: format it now, redacted
            # (handlers use a record's exc_text when it is set).
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def install(*logger_names: str) -> None:
    """Redact every record written through the handlers of the root logger and ``logger_names``.

    On the handlers, not the loggers: a logger's own filters never see its children's records.
    Idempotent.
    """
    for name in ("", *logger_names):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
