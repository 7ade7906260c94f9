"""The one retry policy of the connector HTTP layer, and the server-delay headers it honours.

Mechanics come from **tenacity** (pinned exactly in pyproject.toml): it is the long-kept,
widely used retry library for asyncio code, and unlike stamina it lets the *wait* be
computed from the failure itself (a server's Retry-After) and the *stop* from the
upcoming sleep (our cap on total wait), which is all this module adds on top of it.

Policy, in short (docs/providers.md "Retries" has the long form):

* retried: 429, 408, 5xx (incl. Anthropic's 529), connection errors and timeouts;
* a request that is not idempotent (POST/PATCH not marked ``idempotent=True``) is retried
  only when the vendor cannot have acted on it: a 429, a 503 that names a Retry-After, or a
  connection that was never established;
* the wait is the server's delay when it gives one (``retry-after-ms``, ``Retry-After`` in
  seconds or as an HTTP-date, then the vendor hooks: Jira's ISO ``X-RateLimit-Reset``,
  GitLab's and GitHub's epoch resets), else capped exponential backoff with full jitter
  (uniform between 0 and ``min(max_delay_s, base_s * 2**n)``);
* a server delay above ``max_delay_s``, a wait that would push the total past
  ``max_total_wait_s``, or ``max_attempts`` reached ends the retries and raises the last
  typed error (a :class:`RateLimitedError` keeps the server's ``retry_after_s``).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connectors.http.errors import ConnectionFailed, HttpError, RequestTimeout, UpstreamError

DelayHook = Callable[[Mapping[str, str], float], "float | None"]
"""``hook(headers, now_epoch) -> seconds to wait`` (None: this hook finds no delay)."""

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts (tests, hooks) are not case-insensitive like CIMultiDict
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value.strip() if isinstance(value, str) and value.strip() else None


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """``retry-after-ms`` (OpenAI), else ``Retry-After`` in seconds or as an HTTP-date."""
    ms = _get(headers, "retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = _get(headers, "retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def _reset_hook(header: str, parse: Callable[[str], float]) -> DelayHook:
    def hook(headers: Mapping[str, str], now: float) -> float | None:
        value = _get(headers, header)
        if value is None:
            return None
        try:
            return max(0.0, parse(value) - now)
        except ValueError:
            return None

    return hook


def _iso_epoch(value: str) -> float:
    when = datetime.fromisoformat(value)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def iso_reset(header: str) -> DelayHook:
    """A hook reading an ISO-8601 reset time (Jira's ``X-RateLimit-Reset: 2026-01-01T00:00Z``)."""
    return _reset_hook(header, _iso_epoch)


def epoch_reset(header: str) -> DelayHook:
    """A hook reading a Unix-epoch reset time (GitLab's ``RateLimit-Reset``, GitHub's ``x-ratelimit-reset``)."""
    return _reset_hook(header, float)


jira_rate_limit_reset = iso_reset("X-RateLimit-Reset")
gitlab_rate_limit_reset = epoch_reset("RateLimit-Reset")
github_rate_limit_reset = epoch_reset("x-ratelimit-reset")


@dataclass(frozen=True)
class RetryPolicy:
    """How one connector retries; the defaults follow the connector notes (§7.1)."""

    max_attempts: int = 5
    base_s: float = 0.5
    max_delay_s: float = 60.0  # one wait; a server asking for longer is not waited for
    max_total_wait_s: float = 120.0  # all waits of one call together
    retry_statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504, 529})
    reset_hooks: tuple[DelayHook, ...] = ()  # vendor headers tried after Retry-After
    pace_on_success: bool = False  # Azure DevOps: a Retry-After on a 200 slows the *next* call
    # A vendor's "this will not pass by waiting" (OpenAI's 429 insufficient_quota): never retried.
    give_up: Callable[[HttpError], bool] | None = field(default=None, compare=False)
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def server_delay(self, headers: Mapping[str, str]) -> float | None:
        """The wait the server asks for, from the first header that gives one."""
        now = self.clock()
        for hook in (retry_after, *self.reset_hooks):
            delay = hook(headers, now)
            if delay is not None:
                return delay
        return None

    def backoff(self, retries_done: int) -> float:
        """Capped exponential backoff with full jitter."""
        return random.uniform(0.0, min(self.max_delay_s, self.base_s * (2.0 ** retries_done)))

    def should_retry(self, err: BaseException, *, idempotent: bool) -> bool:
        """Whether ``err`` may be retried, given whether the request is idempotent."""
        if not isinstance(err, HttpError) or (self.give_up is not None and self.give_up(err)):
            return False
        if isinstance(err, ConnectionFailed):
            return idempotent or bool(err.extra.get("not_sent"))
        if isinstance(err, RequestTimeout):
            return idempotent
        if err.status is None or err.status not in self.retry_statuses:
            return False
        if idempotent or err.status == 429:
            return True
        return err.status == 503 and err.retry_after_s is not None

    def wait_for(self, err: BaseException | None, retries_done: int) -> float:
        """The wait before the next attempt."""
        if isinstance(err, HttpError) and err.retry_after_s is not None:
            return err.retry_after_s
        return self.backoff(retries_done)


def is_retryable_upstream(err: BaseException) -> bool:
    """True for the typed errors a policy may retry (used by callers that log outcomes)."""
    return isinstance(err, (ConnectionFailed, RequestTimeout, UpstreamError)) or (
        isinstance(err, HttpError) and err.status == 429
    )
