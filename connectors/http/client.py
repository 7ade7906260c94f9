"""One pooled, timed, retried, redacting HTTP client per connector.

Every connector (LLM providers, Jira, Azure DevOps, GitLab, GitHub, Slack, Teams) talks
HTTP through an :class:`HttpClient`: it owns one ``aiohttp.ClientSession`` (created on the
first call, in the running loop; closed by :meth:`HttpClient.aclose`), puts a timeout on
every call, retries by the connector's :class:`~connectors.http.retry.RetryPolicy`, turns
every failure into a typed :mod:`~connectors.http.errors` error carrying the status and the
vendor's request id, and masks secrets in everything it logs or raises.

Two ways to call:

* :meth:`HttpClient.request` reads the whole body (JSON APIs) and returns :class:`HttpResponse`;
* :meth:`HttpClient.stream` (``async with``) hands over the response as soon as a 2xx's
  headers arrive, for SSE/NDJSON bodies.  Retries happen only before that point; leaving the
  block early (an exception, a cancelled task) closes the connection, so the vendor sees the
  disconnect and stops generating.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from connectors.http.errors import (
    ConnectionFailed,
    HttpError,
    RateLimitedError,
    RequestTimeout,
    UpstreamError,
    error_for_status,
)
from connectors.http.redact import Redactor
from connectors.http.retry import IDEMPOTENT_METHODS, RetryPolicy

log = logging.getLogger("musubi.connectors.http")

REQUEST_ID_HEADERS: tuple[str, ...] = (
    "x-request-id", "request-id", "x-ms-request-id", "apim-request-id", "x-arequestid",
    "x-github-request-id", "activityid", "x-vss-e2eid", "x-slack-req-id",
)
"""Where vendors put the id their support asks for (first present wins)."""

_VENDOR_TEXT_MAX = 500


def vendor_error_text(body: bytes) -> str:
    """The vendor's own error text from an error body: JSON ``error.message`` and kin, else the text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = jsonlib.loads(text) if text[:1] in "{[" else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"][:_VENDOR_TEXT_MAX]
        if isinstance(err, str):  # Slack ok:false, Ollama
            return err[:_VENDOR_TEXT_MAX]
        if isinstance(data.get("message"), str):  # GitLab, GitHub, Azure DevOps WrappedException
            return data["message"][:_VENDOR_TEXT_MAX]
        msgs = data.get("errorMessages")  # Jira ErrorCollection
        if isinstance(msgs, list) and msgs:
            return "; ".join(str(m) for m in msgs)[:_VENDOR_TEXT_MAX]
        if isinstance(data.get("errors"), dict) and data["errors"]:
            return "; ".join(f"{k}: {v}" for k, v in data["errors"].items())[:_VENDOR_TEXT_MAX]
    if text.lower().startswith(("<!doctype", "<html")):
        return "an HTML page instead of an API answer"
    return " ".join(text.split())[:_VENDOR_TEXT_MAX]


def vendor_error_code(body: bytes) -> str | None:
    """The vendor's machine-readable error code (``error.code``, else ``error.type``), if the body has one."""
    try:
        data = jsonlib.loads(body)
    except ValueError:
        return None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        code = err.get("code") or err.get("type")
        return str(code) if code is not None else None
    return None


@dataclass(frozen=True)
class HttpResponse:
    """A whole answer: status, headers, body.  ``url`` is already redacted."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes = field(repr=False)
    url: str
    request_id: str | None
    connector: str

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; an unreadable body is an :class:`UpstreamError`."""
        try:
            return jsonlib.loads(self.body)
        except ValueError as exc:
            raise UpstreamError(
                f"{self.connector}: {self.url} answered {self.status} with a body that is not JSON ({exc})",
                connector=self.connector, status=self.status, request_id=self.request_id,
            ) from None


Check = Callable[[HttpResponse], None]
"""A vendor quirk hook: looks at a whole 2xx answer and raises a typed error if it is really a
failure (Azure DevOps' 203 sign-in page, Slack's ``ok: false``)."""


