"""`musubi integrations map-user|users` and `musubi serve hooks` through the real CLI."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.cli.helpers import MUSUBI, REPO, Cli, base_env, short_home


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    c = Cli(short_home())
    try:
        c.ok("engine", "start")
        yield c
    finally:
        c.stop()
        shutil.rmtree(c.home, ignore_errors=True)


def test_map_user_round_trip_and_refusals(cli: Cli) -> None:
    cli.ok("member", "add", "alice", "--role", "admin")
    mapped = cli.js("integrations", "map-user", "slack", "U0123ABCD", "alice")
    assert mapped["users"] == [{"system": "slack", "external": "U0123ABCD", "user": "alice"}]
    assert "U0123ABCD" in cli.ok("integrations", "users").out
    cli.fails(2, "integrations", "map-user", "slack", "U0123ABCD", "alice", "--remove")
    cli.fails(2, "integrations", "map-user", "slack", "U0123ABCD")
    r = cli.fails(1, "integrations", "map-user", "slack", "UNOBODY", "nobody")
    assert "not a member" in r.err
    cli.fails(2, "integrations", "map-user", "slack", "U-1;rm", "alice")
    assert cli.js("integrations", "map-user", "slack", "U0123ABCD", "--remove")["users"] == []
    events = cli.js("audit", "list", "--action", "integration.map_user")
    assert [e["details"]["user"] for e in events if e["outcome"] == "success"][:2] == [None, "alice"]  # newest first


def test_serve_hooks_listens_on_localhost_and_refuses_unsigned_calls(cli: Cli) -> None:
    p = subprocess.Popen([*MUSUBI, "serve", "hooks", "--port", "0", "--json"], env=base_env(cli.home), cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        info = json.loads(p.stdout.readline())
        assert info["listening"].startswith("127.0.0.1:") and info["tls"] is False
        assert info["slack"].endswith("/slack/interactions/default") and info["gitlab"].endswith("/gitlab/default")
        assert info["teams"].endswith("/api/messages/default")
        req = urllib.request.Request(info["slack"], data=b"payload=%7B%7D", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 401
        assert "signing secret" in json.loads(err.value.read())["error"]
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
    assert p.returncode == 0


def test_serve_hooks_key_needs_cert(cli: Cli) -> None:
    assert "--key needs --cert" in cli.fails(2, "serve", "hooks", "--key", "k.pem").err
