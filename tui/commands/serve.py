"""``musubi serve ssh|web|sessions``: the workstation for SSH clients and browsers (docs/remote.md).

The servers run in the foreground until Ctrl+C or SIGTERM, as the engine's own OS user
(the only one the engine mints session tokens for).  asyncssh, aiohttp and textual-serve
are imported inside the commands, never when the CLI starts.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from core.errors import BadRequest
from tui.output import CliState, emit, example, group, line, pass_state, table

cli_group = group(
    "serve",
    "Serve the workstation to SSH clients (keys mapped to users) or browsers (token or SAML sign-in).",
    "musubi serve ssh --authorized-keys ~/.config/musubi/ssh_keys",
    "musubi serve web --user mia --tenant acme",
    "musubi serve sessions",
)


def _run(main: Any) -> None:
    """Run the coroutine ``main(stop)`` until SIGINT/SIGTERM sets ``stop``."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


def _started(state: CliState, info: dict[str, Any], human: str) -> None:
    """Say the server is up: one JSON line with --json (flushed: a supervisor may wait for it)."""
    if state.json:
        sys.stdout.write(json.dumps(info) + "\n")
    else:
        line(human)
    sys.stdout.flush()


def _options(*opts: Any) -> Any:
    """Apply several click options as one decorator (the options both servers share)."""

    def apply(f: Any) -> Any:
        for o in reversed(opts):
            f = o(f)
        return f

    return apply


def _listen(port: int) -> Any:
    return _options(
        click.option("--host", default="127.0.0.1", show_default=True,
                     help="Address to listen on (0.0.0.0: every one)."),
        click.option("--port", type=click.IntRange(0, 65535), default=port, show_default=True,
                     help="Port (0: any free)."),
    )


_limits = _options(
    click.option("--max-sessions", type=click.IntRange(1, 1000), default=8, show_default=True,
                 help="Sessions at once, all users together."),
    click.option("--max-per-user", type=click.IntRange(1, 100), default=2, show_default=True,
                 help="Sessions at once of one musubi user."),
    click.option("--idle-timeout", type=click.FloatRange(0.5, 86400), default=900, show_default=True,
                 help="Seconds without input (keys, resizes) before a session is closed."),
)
_auth = _options(
    click.option("--auth-failures", type=click.IntRange(1, 1000), default=5, show_default=True,
                 help="Failed authentications (sign-ins) one address may make per --auth-window before it is "
                      "refused."),
    click.option("--auth-window", type=click.FloatRange(1, 86400), default=60, show_default=True,
                 help="Seconds over which failed authentications are counted."),
    click.option("--session-ttl", type=click.IntRange(60, 86400), default=8 * 3600, show_default=True,
                 help="Longest life of one session's token, in seconds."),
)


@cli_group.command(epilog=example(
    "musubi serve ssh --authorized-keys ~/.config/musubi/ssh_keys",
    "musubi serve ssh --host 0.0.0.0 --port 2222 --idle-timeout 600",
))
@_listen(2222)
@click.option("--authorized-keys", "keys", metavar="FILE", type=click.Path(path_type=Path),
              help="The keys file (docs/remote.md#keys-file). Default: $MUSUBI_HOME/ssh_keys.")
