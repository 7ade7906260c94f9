"""The one HTTP layer of every connector (issue 17): pooled sessions, timeouts, one retry
policy, typed errors carrying the vendor's request id, redaction, and a paging helper.

Stable API (other connectors build on it)::

    from connectors.http import HttpClient, RetryPolicy, paginate, Page
    client = HttpClient("jira", base, headers={"Authorization": ...}, secrets=[token],
                        policy=RetryPolicy(reset_hooks=(jira_rate_limit_reset,)))
    answer = await client.request("GET", "/rest/api/3/issue/KEY-1")
    async with client.stream("POST", "/chat/completions", json=body, idempotent=True) as resp: ...
    await client.aclose()
"""

from connectors.http.client import (
    REQUEST_ID_HEADERS,
    Check,
    HttpClient,
    HttpResponse,
    vendor_error_code,
    vendor_error_text,
)
from connectors.http.errors import (
    AuthError,
    ConnectionFailed,
    ErrorKind,
    HttpError,
    NotFoundError,
    RateLimitedError,
    RequestTimeout,
    UpstreamError,
    ValidationError,
    error_for_status,
)
from connectors.http.paging import Page, TooManyItems, paginate
from connectors.http.redact import MASK, Redactor
from connectors.http.retry import (
    DelayHook,
    RetryPolicy,
    epoch_reset,
    github_rate_limit_reset,
    gitlab_rate_limit_reset,
    iso_reset,
    jira_rate_limit_reset,
    retry_after,
)

__all__ = [
    "MASK", "REQUEST_ID_HEADERS", "AuthError", "Check", "ConnectionFailed", "DelayHook", "ErrorKind", "HttpClient",
    "HttpError", "HttpResponse", "NotFoundError", "Page", "RateLimitedError", "Redactor", "RequestTimeout",
    "RetryPolicy", "TooManyItems", "UpstreamError", "ValidationError", "epoch_reset", "error_for_status",
    "github_rate_limit_reset", "gitlab_rate_limit_reset", "iso_reset", "jira_rate_limit_reset", "paginate",
    "retry_after", "vendor_error_code", "vendor_error_text",
]
