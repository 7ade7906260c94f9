"""``musubi serve web``: the workstation in a browser through textual-serve, never exposed bare.

textual-serve has no authentication and accepts a websocket from any Origin, so this module
wraps it (subclassing its ``Server`` and ``AppService``) in an aiohttp front that:

- requires a sign-in for every page, asset and websocket: the access token (printed once at
  start, or kept in a 0600 file) or a SAML 2.0 sign-in (``saml.py``); failed token attempts are
  rate limited per address;
- refuses a websocket whose ``Origin`` is not this server's own public origin (a page on another
  site cannot start a session with the browser's cookie), before any process starts;
- caps sessions (all users, and per user), binds to 127.0.0.1 unless told otherwise, serves TLS
  when given a certificate, and sends no-framing and no-referrer headers;
- starts each websocket's TUI process as the signed-in user through an engine-minted session
  token on an inherited pipe, with a clean environment (``spawn.py``), and revokes it when the
  websocket closes.

Every sign-in, refusal and sign-out is audited through the engine (``engine_link.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import os
import signal
import ssl
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server

from core.errors import BadRequest, MusubiError
from core.paths import HomePaths
from tui.serve.engine_link import EngineLink
from tui.serve.guard import FailureLimiter, SessionCaps, idle_sweep
from tui.serve.signin import COOKIE, SignIn, SignIns, token_matches
from tui.serve.spawn import child_env, token_pipe, tui_argv
from tui.serve.tls import server_context

log = logging.getLogger("musubi.serve")
SIGNIN = web.RequestKey("signin", SignIn)
OPEN_PATHS = ("/login", "/logout", "/saml/login", "/saml/acs", "/saml/metadata", "/oidc/login", "/oidc/callback")
HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@dataclass
class WebOptions:
    """How ``musubi serve web`` runs (the CLI's options; docs/remote.md#options-1)."""

    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None  # what browsers use (behind a proxy); the Origin checked
    token: str | None = None  # the access token; None: token sign-in off
    user: str | None = None  # who the token signs in as
    tenant: str | None = None
    cert: Path | None = None
    key: Path | None = None
    max_sessions: int = 8
    max_per_user: int = 2
    idle_timeout: float = 900.0
    ttl_s: int = 8 * 3600
    signin_ttl_s: int = 12 * 3600
    auth_failures: int = 5
    auth_window: float = 60.0
    saml: Any = None  # a tui.serve.saml.SamlSP
    oidc: str | None = None  # --oidc PROVIDER: OIDC sign-in through that [sso] provider (tui/serve/oidc.py)
    oidc_users: Path | None = None  # --oidc-users FILE: subject/email -> musubi user and tenant
    extra_env: dict[str, str] = field(default_factory=dict)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, as browsers send it in ``Origin`` (default ports left out)."""
    u = urlsplit(url)
    default = {"http": 80, "https": 443}.get(u.scheme)
    host = (u.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{u.scheme}://{host}" + ("" if u.port in (None, default) else f":{u.port}")


class _TuiProcess(AppService):
    """textual-serve's app service, starting ``python -m tui.remote`` with the token pipe and a clean env."""

    def __init__(self, argv: list[str], token_fd: int, extra_env: dict[str, str], **kw: Any) -> None:
        super().__init__("musubi", **kw)
        self.argv, self.token_fd, self.extra_env = argv, token_fd, extra_env
        self.last_input = time.monotonic()
        self.end_reason: str | None = None  # set when the server ends the session (idle)

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        return child_env("xterm-256color", "truecolor", {
            **self.extra_env,
            "TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver",
            "TEXTUAL_FPS": "60",
            "TEXTUAL_COLOR_SYSTEM": "truecolor",
            "TERM_PROGRAM": "textual",
            "TERM_PROGRAM_VERSION": version("textual-serve"),
            "COLUMNS": str(width),
            "ROWS": str(height),
        })

    async def _open_app_process(self, width: int = 80, height: int = 24) -> asyncio.subprocess.Process:
        try:
            self._process = process = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=self._build_environment(width, height), cwd="/",
                pass_fds=(self.token_fd,), start_new_session=True,
            )
        finally:
            os.close(self.token_fd)
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    async def kill(self) -> None:
        """Make sure the process is gone (textual-serve only asks it to quit)."""
        p = self._process
        if p is None or p.returncode is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, sig)
            try:
                await asyncio.wait_for(p.wait(), 3)
                return
            except TimeoutError:
                continue