@_limits
@_auth
@pass_state
def ssh(state: CliState, host: str, port: int, keys: Path | None, max_sessions: int, max_per_user: int,
        idle_timeout: float, auth_failures: int, auth_window: float, session_ttl: int) -> None:
    """Serve the workstation over SSH: each connection its own pty and TUI, users known by their key only."""
    from tui.serve.hostkey import fingerprint
    from tui.serve.ssh import SSHOptions, SSHServer

    paths = state.paths()
    keys = keys or paths.home / "ssh_keys"
    if not keys.exists():
        raise BadRequest(f"no keys file at {keys}: create it (one line per key: musubi:user=NAME,tenant=TENANT "
                         "ssh-ed25519 AAAA...; docs/remote.md#keys-file) or give --authorized-keys FILE.")
    opts = SSHOptions(keys=keys, host=host, port=port, max_sessions=max_sessions, max_per_user=max_per_user,
                      idle_timeout=idle_timeout, auth_failures=auth_failures, auth_window=auth_window,
                      ttl_s=session_ttl)
    server = SSHServer(paths, opts)

    async def main(stop: asyncio.Event) -> None:
        await server.start()
        fp = fingerprint(server.host_key)
        info = {"listening": f"{host}:{server.port}", "host_key": fp, "new_host_key": server.new_host_key,
                "keys": len(server.keys.entries), "pid": os.getpid()}
        made = " (new: tell your users to expect it)" if server.new_host_key else ""
        _started(state, info, f"musubi serve ssh: listening on {host}:{server.port}, host key {fp}{made}, "
                              f"{len(server.keys.entries)} key(s). Ctrl+C stops.")
        try:
            await stop.wait()
        finally:
            await server.close()

    _run(main)


@cli_group.command(epilog=example("musubi serve sessions", "musubi serve sessions --json"))
@pass_state
def sessions(state: CliState) -> None:
    """List the live remote sessions (only the OS user running the engine may)."""
    from core.api import calls

    rows = state.client().call(calls.sessions())

    def human(d: list[Any]) -> None:
        cols = ["id", "user", "tenant", "purpose", "client", "created_at", "expires_at"]
        table(cols, [[r[c] for c in cols] for r in d], empty="no remote sessions.")

    emit(state, rows, human)


@cli_group.command(epilog=example(
    "musubi serve web --user mia --tenant acme",
    "musubi serve web --user mia --tenant acme --token-file ~/.config/musubi/web-token",
    "musubi serve web --saml ~/.config/musubi/saml --host 0.0.0.0 --cert site.pem --key site.key",
    "musubi serve web --no-token --oidc corp --oidc-users ~/.config/musubi/oidc-users --public-url https://ws.example",
))
@_listen(8080)
@click.option("--public-url", metavar="URL",
              help="The URL browsers use (behind a proxy); its origin is the only Origin accepted.")
@click.option("--user", metavar="USER", help="The musubi user the access token signs in as.")
@click.option("--token-file", metavar="FILE", type=click.Path(path_type=Path),
              help="Read the access token from FILE (0600) instead of printing a new one.")
@click.option("--no-token", is_flag=True, help="Turn token sign-in off (SAML only).")
@click.option("--saml", "saml_dir", metavar="DIR", type=click.Path(path_type=Path),
              help="Turn SAML sign-in on: DIR holds settings.json and users (docs/remote.md#saml).")
@click.option("--oidc", "oidc", metavar="PROVIDER",
              help="Turn OIDC sign-in on through this [sso] provider of config.toml (docs/remote.md#oidc).")
@click.option("--oidc-users", metavar="FILE", type=click.Path(path_type=Path),
              help="Who each OIDC subject (or email) is here: musubi:user=NAME,tenant=TENANT SUBJECT lines.")