class HttpClient:
    """The HTTP client of one connector.  Not shared between event loops."""

    def __init__(
        self, name: str, base_url: str | None = None, *, headers: Mapping[str, str] | None = None,
        secrets: Iterable[str | None] = (), timeout_s: float = 30.0, connect_timeout_s: float = 10.0,
        policy: RetryPolicy | None = None, check: Check | None = None, pool_size: int = 20,
        request_id_headers: tuple[str, ...] = REQUEST_ID_HEADERS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.policy = policy or RetryPolicy()
        self.redactor = Redactor(secrets)
        for key, value in (headers or {}).items():
            if key.lower() in ("authorization", "api-key", "x-api-key", "private-token"):
                self.redactor.add(value.split(" ", 1)[-1])  # "Bearer <token>": the token alone too
        self._headers = CIMultiDict(headers or {})
        self._check = check
        self._pool_size = pool_size
        self._request_id_headers = request_id_headers
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        self._not_before = 0.0  # monotonic: a Retry-After on a success slows the next call
        self.requests_sent = 0  # attempts, retries included (tests, metrics)

    def __repr__(self) -> str:
        base = self.redactor.url(self.base_url) if self.base_url else None
        return f"HttpClient(name={self.name!r}, base_url={base!r})"

    # -- session ----------------------------------------------------------------------------

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers)
        return self._session

    async def aclose(self) -> None:
        """Close the pooled session (idempotent)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    # -- calls ------------------------------------------------------------------------------

    def url_for(self, path_or_url: str) -> str:
        """An absolute URL: ``path_or_url`` as is, or joined to the base URL."""
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        if self.base_url is None:
            raise ValueError(f"{self.name}: a relative path {path_or_url!r} needs a base_url")
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    async def request(
        self, method: str, url: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
        data: Any = None, headers: Mapping[str, str] | None = None, idempotent: bool | None = None,
        timeout_s: float | None = None,
    ) -> HttpResponse:
        """Send one request (retried by the policy) and read the whole answer.

        ``idempotent`` defaults to the method's nature (GET/PUT/DELETE yes, POST/PATCH no);
        pass True for a POST the vendor de-duplicates (a key, an upsert by id).
        """
        async with self._open(method, url, params, json, data, headers, idempotent, timeout_s) as resp:
            body = await self._read(resp, url)
            answer = self._answer(resp, body)
        if self._check is not None:
            self._check(answer)
        return answer

    @asynccontextmanager
    async def stream(
        self, method: str, url: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
        data: Any = None, headers: Mapping[str, str] | None = None, idempotent: bool | None = None,
        timeout_s: float | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """``async with client.stream(...) as resp``: a 2xx response whose body is read by the caller.

        Retries (by the policy) happen only until a 2xx's headers arrive.  Leaving the block
        before the body ends closes the connection instead of returning it to the pool.
        """
        async with self._open(method, url, params, json, data, headers, idempotent, timeout_s) as resp:
            yield resp

    # -- internals --------------------------------------------------------------------------

    @asynccontextmanager
    async def _open(
        self, method: str, url: str, params: Mapping[str, Any] | None, json: Any, data: Any,
        headers: Mapping[str, str] | None, idempotent: bool | None, timeout_s: float | None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        method = method.upper()
        full = self.url_for(url)
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        timeout = aiohttp.ClientTimeout(total=timeout_s or self.timeout_s, connect=self.connect_timeout_s)
        kwargs: dict[str, Any] = {"params": params, "json": json, "data": data, "headers": headers, "timeout": timeout}
        policy = self.policy

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= policy.max_attempts or state.upcoming_sleep > policy.max_delay_s:
                return True
            return state.idle_for + state.upcoming_sleep > policy.max_total_wait_s

        def wait(state: RetryCallState) -> float:
            err = state.outcome.exception() if state.outcome else None
            return policy.wait_for(err, state.attempt_number - 1)

        retrying = AsyncRetrying(
            stop=stop, wait=wait, reraise=True, sleep=self._sleep, before_sleep=self._log_retry,
            retry=retry_if_exception(lambda e: policy.should_retry(e, idempotent=bool(idempotent))),
        )
        resp: aiohttp.ClientResponse | None = None
        async for attempt in retrying:
            with attempt:
                resp = await self._attempt(method, full, kwargs)
        assert resp is not None
        done = False
        try:
            yield resp
            done = True
        finally:
            if done and resp.content.at_eof():
                resp.release()
            else:
                resp.close()  # mid-body exit or cancellation: drop the connection, the vendor sees it

    async def _attempt(self, method: str, url: str, kwargs: dict[str, Any]) -> aiohttp.ClientResponse:
        wait = self._not_before - time.monotonic()
        if wait > 0:
            await self._sleep(wait)
        shown = self.redactor.url(url)
        self.requests_sent += 1
        try:
            resp = await self._session_now().request(method, url, **kwargs)
        except aiohttp.ConnectionTimeoutError:
            raise ConnectionFailed(f"{self.name}: {method} {shown}: connection timed out", connector=self.name,
                                   not_sent=True) from None
        except TimeoutError:
            raise RequestTimeout(f"{self.name}: {method} {shown}: no answer within the timeout",
                                 connector=self.name) from None
        except aiohttp.ClientConnectorError as exc:
            raise ConnectionFailed(f"{self.name}: {method} {shown}: cannot connect ({self.redactor.text(exc)})",
                                   connector=self.name, not_sent=True) from None
        except aiohttp.ClientError as exc:
            raise ConnectionFailed(f"{self.name}: {method} {shown}: connection failed ({self.redactor.text(exc)})",
                                   connector=self.name) from None
        request_id = self._request_id(resp.headers)
        log.debug("%s: %s %s -> %s (request id %s)", self.name, method, shown, resp.status, request_id)
        if resp.status < 300:
            if self.policy.pace_on_success:
                delay = self.policy.server_delay(resp.headers)
                if delay:
                    self._not_before = time.monotonic() + min(delay, self.policy.max_delay_s)
            return resp
        try:
            body = await self._read(resp, url)
        finally:
            resp.release()
        raise self._error(method, shown, resp.status, resp.headers, body)

    async def _read(self, resp: aiohttp.ClientResponse, url: str) -> bytes:
        try:
            return await resp.read()
        except TimeoutError:
            raise RequestTimeout(f"{self.name}: {self.redactor.url(url)}: the answer did not finish within the timeout",
                                 connector=self.name, status=resp.status) from None
        except aiohttp.ClientError as exc:
            raise ConnectionFailed(f"{self.name}: {self.redactor.url(url)}: connection lost while reading "
                                   f"({self.redactor.text(exc)})", connector=self.name, status=resp.status) from None

    def _answer(self, resp: aiohttp.ClientResponse, body: bytes) -> HttpResponse:
        shown = self.redactor.url(resp.url)
        return HttpResponse(resp.status, resp.headers, body, shown, self._request_id(resp.headers), self.name)

    def request_id_of(self, headers: Mapping[str, str]) -> str | None:
        """The vendor's request id in ``headers`` (the first of this client's request-id headers present)."""
        return self._request_id(headers)

    def _request_id(self, headers: Mapping[str, str]) -> str | None:
        for name in self._request_id_headers:
            value = headers.get(name)
            if value:
                return value
        return None

    def _error(self, method: str, shown: str, status: int, headers: Mapping[str, str], body: bytes) -> HttpError:
        vendor = self.redactor.text(vendor_error_text(body))
        request_id = self._request_id(headers)
        cls = error_for_status(status)
        delay = self.policy.server_delay(headers) if status in self.policy.retry_statuses else None
        message = f"{self.name}: {method} {shown} answered {status}: {vendor or '(no error text)'}"
        if request_id:
            message += f" (request id {request_id})"
        return cls(message, connector=self.name, status=status, request_id=request_id, retry_after_s=delay,
                   vendor_text=vendor, vendor_code=vendor_error_code(body))

    def _log_retry(self, state: RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome else None
        log.info("%s: attempt %d failed (%s); retrying in %.2fs", self.name, state.attempt_number,
                 err if isinstance(err, HttpError) else type(err).__name__, state.upcoming_sleep)


__all__ = [
    "HttpClient", "HttpResponse", "RateLimitedError", "vendor_error_code", "vendor_error_text", "REQUEST_ID_HEADERS",
]
