"""The tutorial routes against a real engine: progress, sandboxes, isolation, versions, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.helpers import Home, home_fixture

DEMO = '''id = "demo"
title = "Demo"
version = {version}
summary = "A demo."

[[steps]]
id = "owner"
kind = "state"
title = "You own the sandbox"
body = "Nothing to do."
check = {{ route = "/v1/whoami", path = "$.roles", op = "contains", value = "owner" }}
solution = {{ argv = [["whoami"]] }}

[[steps]]
id = "press"
kind = "key"
title = "Press a key"
key = "{key}"
body = "Press it."
solution = {{ keys = ["{key}"] }}

[[steps]]
id = "role"
kind = "state"
title = "{role_title}"
body = "Make a role."
check = {{ route = "/v1/roles", path = "$[*].name", op = "contains", value = "reviewer" }}
solution = {{ argv = [["role", "create", "reviewer", "--permission", "specs.read"]] }}

[[steps]]
id = "last"
kind = "mode"
title = "Go to Trace"
mode = "trace"
body = "F3."
solution = {{ keys = ["f3"] }}
'''


def write_demo(folder: Path, version: int = 1, key: str = "f1", role_title: str = "Create a role") -> None:
    (folder / "demo.toml").write_text(DEMO.format(version=version, key=key, role_title=role_title))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    folder = tmp_path / "tuts"
    folder.mkdir()
    write_demo(folder)
    monkeypatch.setenv("MUSUBI_TUTORIALS_DIR", str(folder))
    with home_fixture(start=True) as h:
        h.tuts = folder  # type: ignore[attr-defined]
        yield h


def call(h: Home, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    status, data = h.raw(method, path, body, **kw)
    assert status < 300, (status, data)
    return data


def test_start_completes_satisfied_steps_and_resumes(home: Home) -> None:
    s = call(home, "POST", "/v1/tutorials/demo/start")
    assert s["completed_now"] == ["owner"] and s["resumed"] is False
    sb = s["sandbox"]
    assert sb["tenant"].startswith("tut-") and sb["tenant"].endswith("-demo")
    assert Path(sb["path"]).is_dir() and (Path(sb["path"]) / "storage/specs/cart.md").is_file()
    assert Path(sb["path"]).is_relative_to(home.dir / "sandboxes")
    p = call(home, "POST", "/v1/tutorials/demo/complete", {"step": "press"})
    assert p["progress"]["current"] == "role" and p["completed_now"] == []
    again = call(home, "POST", "/v1/tutorials/demo/start")
    assert again["resumed"] is True and again["sandbox"] == sb and again["progress"]["done"] == ["owner", "press"]
    # the check reads the SANDBOX: a role made there satisfies it
    c = call(home, "POST", "/v1/tutorials/demo/check", {"step": "role"})
    assert c["ok"] is False and "reviewer" in c["detail"]
    call(home, "POST", "/v1/roles", {"name": "reviewer", "permissions": ["specs.read"]}, tenant=sb["tenant"])
    c = call(home, "POST", "/v1/tutorials/demo/check", {"step": "role"})
    assert c["ok"] is True and c["progress"]["current"] == "last"
    done = call(home, "POST", "/v1/tutorials/demo/complete", {"step": "last"})
    assert done["progress"]["state"] == "done" and done["progress"]["sandbox"] is None
    assert not Path(sb["path"]).exists()
    t = call(home, "GET", f"/v1/tenants/{sb['tenant']}")
    assert t["status"] == "suspended" and t["projects"] == []
    listing = {r["id"]: r for r in call(home, "GET", "/v1/tutorials")}
    assert listing["demo"]["progress"]["state"] == "done" and "first-steps" in listing


def test_sandbox_isolation_real_tenant_untouched(home: Home, tmp_path: Path) -> None:
    real = home.new_tenant("acme")
    repo = tmp_path / "repo"
    repo.mkdir()
    call(home, "POST", "/v1/projects", {"path": str(repo), "name": "app"}, tenant=real)
    before_seq = home.head_seq(real)
    before = {k: call(home, "GET", f"/v1/{k}", tenant=real) for k in ("projects", "roles", "members")}
    quotas = call(home, "GET", "/v1/quotas", tenant=real)["quotas"]
    # the whole tutorial, asked from inside the real tenant
    s = call(home, "POST", "/v1/tutorials/demo/start", tenant=real)
    sb = s["sandbox"]
    call(home, "POST", "/v1/tutorials/demo/complete", {"step": "press"}, tenant=real)
    call(home, "POST", "/v1/roles", {"name": "reviewer", "permissions": ["specs.read"]}, tenant=sb["tenant"])
    call(home, "POST", "/v1/tutorials/demo/check", {"step": "role"}, tenant=real)
    call(home, "POST", "/v1/tutorials/demo/reset", tenant=real)
    assert home.head_seq(real) == before_seq, home.audit(real)[-3:]
    assert not [e for e in home.audit(real) if "tutorial" in e["action"] or "tut-" in e["resource"]]
    assert {k: call(home, "GET", f"/v1/{k}", tenant=real) for k in before} == before
    assert call(home, "GET", "/v1/quotas", tenant=real)["quotas"] == quotas
    assert sorted(repo.iterdir()) == []  # the real repository was never written to
    acts = [e["action"] for e in home.audit(sb["tenant"])]
    assert acts[0] == "tenant.create"
    assert {"tutorial.start", "tutorial.step", "role.create", "tutorial.reset", "tenant.suspend"} <= set(acts)
    v = call(home, "POST", "/v1/audit/verify", {}, tenant=sb["tenant"])
    assert v["ok"] is True


def test_progress_survives_restart_and_kill(home: Home) -> None:
    call(home, "POST", "/v1/tutorials/demo/start")
    call(home, "POST", "/v1/tutorials/demo/skip", {"step": "press"})
    home.stop()
    home.start()
    p = call(home, "GET", "/v1/tutorials/demo/progress")
    assert p["done"] == ["owner"] and p["skipped"] == ["press"] and p["current"] == "role"
    home.kill9()
    home.start()
    p2 = call(home, "GET", "/v1/tutorials/demo/progress")
    assert p2 == p
    assert call(home, "POST", "/v1/tutorials/demo/start")["resumed"] is True


def test_version_change_restarts_only_changed_steps(home: Home) -> None:
    call(home, "POST", "/v1/tutorials/demo/start")
    call(home, "POST", "/v1/tutorials/demo/complete", {"step": "press"})
    call(home, "POST", "/v1/tutorials/demo/skip", {"step": "role"})
    before = call(home, "GET", "/v1/tutorials/demo/progress")
    assert before["done"] == ["owner", "press"] and before["skipped"] == ["role"]
    # version 2: the key of "press" changed, "role" only got a new title (prose keeps progress)
    write_demo(home.tuts, version=2, key="f2", role_title="Create a reviewer role")  # type: ignore[attr-defined]
    p = call(home, "GET", "/v1/tutorials/demo/progress")
    assert p["version"] == 2 and p["done"] == ["owner"] and p["skipped"] == ["role"]
    assert p["restarted"] == ["press"] and p["current"] == "press"
    shown = call(home, "GET", "/v1/tutorials/demo")
    assert [s["state"] for s in shown["steps"]] == ["done", "todo", "skipped", "todo"]
    s = call(home, "POST", "/v1/tutorials/demo/start")
    assert s["resumed"] is True and s["progress"]["restarted"] == ["press"]
    d = call(home, "POST", "/v1/tutorials/demo/complete", {"step": "press"})
    assert d["progress"]["restarted"] == [] and d["progress"]["done"] == ["owner", "press"]


def test_each_user_has_their_own_progress_and_sandbox(home: Home) -> None:
    mine = call(home, "POST", "/v1/tutorials/demo/start")
    theirs = call(home, "POST", "/v1/tutorials/demo/start", as_user="bob")
    assert theirs["sandbox"]["tenant"] == "tut-bob-demo" != mine["sandbox"]["tenant"]
    t = call(home, "GET", "/v1/tenants/tut-bob-demo")  # root reads it as a system owner
    assert t["created_by"] == "bob" and t["members"] == 1
    # root holds no role in bob's sandbox, so may not act as bob there
    assert home.raw("GET", "/v1/members", tenant="tut-bob-demo", as_user="bob")[0] == 403
    call(home, "POST", "/v1/tutorials/demo/complete", {"step": "press"}, as_user="bob")
    assert call(home, "GET", "/v1/tutorials/demo/progress")["done"] == ["owner"]
    assert call(home, "GET", "/v1/tutorials/demo/progress", as_user="bob")["done"] == ["owner", "press"]


def test_reset_makes_a_fresh_sandbox_next_time(home: Home) -> None:
    first = call(home, "POST", "/v1/tutorials/demo/start")["sandbox"]
    call(home, "POST", "/v1/roles", {"name": "reviewer", "permissions": ["specs.read"]}, tenant=first["tenant"])
    r = call(home, "POST", "/v1/tutorials/demo/reset")
    assert r["cleaned"] == first and r["progress"]["state"] == "new" and not Path(first["path"]).exists()
    assert call(home, "POST", "/v1/tutorials/demo/reset")["cleaned"] is None  # nothing left: idempotent
    second = call(home, "POST", "/v1/tutorials/demo/start")
    assert second["sandbox"]["tenant"] == first["tenant"] + "-2"
    # the new sandbox has no role "reviewer": the old tenant's state does not leak into the new one
    c = call(home, "POST", "/v1/tutorials/demo/complete", {"step": "press"})
    assert c["completed_now"] == [] and c["progress"]["current"] == "role"


@pytest.mark.parametrize(("method", "path", "body", "status", "words"), [
    ("GET", "/v1/tutorials/nope", None, 404, "no tutorial 'nope'"),
    ("GET", "/v1/tutorials/Bad_Id", None, 400, "is not a tutorial id"),
    ("POST", "/v1/tutorials/demo/check", {"step": "role"}, 409, "musubi tutorial start demo"),
    ("POST", "/v1/tutorials/demo/complete", {"step": "press"}, 409, "not started"),
    ("POST", "/v1/tutorials/demo/check", {}, 400, "step"),
])
def test_refusals_before_start(home: Home, method: str, path: str, body: Any, status: int, words: str) -> None:
    got, data = home.raw(method, path, body)
    assert got == status and words in data["error"]["message"], data
    assert call(home, "GET", "/v1/tutorials/demo/progress")["state"] == "new"  # a refusal changed nothing


def test_refusals_after_start(home: Home) -> None:
    call(home, "POST", "/v1/tutorials/demo/start")
    for step, route, words in [("press", "check", "musubi tutorial done demo press"),
                               ("role", "complete", "musubi tutorial check demo role"),
                               ("nope", "complete", "has no step 'nope'")]:
        status, data = home.raw("POST", f"/v1/tutorials/demo/{route}", {"step": step})
        assert status in (400, 404) and words in data["error"]["message"], data
    assert call(home, "GET", "/v1/tutorials/demo/progress")["done"] == ["owner"]


def test_a_malformed_file_is_refused_with_file_and_line(home: Home) -> None:
    (home.tuts / "broken.toml").write_text('id = "broken"\ntitle = "B"\nversion = "one"\n')  # type: ignore[attr-defined]
    status, data = home.raw("GET", "/v1/tutorials")
    assert status == 400 and "broken.toml:3: version:" in data["error"]["message"], data


def test_replay_provider_only_in_sandboxes(home: Home, tmp_path: Path) -> None:
    """A sandbox's runs replay recorded answers; a real tenant with no provider is refused, never replayed."""
    import shutil

    from tutorials.loader import SAMPLE_DIR

    real = home.new_tenant("acme")
    repo = tmp_path / "shop"
    shutil.copytree(SAMPLE_DIR / "shop", repo)
    call(home, "POST", "/v1/projects", {"path": str(repo), "name": "shop"}, tenant=real)
    status, data = home.raw("POST", "/v1/runs", {"workflow": "tutorial", "feature": "save the cart"}, tenant=real,
                            project="shop")
    assert status >= 400 and data["error"]["code"] == "provider_not_configured", data
    sb = call(home, "POST", "/v1/tutorials/demo/start")["sandbox"]
    run = call(home, "POST", "/v1/runs", {"workflow": "tutorial", "feature": "save the cart"}, tenant=sb["tenant"],
               project=sb["project"])
    assert run["workflow"] == "tutorial" and run["tenant"] == sb["tenant"]


def test_a_step_already_satisfied_when_it_becomes_current_completes_at_once(home: Home) -> None:
    sb = call(home, "POST", "/v1/tutorials/demo/start")["sandbox"]
    # the role exists before its step is reached: finishing the step before it completes it too
    call(home, "POST", "/v1/roles", {"name": "reviewer", "permissions": ["specs.read"]}, tenant=sb["tenant"])
    d = call(home, "POST", "/v1/tutorials/demo/complete", {"step": "press"})
    assert d["completed_now"] == ["role"] and d["progress"]["current"] == "last"
    acts = [(e["action"], e["details"].get("how")) for e in home.audit(sb["tenant"]) if e["action"] == "tutorial.step"]
    assert acts == [("tutorial.step", "already"), ("tutorial.step", "client"), ("tutorial.step", "already")]