@click.option("--cert", metavar="FILE", type=click.Path(path_type=Path), help="Serve TLS with this certificate.")
@click.option("--key", metavar="FILE", type=click.Path(path_type=Path), help="The certificate's private key.")
@_limits
@_auth
@pass_state
def web(state: CliState, host: str, port: int, public_url: str | None, user: str | None, token_file: Path | None,
        no_token: bool, saml_dir: Path | None, oidc: str | None, oidc_users: Path | None, cert: Path | None,
        key: Path | None, max_sessions: int,
        max_per_user: int, idle_timeout: float, auth_failures: int, auth_window: float, session_ttl: int) -> None:
    """Serve the workstation to browsers (textual-serve) behind a token, SAML or OIDC sign-in and Origin checks."""
    from core import names
    from tui.serve.signin import new_token, read_token_file
    from tui.serve.web import WebOptions, WebServer

    if key and not cert:
        raise BadRequest("--key needs --cert.")
    tenant = state.current_tenant()
    token = None if no_token else read_token_file(token_file) if token_file else new_token()
    if token and not user:
        raise BadRequest("token sign-in needs --user USER (the musubi user the token signs in as), or --no-token.")
    if user:
        names.user_name(user)
    saml = None
    if saml_dir is not None:
        from tui.serve.saml import SamlSP

        saml = SamlSP.load(saml_dir)
    opts = WebOptions(host=host, port=port, public_url=public_url, token=token, user=user, tenant=tenant, cert=cert,
                      key=key, max_sessions=max_sessions, max_per_user=max_per_user, idle_timeout=idle_timeout,
                      auth_failures=auth_failures,
                      auth_window=auth_window, ttl_s=session_ttl, saml=saml, oidc=oidc, oidc_users=oidc_users)
    server = WebServer(state.paths(), opts)

    async def main(stop: asyncio.Event) -> None:
        await server.start()
        info = {"listening": f"{host}:{server.port}", "url": server.public_url, "origin": server.origin,
                "token_sign_in": bool(token), "saml": saml is not None, "oidc": oidc, "tls": bool(cert),
                "pid": os.getpid()}
        shown = token if token and not token_file else None
        if shown:
            info["token"] = shown
        lines = [f"musubi serve web: {server.public_url} (sign in at {server.public_url}/login). Ctrl+C stops."]
        if shown:
            lines.append(f"access token for {user} in {tenant} (shown once, not stored): {shown}")
        if not cert and host not in ("127.0.0.1", "::1", "localhost"):
            lines.append("warning: no TLS on a non-local address: tokens and cookies cross the network in clear "
                         "text; give --cert and --key.")
        _started(state, info, "\n".join(lines))
        try:
            await stop.wait()
        finally:
            await server.close()

    _run(main)


# -- notify (issue 17): inbound Slack interactions and GitLab webhooks --------------------------------


@cli_group.command(epilog=example(
    "musubi serve hooks",
    "musubi serve hooks --host 0.0.0.0 --port 8443 --cert hooks.pem --key hooks.key",
))
@_listen(8787)
@click.option("--cert", metavar="FILE", type=click.Path(path_type=Path), help="Serve TLS with this certificate.")
@click.option("--key", metavar="FILE", type=click.Path(path_type=Path), help="The certificate's private key.")
@pass_state
def hooks(state: CliState, host: str, port: int, cert: Path | None, key: Path | None) -> None:
    """Receive Slack button clicks (/slack/interactions) and GitLab webhooks (/gitlab); the engine verifies them."""
    from tui.serve.hooks import HooksOptions, HooksServer

    if key and not cert:
        raise BadRequest("--key needs --cert.")
    tenant = state.current_tenant()
    server = HooksServer(state.paths(), HooksOptions(host=host, port=port, tenant=tenant, cert=cert, key=key))

    async def main(stop: asyncio.Event) -> None:
        await server.start()
        scheme = "https" if cert else "http"
        base = f"{scheme}://{host}:{server.port}"
        info = {"listening": f"{host}:{server.port}", "slack": f"{base}/slack/interactions/{tenant}",
                "gitlab": f"{base}/gitlab/{tenant}", "teams": f"{base}/api/messages/{tenant}", "tls": bool(cert),
                "tenant": tenant, "pid": os.getpid()}
        lines = [f"musubi serve hooks: Slack {info['slack']}, GitLab {info['gitlab']}, Teams bot {info['teams']}. "
                 "Ctrl+C stops."]
        if not cert and host not in ("127.0.0.1", "::1", "localhost"):
            lines.append("warning: no TLS on a non-local address; give --cert and --key (Slack requires https).")
        _started(state, info, "\n".join(lines))
        try:
            await stop.wait()
        finally:
            await server.close()

    _run(main)
