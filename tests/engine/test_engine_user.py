"""The engine's OS user: one check (``access.is_engine_user``), judged on the socket peer, never lent by ``--as``.

The engine's OS user may name paths outside every registered project (trace, cost
estimate files) and may stop the engine.  Both sides of an impersonation count:
acting ``--as`` that user gives none of it, and that user acting ``--as`` someone
else gets only what that someone gets.  Copies of the check used to disagree
(``user`` in one route, ``real_user`` in another); each test here fails with either.
"""

from __future__ import annotations

from pathlib import Path

from core.engine.access import Caller, engine_os_user, is_engine_user
from tests.trace.fixture import build_repo

from .helpers import Home
from .other_user import OTHER, need_root, open_to_others, public_dir, raw_as_other

MODEL = "gpt-5.4"


def test_the_check_is_the_socket_peer_acting_as_themself() -> None:
    me = engine_os_user()
    assert is_engine_user(Caller(me, me, "t"))
    assert not is_engine_user(Caller(me, "mia", "t"))  # the engine's user acting as someone else
    assert not is_engine_user(Caller("mia", me, "t"))  # someone acting as the engine's user
    assert not is_engine_user(Caller("mia", "mia", "t"))


def test_the_engine_user_acting_as_someone_else_gets_no_paths_outside_projects(eng: Home, tmp_path: Path) -> None:
    t = eng.new_tenant("eu", {"mia": "owner"})
    repo = build_repo(tmp_path / "loose", git=False)  # registered nowhere
    loose = repo / "README.md"
    loose.write_text("hello\n")
    body = {"models": [MODEL], "paths": [str(loose)]}
    # As themself, the engine's OS user may name any file and any repository ...
    assert eng.raw("POST", "/v1/cost/estimate", body, tenant=t)[0] == 200
    assert eng.raw("GET", f"/v1/trace?path={repo}&view=summary", tenant=t)[0] == 200
    # ... acting as mia, only what mia may: files and repositories inside registered projects.
    status, answer = eng.raw("POST", "/v1/cost/estimate", body, tenant=t, as_user="mia")
    assert status == 403 and "not inside a registered project" in answer["error"]["message"], answer
    status, answer = eng.raw("GET", f"/v1/trace?path={repo}&view=summary", tenant=t, as_user="mia")
    assert status == 403 and "not inside a registered project" in answer["error"]["message"], answer
    status, answer = eng.raw("POST", "/v1/engine/stop", tenant=t, as_user="mia")
    assert status == 403, answer
    assert eng.raw("GET", "/v1/health")[0] == 200  # still running


def test_acting_as_the_engine_user_lends_none_of_its_powers(home: Home) -> None:
    need_root()
    home.start()
    open_to_others(home)
    me = engine_os_user()
    repo = build_repo(public_dir("loose") / "repo", git=False)
    t = home.new_tenant("lend", {OTHER: "owner"})  # an owner may impersonate anyone in the tenant
    status, answer = raw_as_other(home, "GET", f"/v1/trace?path={repo}&view=summary", tenant=t, as_user=me)
    assert status == 403 and "not inside a registered project" in answer["error"]["message"], answer
    status, answer = raw_as_other(home, "POST", "/v1/engine/stop", tenant=t, as_user=me)
    assert status == 403, answer
    assert home.raw("GET", "/v1/health")[0] == 200
