"""Scrubbing training text: secrets and e-mail addresses never reach a provider's training set.

Builds on :func:`core.identity.redact.redact` (JWTs, bearer credentials, ``*_token=`` values)
and adds the key shapes the connector layer masks (OpenAI/Anthropic ``sk-``, GitHub, GitLab,
Slack), AWS access key ids, Google API keys, PEM private-key blocks, ``password=``/``api_key=``
style assignments and e-mail addresses.  Each replacement is a fixed marker naming its kind,
so a trained model learns that something was there, never what.
"""

from __future__ import annotations

import re
from collections import Counter

from core.identity.redact import REDACTED, redact

EMAIL = "[email]"
SECRET = "[secret]"
PRIVATE_KEY = "[private key]"

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
_KEYS = re.compile(
    r"(?:sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{8,}|xox[abposr]-[A-Za-z0-9\-]{8,}|glpat-[A-Za-z0-9_\-]{8,}"
    r"|gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,}|(?:AKIA|ASIA)[0-9A-Z]{16}|AIza[0-9A-Za-z_\-]{35})"
)
_ASSIGN = re.compile(
    r"(?i)\b((?:api[_-]?key|apikey|secret|password|passwd|pwd|client_secret|access[_-]?key|auth[_-]?token)"
    r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',;]{4,})"
)
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")


def scrub(text: str) -> tuple[str, Counter[str]]:
    """``text`` without secrets and e-mail addresses, and how many of each kind were replaced."""
    found: Counter[str] = Counter()

    def sub(pattern: re.Pattern[str], repl: str, kind: str, s: str) -> str:
        out, n = pattern.subn(repl, s)
        if n:
            found[kind] += n
        return out

    text = sub(_PEM, PRIVATE_KEY, "private_key", text)
    text = sub(_KEYS, SECRET, "api_key", text)
    out, n = _ASSIGN.subn(lambda m: m.group(1) + SECRET, text)
    if n:
        found["assignment"] += n
    text = out
    before = text.count(REDACTED)
    text = redact(text)
    if text.count(REDACTED) > before:
        found["token"] += text.count(REDACTED) - before
    text = sub(_EMAIL, EMAIL, "email", text)
    return text, found