class WebServer(Server):
    """textual-serve's server behind sign-in, Origin checks, caps and TLS."""

    def __init__(self, paths: HomePaths, opts: WebOptions, link: EngineLink | None = None) -> None:
        scheme = "https" if opts.cert else "http"
        public = opts.public_url or f"{scheme}://{opts.host}:{opts.port}"
        super().__init__("musubi", opts.host, opts.port, title="Musubi Workstation", public_url=public.rstrip("/"))
        self.paths, self.opts = paths, opts
        self.origin = origin_of(self.public_url)
        self.secure = urlsplit(self.public_url).scheme == "https"
        self.link = link or EngineLink(paths, "web", opts.ttl_s)
        self.signins = SignIns(opts.signin_ttl_s)
        self.limiter = FailureLimiter(opts.auth_failures, opts.auth_window)
        self.caps = SessionCaps(opts.max_sessions, opts.max_per_user)
        self.live: set[_TuiProcess] = set()
        self._runner: web.AppRunner | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self.port = opts.port
        if opts.token and not (opts.user and opts.tenant):
            raise BadRequest("token sign-in needs the musubi user and tenant it signs in as: give --user and --tenant.")
        if not opts.token and opts.saml is None and opts.oidc is None:
            raise BadRequest("no way to sign in: give an access token (the default), --saml DIR or --oidc PROVIDER.")
        if opts.oidc is not None and opts.oidc_users is None:
            raise BadRequest("--oidc needs --oidc-users FILE: who each signed-in subject is here "
                             "(musubi:user=NAME,tenant=TENANT SUBJECT-OR-EMAIL; docs/remote.md#oidc).")
        self.oidc: Any = None  # a tui.serve.oidc.OidcRP, loaded at start (its provider comes from the engine)
        if opts.public_url is None and opts.host in ("0.0.0.0", "::", ""):
            raise BadRequest(f"listening on every address ({opts.host or 'all'}), the server cannot know the URL "
                             "browsers use, which is the only Origin it accepts: give --public-url "
                             f"{scheme}://HOST:{opts.port}.")

    # -- lifecycle ----------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext | None:
        return server_context(self.opts.cert, self.opts.key)

    async def start(self) -> None:
        """Start the engine if needed, then listen."""
        await self.link.start()
        if self.opts.oidc is not None and self.opts.oidc_users is not None:
            from tui.serve.oidc import OidcRP

            self.oidc = await OidcRP.load(self, self.opts.oidc, self.opts.oidc_users)
        ctx = self.ssl_context()
        self._runner = web.AppRunner(await self._make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.opts.host, self.opts.port, ssl_context=ctx)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
            if self.opts.public_url is None:  # port 0: the real one is known only now
                self.public_url = f"{'https' if ctx else 'http'}://{self.opts.host}:{self.port}"
                self.origin = origin_of(self.public_url)
        self._idle_task = asyncio.create_task(self._idle_sweep())

    async def _idle_sweep(self) -> None:
        """Close sessions with no keys or resizes from the browser for ``idle_timeout`` seconds."""

        async def end(p: _TuiProcess) -> None:
            p.end_reason = "idle"
            await p.remote_close()

        await idle_sweep(self.opts.idle_timeout, lambda: [p for p in self.live if p.end_reason is None], end)

    async def _process_messages(self, websocket: web.WebSocketResponse, app_service: AppService) -> None:
        """textual-serve's message loop, noting the time of each key and resize (for the idle timeout)."""
        if isinstance(app_service, _TuiProcess):
            proc = app_service

            async def noted() -> Any:
                async for message in websocket:
                    if message.type == web.WSMsgType.TEXT and message.data.startswith(('["stdin"', '["resize"')):
                        proc.last_input = time.monotonic()
                    yield message

            await super()._process_messages(_Messages(websocket, noted()), app_service)  # type: ignore[arg-type]
        else:
            await super()._process_messages(websocket, app_service)

    async def close(self) -> None:
        """Stop listening; end every session."""
        if self._idle_task is not None:
            self._idle_task.cancel()
        for p in list(self.live):
            await p.kill()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.link.close()

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(self.templates_path))
        app.add_routes([
            web.get("/", self.handle_index, name="index"),
            web.get("/ws", self.handle_websocket, name="websocket"),
            web.get("/download/{key}", self.handle_download, name="download"),
            web.static("/static", self.statics_path, name="static"),
            web.get("/login", self.login_page),
            web.post("/login", self.login),
            web.get("/logout", self.logout),
        ])
        if self.opts.saml is not None:
            self.opts.saml.install(app, self)
        if self.oidc is not None:
            self.oidc.install(app, self)
        return app

    # -- the guard ----------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path not in OPEN_PATHS:
            s = self.signins.get(request.cookies.get(COOKIE))
            if s is None:
                if request.path == "/":
                    raise web.HTTPFound("/login")
                return web.Response(status=401, text="sign in first: /login\n", headers=HEADERS)
            request[SIGNIN] = s
        resp = await handler(request)
        resp.headers.update(HEADERS)
        return resp

    def client(self, request: web.Request) -> str:
        return f"web {request.remote}"

    def same_origin(self, request: web.Request) -> bool:
        """The request's ``Origin`` is this server's own (a browser always sends it on websockets and POSTs)."""
        return (request.headers.get("Origin") or "").lower() == self.origin.lower()

    # -- sign-in ------------------------------------------------------------------------------

    async def login_page(self, request: web.Request, message: str = "", status: int = 200) -> web.Response:
        saml = '<p><a href="/saml/login">Sign in with your identity provider</a></p>' if self.opts.saml else ""
        if self.oidc is not None:
            saml += '<p><a href="/oidc/login">Sign in with OpenID Connect</a></p>'
        form = ('<form method="post" action="/login"><label>Access token <input name="token" type="password" '
                'autocomplete="off" autofocus></label> <button>Sign in</button></form>') if self.opts.token else ""
        note = f'<p role="alert">{html.escape(message)}</p>' if message else ""
        body = (f"<!doctype html><html><head><meta charset='utf-8'><title>Musubi: sign in</title></head><body>"
                f"<h1>Musubi Workstation</h1>{note}{form}{saml}</body></html>")
        return web.Response(text=body, content_type="text/html", status=status,
                            headers={"Cache-Control": "no-store"})

    async def login(self, request: web.Request) -> web.StreamResponse:
        addr = str(request.remote)
        if not self.opts.token:
            return await self.login_page(request, "token sign-in is off on this server.", 404)
        if request.headers.get("Origin") and not self.same_origin(request):
            await self.link.event("refused", client=self.client(request),
                                  reason=f"token sign-in from foreign Origin {request.headers['Origin'][:100]}")
            return await self.login_page(request, "refused: this form was sent from another site.", 403)
        blocked = await self.refuse_if_blocked(request)
        if blocked is not None:
            return blocked
        form = await request.post()
        given = form.get("token")
        assert self.opts.token is not None
        if not isinstance(given, str) or not token_matches(given.strip(), self.opts.token):
            self.limiter.failed(addr)
            await self.link.event("refused", client=self.client(request), reason="wrong access token")
            return await self.login_page(request, "wrong access token.", 401)
        user, tenant = str(self.opts.user), str(self.opts.tenant)
        return await self.signed_in(request, user, tenant, "token")

    async def refuse_if_blocked(self, request: web.Request) -> web.Response | None:
        """The refusal (audited) for an address that used up its failed sign-ins, else None."""
        addr = str(request.remote)
        if not self.limiter.blocked(addr):
            return None
        wait = self.limiter.retry_after(addr)
        if self.limiter.first_in_window(f"blocked {addr}"):
            await self.link.event("refused", client=self.client(request),
                                  reason=f"too many failed sign-ins; blocked for {wait} s")
        return await self.login_page(request, f"too many failed sign-ins; try again in {wait} s.", 429)

    async def signed_in(self, request: web.Request, user: str, tenant: str, via: str, subject: str = "", *,
                        auth: str = "web-token", groups: tuple[str, ...] = (),
                        roles: tuple[str, ...] = ()) -> web.StreamResponse:
        """Record a sign-in (audited) and give the browser its cookie; then the workstation."""
        if not await self.link.event("login", user=user, tenant=tenant, client=self.client(request),
                                     reason=f"sign-in ({via}{': ' + subject if subject else ''})"):
            return await self.login_page(request, "your sign-in could not be recorded, so it is refused.", 503)
        value = self.signins.add(user, tenant, via, subject, auth, groups, roles)
        if via in ("saml", "oidc"):
            # The identity provider's cross-site POST got here: a redirect would keep that navigation
            # cross-site and the browser would not send the SameSite=Strict cookie with it, so this page
            # (our own origin) moves on instead.
            resp = web.Response(text="<!doctype html><meta http-equiv='refresh' content='0;url=/'>"
                                "<a href='/'>Continue</a>", content_type="text/html",
                                headers={"Cache-Control": "no-store"})
        else:
            resp = web.Response(status=302, headers={"Location": "/", "Cache-Control": "no-store"})
        resp.set_cookie(COOKIE, value, httponly=True, samesite="Strict", secure=self.secure, path="/",
                        max_age=int(self.opts.signin_ttl_s))
        return resp

    async def logout(self, request: web.Request) -> web.StreamResponse:
        s = self.signins.remove(request.cookies.get(COOKIE))
        if s is not None:
            await self.link.event("logout", user=s.user, tenant=s.tenant, client=self.client(request),
                                  reason="sign-out")
        resp = await self.login_page(request, "signed out.")
        resp.del_cookie(COOKIE, path="/")
        return resp

    # -- the workstation ----------------------------------------------------------------------

    async def on_startup(self, app: web.Application) -> None:
        """No banner: the CLI says what matters (and never the token twice)."""

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """A TUI for a signed-in user, from this server's own pages only."""
        s: SignIn = request[SIGNIN]
        client = self.client(request)
        if not self.same_origin(request):
            origin = (request.headers.get("Origin") or "none")[:100]
            if self.limiter.first_in_window(f"origin {request.remote} {origin}"):
                await self.link.event("refused", user=s.user, tenant=s.tenant, client=client,
                                      reason=f"websocket from foreign Origin {origin}")
            raise web.HTTPForbidden(text=f"refused: a session may be opened only from {self.origin}\n")
        why = self.caps.refuse(s.user)
        if why:
            await self.link.event("refused", user=s.user, tenant=s.tenant, client=client, reason=f"session cap: {why}")
            raise web.HTTPTooManyRequests(text=why + "\n")
        try:
            try:
                minted = await self.link.mint(s.user, s.tenant, f"{client} via {s.via}", auth=s.auth,
                                              groups=s.groups, roles=s.roles, subject=s.subject)
            except MusubiError as exc:  # the engine audited its refusal
                raise web.HTTPForbidden(text=f"the engine refused a session: {exc.message}\n") from None
            return await self._serve(request, s, minted["id"], minted["token"], client)
        finally:
            self.caps.closed(s.user)

    async def _serve(self, request: web.Request, s: SignIn, session_id: str, token: str,
                     client: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=15)
        width = _int(request.query.get("width"), 80)
        height = _int(request.query.get("height"), 24)
        await self.link.event("login", user=s.user, tenant=s.tenant, client=client, reason=f"session {session_id}")
        proc = _TuiProcess(tui_argv(self.paths.home, s.tenant, s.user, -1), -1, self.opts.extra_env,
                           write_bytes=ws.send_bytes, write_str=ws.send_str, close=ws.close,
                           download_manager=self.download_manager)
        reason = "disconnect"
        try:
            await ws.prepare(request)
            fd = token_pipe(token)
            proc.argv = tui_argv(self.paths.home, s.tenant, s.user, fd)
            proc.token_fd = fd
            self.live.add(proc)
            await proc.start(width, height)
            try:
                await self._process_messages(ws, proc)
            finally:
                await proc.stop()
        except asyncio.CancelledError:
            reason = "server stopping"
            raise
        except Exception:
            log.exception("web session %s failed", session_id)
            reason = "error"
        finally:
            reason = proc.end_reason or reason
            self.live.discard(proc)
            await proc.kill()
            with contextlib.suppress(Exception):
                await ws.close()
            await self.link.revoke(session_id, reason)
            await self.link.event("logout", user=s.user, tenant=s.tenant, client=client, reason=reason)
        return ws


class _Messages:
    """A websocket whose messages pass through a filter first (iteration only, as textual-serve reads it)."""

    def __init__(self, ws: web.WebSocketResponse, messages: Any) -> None:
        self.ws, self.messages = ws, messages

    def __aiter__(self) -> Any:
        return self.messages

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ws, name)


def _int(text: str | None, default: int) -> int:
    try:
        v = int(text or "")
    except ValueError:
        return default
    return v if 10 <= v <= 1000 else default
