"""Inbound request checks: Slack v0 signatures and GitLab webhook tokens (api-notes §3.7, §4).

Core holds these (not ``connectors``) because the **engine** verifies inbound calls: the
secrets never leave it, and its replay guard (core/integrations/replay.py, in DuckDB) outlives a
restart of ``musubi serve hooks`` and of the engine.
``connectors.slack`` re-exports :class:`SignatureVerifier` for its own endpoint.

Slack: ``X-Slack-Signature`` = ``v0=HMAC-SHA256(signing secret, "v0:" + timestamp + ":" + raw
body)`` on the **raw bytes**, compared in constant time; a timestamp more than 5 minutes away
and a signature already accepted (a replay inside the window) are refused.  GitLab:
``X-Gitlab-Token`` is the plain secret (not an HMAC), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from core.integrations.contracts import IntegrationError

WINDOW_S = 300
REPLAYED = "replayed request (this signature was already accepted)"


class SignatureVerifier:
    """Slack v0 request signatures with a 5-minute window; :meth:`check` adds an in-memory replay cache.

    The engine uses :meth:`verify` and keeps its replay guard in DuckDB (core/integrations/replay.py).
    """

    def __init__(self, signing_secret: str, *, window_s: int = WINDOW_S, clock: Callable[[], float] = time.time,
                 remember: int = 10_000) -> None:
        if not signing_secret:
            raise IntegrationError("slack: no signing secret stored (`musubi integrations set slack --secret "
                                   "signing_secret`).", kind="config", system="slack")
        self._secret = signing_secret.encode()
        self.window_s, self.clock, self.remember = window_s, clock, remember
        self._seen: OrderedDict[str, float] = OrderedDict()

    def same_secret(self, signing_secret: str) -> bool:
        return hmac.compare_digest(self._secret, signing_secret.encode())

    def check(self, raw_body: bytes, headers: Mapping[str, str]) -> str | None:
        """None when the request is authentic and new (this verifier's in-memory replay cache); else why not."""
        why = self.verify(raw_body, headers)
        if why is not None:
            return why
        sig, now = headers["X-Slack-Signature"], self.clock()
        while self._seen and next(iter(self._seen.values())) < now - self.window_s:
            self._seen.popitem(last=False)
        if sig in self._seen:
            return REPLAYED
        self._seen[sig] = float(headers["X-Slack-Request-Timestamp"])
        while len(self._seen) > self.remember:
            self._seen.popitem(last=False)
        return None

    def verify(self, raw_body: bytes, headers: Mapping[str, str]) -> str | None:
        """None when the request is authentic and inside the window, else why not; no replay check here.

        The engine keeps the replay guard itself, durable across restarts (core/integrations/replay.py).
        """
        ts, sig = headers.get("X-Slack-Request-Timestamp"), headers.get("X-Slack-Signature")
        if not ts or not sig:
            return "missing X-Slack-Request-Timestamp or X-Slack-Signature"
        try:
            when = int(ts)
        except ValueError:
            return "X-Slack-Request-Timestamp is not a number"
        now = self.clock()
        if abs(now - when) > self.window_s:
            return "stale timestamp (more than 5 minutes away): a replay, or a wrong clock"
        expected = "v0=" + hmac.new(self._secret, b"v0:" + ts.encode() + b":" + raw_body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), sig.encode()):
            return "signature mismatch"
        return None


def gitlab_token_ok(expected: str, given: str | None) -> bool:
    """``X-Gitlab-Token`` against the stored webhook token, in constant time; no token stored refuses all."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
