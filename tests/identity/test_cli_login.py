"""``musubi login / whoami / logout / sso`` end to end: the real CLI, a real engine, the TLS fake IdP."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..cli.helpers import Cli, short_home
from .fake_idp import FakeIdp


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeIdp]:
    with FakeIdp(tmp_path_factory.mktemp("idp")) as fake:
        yield fake


@pytest.fixture(scope="module")
def env(idp: FakeIdp, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    conf = tmp_path_factory.mktemp("conf")
    (conf / "config.toml").write_text(
        idp.config_toml("corp") + "\n" + idp.config_toml("entra1", kind="entra").split("\n", 3)[3])
    return {"MUSUBI_CONFIG_DIR": str(conf), "MUSUBI_SSO_DIR": str(tmp_path_factory.mktemp("sso"))}


@pytest.fixture(scope="module")
def cli(env: dict[str, str]) -> Iterator[Cli]:
    home = short_home()
    c = Cli(home)
    try:
        c.ok("engine", "start", env=env)
        yield c
    finally:
        c.stop()
        shutil.rmtree(home, ignore_errors=True)


def test_login_whoami_logout(cli: Cli, env: dict[str, str], idp: FakeIdp) -> None:
    r = cli.ok("login", "--json", "--fresh", env=env)
    out = r.json()
    assert out["provider"] == "corp" and out["email"] == "alice@example.com"
    assert "session" not in out  # the session id stays in its 0600 file
    assert "ABCD-EFGH" in r.err  # the code to enter goes to stderr, never into the JSON
    path = Path(out["session_file"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    who = cli.ok("whoami", "--json", env=env).json()
    assert who["sso"]["signed_in"] is True and who["sso"]["provider"] == "corp" and who["user"] == who["sso"]["os_user"]
    human = cli.ok("whoami", env=env).out
    assert "alice@example.com via corp" in human
    # a second login uses the saved refresh token: no code to enter
    r = cli.ok("login", "--json", env=env)
    assert "ABCD-EFGH" not in r.err
    out = cli.ok("logout", "--json", env=env).json()
    assert out["signed_out"] is True and out["session_file_removed"] is True and out["forgotten"]
    assert not path.exists()
    assert cli.ok("whoami", "--json", env=env).json()["sso"]["signed_in"] is False
    out = cli.ok("logout", "--json", env=env).json()
    assert out["signed_out"] is False


def test_login_errors_are_clear(cli: Cli, env: dict[str, str], idp: FakeIdp) -> None:
    r = cli("login", "--provider", "nope", "--json", env=env)
    assert r.rc == 2 and "unknown provider 'nope'" in r.err and r.json()["error"]["field"] == "provider"
    idp.deny = True
    try:
        r = cli("login", "--fresh", "--json", env=env)
    finally:
        idp.deny = False
    assert r.rc == 1 and "declined" in r.err and "Traceback" not in r.err
    r = cli("login", "--provider", "entra1", "--browser", env=env)
    assert r.rc == 2 and "--browser" in r.err


def test_choosing_a_provider() -> None:
    from core.errors import BadRequest
    from tui.commands.login import choose

    row = {"name": "a", "kind": "oidc", "client_id": "c", "issuer": "https://a", "authority": None,
           "scopes": ["openid"], "ca_bundle": None, "default": False}
    with pytest.raises(BadRequest, match="no identity provider is configured"):
        choose([], None)
    with pytest.raises(BadRequest, match="pick one with --provider"):
        choose([row, {**row, "name": "b"}], None)
    assert choose([row, {**row, "name": "b", "default": True}], None).name == "b"
    assert choose([row], "a").name == "a"


def test_login_with_entra_through_msal(cli: Cli, env: dict[str, str]) -> None:
    r = cli.ok("login", "--provider", "entra1", "--json", env=env)
    out = r.json()
    assert out["provider"] == "entra1" and "ABCD-EFGH" in r.err
    caches = [p for p in Path(env["MUSUBI_SSO_DIR"]).iterdir() if p.name.startswith("msal-")]
    assert caches and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in caches if not p.name.endswith("lockfile"))
    cli.ok("logout", env=env)
    assert not [p for p in Path(env["MUSUBI_SSO_DIR"]).iterdir() if p.name.startswith("msal-")]


def test_sso_map_list_unmap_and_policy(cli: Cli, env: dict[str, str]) -> None:
    out = cli.ok("sso", "map", "grp-dev", "--role", "member", "--json", env=env).json()
    assert out["action"] == "added" and out["tenant"] == "default"
    rows = cli.ok("sso", "list", "--json", env=env).json()
    assert [(r["value"], r["role"]) for r in rows] == [("grp-dev", "member")]
    assert "grp-dev" in cli.ok("sso", "list", env=env).out
    r = cli("sso", "map", "x", "--role", "nosuch", "--json", env=env)
    assert r.rc == 1 and "unknown role" in r.err
    r = cli("sso", "map", "x", "--role", "member", "--claim", "email", env=env)
    assert r.rc == 2
    out = cli.ok("sso", "unmap", "grp-dev", "--json", env=env).json()
    assert out["action"] == "removed"
    r = cli("sso", "unmap", "grp-dev", "--json", env=env)
    assert r.rc == 1 and "no rule maps" in r.err
    r = cli("sso", "policy", "--require", "--json", env=env)
    assert r.rc == 2 and "lock you out" in r.err
    r = cli("sso", "policy", "--break-glass", "root", env=env)
    assert r.rc == 2
    assert cli.ok("sso", "policy", "--json", env=env).json()["sso_required"] is False
    assert {p["name"] for p in cli.ok("sso", "providers", "--json", env=env).json()} == {"corp", "entra1"}


def test_sso_required_refusal_and_signing_in(cli: Cli, env: dict[str, str]) -> None:
    me = os.environ.get("USER") or __import__("pwd").getpwuid(os.getuid()).pw_name
    cli.ok("tenant", "create", "ssoreq", env=env)
    cli.ok("--tenant", "ssoreq", "sso", "policy", "--require", "--break-glass", me, env=env)
    # the break-glass owner acting as themself passes; --as someone else would not
    cli.ok("--tenant", "ssoreq", "member", "add", "bob", "--role", "owner", env=env)
    cli.ok("--tenant", "ssoreq", "sso", "policy", "--require", "--break-glass", "bob", env=env)
    r = cli("--tenant", "ssoreq", "member", "list", "--json", env=env)
    assert r.rc == 4 and r.json()["error"]["code"] == "sso_required" and "musubi login" in r.err
    out = cli.ok("login", "--fresh", env=env).out
    assert "Signed in" in out and "alice@example.com" in out and "tenant ssoreq" not in out  # no rules there
    cli.ok("--tenant", "ssoreq", "member", "list", env=env)
    cli.ok("--tenant", "ssoreq", "sso", "policy", "--no-require", env=env)
    cli.ok("logout", env=env)
    cli.ok("--tenant", "ssoreq", "member", "list", env=env)


def test_login_in_a_browser_with_pkce(cli: Cli, env: dict[str, str], idp: FakeIdp, tmp_path: Path) -> None:
    # $BROWSER stands in for the desktop browser: it follows the IdP's redirect to the CLI's loopback listener.
    follow = tmp_path / "browser.py"
    follow.write_text("import sys, requests\n"
                      f"r = requests.get(sys.argv[1], verify={str(idp.ca_path)!r}, timeout=20)\n"
                      "sys.exit(0 if r.status_code == 200 else 1)\n")
    r = cli.ok("login", "--browser", "--fresh", "--json",
               env={**env, "BROWSER": f"{sys.executable} {follow} %s"})
    out = r.json()
    assert out["provider"] == "corp" and out["email"] == "alice@example.com"
    assert "Opening your browser" in r.err and "code_challenge_method=S256" in r.err
    cli.ok("logout", env=env)
