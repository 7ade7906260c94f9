"""A running workstation picks up `musubi login` / `logout` (core/identity/store.py LiveSession):
the session file is checked (one stat) before each request and re-read only when it changed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from core.api import calls
from core.async_client import AsyncEngineClient
from core.identity.store import LiveSession, clear_session, save_session, session_file
from core.wire import Identity

from ..engine.helpers import Home
from .fake_idp import FakeIdp
from .test_engine_sso import eng, idp, sign_in

__all__ = ["eng", "idp"]


@pytest.fixture
def sso_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "sso"
    monkeypatch.setenv("MUSUBI_SSO_DIR", str(d))
    return d


def sso_header(ident: Identity) -> str | None:
    return ident.headers().get("X-Musubi-Sso-Session")


def test_a_login_and_logout_apply_to_a_running_client(sso_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    ident = Identity(sso_source=LiveSession(home))
    assert sso_header(ident) is None  # not signed in yet
    save_session(home, "sid-one", "corp", "2099-01-01T00:00:00Z")
    assert sso_header(ident) == "sid-one"  # `musubi login` while it runs
    save_session(home, "sid-two", "corp", "2099-01-01T00:00:00Z")
    assert sso_header(ident) == "sid-two"  # signed in again: the new session
    clear_session(home)
    assert sso_header(ident) is None  # `musubi logout`
    save_session(home, "sid-three", "corp", "2099-01-01T00:00:00Z")
    os.chmod(session_file(home), 0o644)  # readable by others: never sent
    assert sso_header(ident) is None


def test_a_remote_session_never_sends_the_sso_session(sso_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    save_session(home, "sid-one", "corp", "2099-01-01T00:00:00Z")
    h = Identity(session="mst_x", sso_source=LiveSession(home), sso_session="also")
    assert h.headers()["X-Musubi-Session"] == "mst_x" and "X-Musubi-Sso-Session" not in h.headers()


def test_the_workstation_reads_the_session_file_live(sso_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import tui.app as app_mod

    got: dict[str, Any] = {}
    monkeypatch.setattr(app_mod, "run_app", lambda app: got.setdefault("app", app) and 0)
    monkeypatch.setenv("MUSUBI_CONFIG_DIR", str(tmp_path / "conf"))
    home = tmp_path / "h"
    app_mod.run(home=str(home), fresh=True)
    ident = got["app"].ctx.api.identity
    assert sso_header(ident) is None
    save_session(home, "sid-live", "corp", "2099-01-01T00:00:00Z")
    assert sso_header(ident) == "sid-live"


async def test_a_running_client_is_signed_in_and_out_by_the_engine(eng: Home, idp: FakeIdp, sso_dir: Path) -> None:
    api = AsyncEngineClient(eng.paths, Identity(cwd="/", sso_source=LiveSession(eng.paths.home)))
    try:
        assert (await api.call(calls.sso_session()))["signed_in"] is False
        out = sign_in(eng, idp)[1]
        save_session(eng.paths.home, out["session"], "corp", out["expires_at"])  # what `musubi login` writes
        shown = await api.call(calls.sso_session())
        assert shown["signed_in"] is True and shown.get("subject") == out["subject"]
        clear_session(eng.paths.home)  # what `musubi logout` does
        assert (await api.call(calls.sso_session()))["signed_in"] is False
    finally:
        await api.close()
