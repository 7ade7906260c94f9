"""The index and search routes: answers against their shapes, unhappy paths, RBAC, tenant isolation, cancel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.api import responses as a
from tests.engine.helpers import Home, home_fixture
from tests.engine.test_api_models import _exactly

from .helpers import (
    FAKE_EMBEDDER,
    add_project,
    index,
    job,
    make_repo,
    search,
    start_index,
    wait_job,
)

CODE = {
    "auth/login.py": "def check_password(user, password):\n"
                     "    \"\"\"Verify a login.\"\"\"\n    return user.pw == password\n",
    "auth/tokens.py": "class TokenStore:\n    def issue(self, user):\n        return 'tok-' + user\n",
    "docs/guide.md": "# Guide\n\nHow to log in.\n\n## Tokens\n\nTokens expire.\n",
}


@pytest.fixture(scope="module")
def feng() -> Iterator[Home]:
    """One engine (fake embedder) for the module; each test works in a tenant of its own."""
    with home_fixture(start=True, env=FAKE_EMBEDDER) as h:
        yield h


@pytest.fixture
def world(feng: Home, tmp_path: Path) -> tuple[Home, str]:
    """A fresh tenant whose project ``demo`` (CODE) is registered, not indexed."""
    t = feng.new_tenant("ix")
    add_project(feng, t, "demo", make_repo(tmp_path, CODE))
    return feng, t


@pytest.fixture(scope="module")
def indexed(feng: Home, tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, str]:
    """A tenant whose project ``demo`` is indexed, for the tests that only read it."""
    t = feng.new_tenant("ixr")
    add_project(feng, t, "demo", make_repo(tmp_path_factory.mktemp("indexed"), CODE))
    index(feng, t, "demo")
    return feng, t


def test_answers_have_the_contract_shapes(world: tuple[Home, str]) -> None:
    h, t = world
    status, body = h.raw("GET", "/v1/index/status", tenant=t, project="demo")
    assert status == 200 and body["state"] == "none" and body["chunks"] == 0, body
    _exactly(body, a.IndexStatus)
    j = start_index(h, t, "demo")
    _exactly({"job": j}, a.IndexStarted)
    done = wait_job(h, t, j["id"])
    assert done["result"]["files"] == 3
    status, body = h.raw("GET", "/v1/index/status", tenant=t, project="demo")
    _exactly(body, a.IndexStatus)
    assert body["state"] == "ready" and body["files"] == 3 and body["dense_coverage"] == 1.0
    assert body["chunks"] == body["dense_chunks"] > 0 and body["model"] == "fake@dim256"
    assert body["root"] and body["job"]["id"] == j["id"]
    status, body = search(h, t, "demo", "check password login", k=3)
    assert status == 200, body
    _exactly(body, a.SearchAnswer)
    top = body["results"][0]
    assert (top["path"], top["start_line"], top["end_line"], top["symbol"]) == ("auth/login.py", 1, 3, "check_password")
    assert top["language"] == "python" and "def check_password" in top["snippet"]
    assert body["complete"] is True and body["dense_coverage"] == 1.0 and len(body["results"]) <= 3
    status, body = h.raw("POST", "/v1/search/batch", {"queries": ["token store", "guide"], "k": 2},
                         tenant=t, project="demo")
    assert status == 200, body
    _exactly(body, a.SearchBatchAnswer)
    assert [x["query"] for x in body["answers"]] == ["token store", "guide"]


def test_filters_by_path_glob_and_language(indexed: tuple[Home, str]) -> None:
    h, t = indexed
    _, body = search(h, t, "demo", "log in", path="docs/*")
    assert body["results"] and {r["path"] for r in body["results"]} == {"docs/guide.md"}
    _, body = search(h, t, "demo", "user", lang="python", k=10)
    assert body["results"] and {r["language"] for r in body["results"]} == {"python"}
    _, body = search(h, t, "demo", "user", path="*.py")  # no '/': matches the file name
    assert body["results"] and all(r["path"].endswith(".py") for r in body["results"])
    _, body = search(h, t, "demo", "user", lang="rust")
    assert body["results"] == []


@pytest.mark.parametrize(("body", "code", "status", "says"), [
    ({"query": ""}, "bad_request", 400, "empty"),
    ({"query": "   "}, "bad_request", 400, "empty"),
    ({"query": "x", "k": 0}, "bad_request", 400, "1"),
    ({"query": "x", "k": 101}, "bad_request", 400, "100"),
    ({"query": "x", "path": "/etc/*"}, "bad_request", 400, "relative"),
    ({"query": "x", "path": "../*"}, "bad_request", 400, ".."),
    ({"query": "x", "path": "a[b"}, "bad_request", 400, "unclosed"),
    ({"query": "x", "lang": "Py thon"}, "bad_request", 400, "language"),
])
def test_bad_search_requests_name_the_problem(indexed: tuple[Home, str], body: dict[str, object], code: str,
                                               status: int, says: str) -> None:
    h, t = indexed
    got, answer = h.raw("POST", "/v1/search", body, tenant=t, project="demo")
    assert got == status and answer["error"]["code"] == code and says in answer["error"]["message"], answer


def test_not_indexed_and_no_project(world: tuple[Home, str]) -> None:
    h, t = world
    status, body = search(h, t, "demo", "anything")
    assert status == 400 and body["error"]["code"] == "not_indexed" and "musubi index" in body["error"]["message"]
    status, body = h.raw("POST", "/v1/search", {"query": "x"}, tenant=t)  # cwd / is in no project
    assert status == 404 and "musubi project add" in body["error"]["message"], body
    status, body = h.raw("POST", "/v1/index", {}, tenant=t)
    assert status == 404, body
    status, body = h.raw("POST", "/v1/index", {"path": "relative/dir"}, tenant=t)
    assert status == 400 and body["error"]["field"] == "path"
    status, body = h.raw("POST", "/v1/index", {"path": "/tmp"}, tenant=t)
    assert status == 404 and "musubi project add" in body["error"]["message"], body


def test_a_query_never_returns_another_tenants_code(world: tuple[Home, str], tmp_path: Path) -> None:
    h, t = world
    other = h.new_tenant("other")
    secret = make_repo(tmp_path / "b", {"vault.py": "def unlock_the_vault(secret_code):\n    return secret_code\n"})
    add_project(h, other, "demo", secret)  # the same project name in another tenant
    index(h, other, "demo")
    index(h, t, "demo")
    _, body = search(h, t, "demo", "unlock the vault secret code", k=100)
    assert all(r["path"] != "vault.py" and "vault" not in r["snippet"] for r in body["results"])
    _, body = search(h, other, "demo", "unlock the vault secret code", k=100)
    assert {r["path"] for r in body["results"]} == {"vault.py"}
    # A member of tenant t is nobody in the other one.
    h.raw("POST", "/v1/members", {"user": "mallory", "role": "member"}, tenant=t)
    status, body = h.raw("POST", "/v1/search", {"query": "vault"}, tenant=other, project="demo", as_user="mallory")
    assert status in (403, 404), body
    status, body = h.raw("POST", "/v1/index", {}, tenant=other, project="demo", as_user="mallory")
    assert status in (403, 404), body


def test_rbac_viewer_searches_but_cannot_index(world: tuple[Home, str]) -> None:
    h, t = world
    index(h, t, "demo")
    h.raw("POST", "/v1/members", {"user": "vic", "role": "viewer"}, tenant=t)
    status, body = h.raw("POST", "/v1/search", {"query": "token"}, tenant=t, project="demo", as_user="vic")
    assert status == 200, body
    status, body = h.raw("POST", "/v1/index", {}, tenant=t, project="demo", as_user="vic")
    assert status == 403 and body["error"]["code"] == "permission_denied", body
    denied = [e for e in h.audit(t) if e["actor"] == "vic" and e["outcome"] == "denied"]
    assert denied and denied[-1]["action"] == "job.start"


def test_cancel_stops_indexing_and_keeps_what_was_committed(fhome: Home, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSUBI_TEST_INDEX_BATCH", "5")
    monkeypatch.setenv("MUSUBI_TEST_INDEX_DELAY_S", "0.3")
    files = {f"m{i}.py": f"def function_{i}(x):\n    return x + {i}\n" for i in range(60)}
    fhome.start()
    add_project(fhome, "default", "big", make_repo(tmp_path, files))
    j = start_index(fhome, "default", "big")
    status, again = fhome.raw("POST", "/v1/index", {}, tenant="default", project="big")
    assert status == 202 and again["job"]["id"] == j["id"]  # one index job per project
    from tests.engine.helpers import poll

    poll(lambda: (job(fhome, "default", j["id"])["checkpoint"] or {}).get("dense", 0) >= 10, timeout=60)
    # Search works meanwhile: lexical at once, the dense part partial and said so.
    status, body = search(fhome, "default", "big", "function_3")
    assert status == 200 and body["complete"] is False and 0 < body["dense_coverage"] < 1, body
    assert body["results"][0]["symbol"] == "function_3"
    status, body = fhome.raw("POST", f"/v1/jobs/{j['id']}/cancel", tenant="default")
    assert status == 200, body
    end = wait_job(fhome, "default", j["id"], "cancelled")
    _, st = fhome.raw("GET", "/v1/index/status", tenant="default", project="big")
    assert st["chunks"] == 60 and 10 <= st["dense_chunks"] < 60 and st["state"] == "stale", st
    assert st["dense_chunks"] == end["checkpoint"]["dense"]
    # The next run embeds exactly what the cancelled one had not committed.
    monkeypatch.delenv("MUSUBI_TEST_INDEX_DELAY_S")
    rest = index(fhome, "default", "big")
    assert rest["embedded"] == 60 - st["dense_chunks"] and rest["changed"] == 0
