"""``musubi whoami``, ``tenant``, ``project``, ``role``, ``member``: happy paths, JSON shapes, bad input."""

from __future__ import annotations

import getpass
import os
import tempfile

from .helpers import Cli

ME = getpass.getuser()


def test_whoami(cli: Cli) -> None:
    me = cli.js("whoami")
    assert set(me) == {"user", "real_user", "tenant", "tenant_status", "project", "roles", "permissions", "tenant_permissions",
                       "system_admin", "sso"}
    assert me["sso"] == {"signed_in": False, "os_user": ME}  # the signed-in identity beside the OS user (none here)
    assert me["tenant_permissions"] == me["permissions"]  # no project here: the same
    assert me["user"] == me["real_user"] == ME and me["tenant"] == "default" and me["roles"] == ["owner"]
    assert "impersonate" in me["permissions"]
    assert me["system_admin"] is True  # the engine's OS user owns the system tenant
    out = cli.ok("whoami").out
    assert ME in out and "owner" in out and "system_admin" in out


def test_tenant_create_list_show(cli: Cli) -> None:
    t = cli.js("tenant", "create", "t-create")
    assert t["name"] == "t-create" and t["status"] == "active" and t["created_by"] == ME
    assert "created tenant t-create" in cli.ok("tenant", "create", "t-create2").out
    rows = cli.js("tenant", "list")
    mine = {r["name"]: r for r in rows}
    assert {"default", "t-create", "t-create2"} <= set(mine)
    assert set(mine["t-create"]) >= {"name", "status", "created_at", "created_by", "members", "projects", "your_roles"}
    assert mine["t-create"]["your_roles"] == ["owner"]
    human = cli.ok("tenant", "list").out
    assert "t-create2" in human and "STATUS" in human
    shown = cli.js("tenant", "show", "t-create")
    assert shown["name"] == "t-create" and shown["audit_head_seq"] >= 1 and shown["data_dir"].endswith("t-create")
    # no NAME: the current tenant, chosen with --tenant before or after the command
    assert cli.js("tenant", "show")["name"] == "default"
    assert cli.js("--tenant", "t-create", "tenant", "show")["name"] == "t-create"
    assert cli.js("tenant", "show", "--tenant", "t-create")["name"] == "t-create"
    assert cli.js("tenant", "show", env={"MUSUBI_TENANT": "t-create2"})["name"] == "t-create2"


def test_tenant_bad_input(cli: Cli) -> None:
    r = cli.fails(2, "tenant", "create", "Bad_Name")
    assert "invalid tenant name 'Bad_Name'" in r.err
    err = cli("tenant", "create", "Bad_Name", "--json").json()["error"]
    assert err["code"] == "bad_request" and err["exit_code"] == 2 and err["field"] == "tenant"
    cli.ok("tenant", "create", "t-dup")
    r = cli.fails(1, "tenant", "create", "t-dup")
    assert "already exists" in r.err
    r = cli.fails(1, "--tenant", "nosuch", "whoami")
    assert "unknown tenant 'nosuch'" in r.err and "musubi tenant list" in r.err
    r = cli.fails(1, "whoami", "--tenant", "nosuch", "--json")
    assert r.json()["error"]["code"] == "not_found"
    cli.fails(2, "whoami", "--tenant", "NoSuch")
    cli.fails(1, "tenant", "show", "nosuch")


def test_tenant_suspend_and_resume(cli: Cli) -> None:
    cli.ok("tenant", "create", "t-susp")
    # no terminal on stdin (and --json): refuse without --yes, and change nothing
    r = cli.fails(2, "tenant", "suspend", "t-susp")
    assert "--yes" in r.err
    r = cli.fails(2, "tenant", "suspend", "t-susp", "--json")
    assert r.json()["error"]["exit_code"] == 2
    assert cli.js("tenant", "show", "t-susp")["status"] == "active"

    t = cli.js("tenant", "suspend", "t-susp", "--reason", "unpaid", "--yes")
    assert t["status"] == "suspended" and t["status_reason"] == "unpaid"
    r = cli.fails(4, "--tenant", "t-susp", "quota", "set", "tokens", "5", "--per", "day")
    assert "suspended" in r.err
    assert cli("--tenant", "t-susp", "quota", "set", "tokens", "5", "--per", "day", "--json").json()["error"]["code"] == "tenant_suspended"
    assert cli.js("--tenant", "t-susp", "quota", "status")["tenant"] == "t-susp"  # admin reads still work
    cli.fails(1, "tenant", "suspend", "t-susp", "-y")  # already suspended
    assert "active again" in cli.ok("tenant", "resume", "t-susp", "--yes").out
    assert cli.js("tenant", "show", "t-susp")["status"] == "active"
    cli.fails(1, "tenant", "suspend", "default", "--yes")  # the system tenant cannot be suspended


def test_project_add_list_remove(cli: Cli) -> None:
    cli.ok("tenant", "create", "t-proj")
    with tempfile.TemporaryDirectory(prefix="mhp") as d:
        repo = os.path.join(d, "shop")
        os.mkdir(repo)
        # a relative PATH is resolved on the client (the engine runs with cwd /)
        p = cli.js("--tenant", "t-proj", "project", "add", "shop", cwd=d)
        assert p == {"name": "shop", "path": os.path.realpath(repo), "tenant": "t-proj"}
        p2 = cli.js("project", "add", ".", "--name", "top", "--tenant", "t-proj", cwd=d)
        assert p2["name"] == "top" and p2["path"] == os.path.realpath(d)
        rows = cli.js("project", "list", "--tenant", "t-proj", cwd=repo)
        by = {r["name"]: r for r in rows}
        assert set(by) == {"shop", "top"}
        assert by["shop"]["current"] is True and by["top"]["current"] is False  # deepest match wins
        assert cli.js("whoami", "--tenant", "t-proj", cwd=repo)["project"] == "shop"
        assert cli.js("whoami", "--tenant", "t-proj", "--project", "top", cwd=repo)["project"] == "top"
        human = cli.ok("--tenant", "t-proj", "project", "list", cwd=repo).out
        assert "*" in human and "shop" in human

        r = cli.fails(1, "--tenant", "t-proj", "project", "add", ".", "--name", "shop", cwd=repo)
        assert "already" in r.err
        r = cli.fails(2, "--tenant", "t-proj", "project", "add", os.path.join(d, "missing"))
        assert "not an existing directory" in r.err
        cli.fails(1, "--tenant", "t-proj", "whoami", "--project", "nosuch")

        removed = cli.js("--tenant", "t-proj", "project", "remove", "top")
        assert removed["name"] == "top" and removed["bindings_removed"] == 0
        assert [r["name"] for r in cli.js("--tenant", "t-proj", "project", "list")] == ["shop"]
        cli.fails(1, "--tenant", "t-proj", "project", "remove", "top")


def test_roles(cli: Cli) -> None:
    rows = cli.js("role", "list")
    names = [r["name"] for r in rows]
    assert names[:6] == ["owner", "admin", "member", "viewer", "guest", "auditor"]
    assert set(rows[0]) == {"name", "builtin", "permissions", "description"}
    r = cli.js("role", "create", "reviewer", "--permission", "specs.read", "-p", "runs.approve", "--description", "approves")
    assert r == {"name": "reviewer", "builtin": False, "permissions": ["runs.approve", "specs.read"], "description": "approves"}
    shown = cli.js("role", "show", "reviewer")
    assert shown["matrix"]["runs.approve"] is True and shown["matrix"]["tenant.manage"] is False
    assert "runs.approve" in cli.ok("role", "show", "reviewer").out
    assert "reviewer" in cli.ok("role", "list").out
    r = cli.fails(2, "role", "create", "bad-perm", "-p", "nope.nope")
    assert "unknown permission" in r.err and "specs.read" in r.err
    cli.fails(2, "role", "create", "noperm")  # --permission is required
    cli.fails(2, "role", "create", "Bad Name", "-p", "specs.read")
    cli.fails(1, "role", "create", "viewer", "-p", "specs.read")  # exists (built in)
    r = cli.fails(1, "role", "show", "nosuch")
    assert "unknown role 'nosuch'" in r.err
    assert cli.js("role", "delete", "reviewer") == {"name": "reviewer", "deleted": True}
    cli.fails(1, "role", "delete", "reviewer")
    cli.fails(1, "role", "delete", "owner")


def test_members(cli: Cli) -> None:
    cli.ok("tenant", "create", "t-mem")
    with tempfile.TemporaryDirectory(prefix="mhp") as d:
        cli.ok("--tenant", "t-mem", "project", "add", d, "--name", "web")
        added = cli.js("member", "add", "alice", "--role", "admin", "--tenant", "t-mem")
        assert added == {"tenant": "t-mem", "user": "alice", "role": "admin", "project": None, "action": "member.add"}
        # --project after `member add` is the binding's project, not the context project
        added = cli.js("--tenant", "t-mem", "member", "add", "bob", "--role", "viewer", "--project", "web")
        assert added["project"] == "web" and added["role"] == "viewer"
        changed = cli.js("--tenant", "t-mem", "member", "add", "alice", "--role", "member")
        assert changed["action"] == "member.update"
        assert "now has role viewer" in cli.ok("--tenant", "t-mem", "member", "add", "alice", "--role", "viewer").out
        rows = cli.js("--tenant", "t-mem", "member", "list")
        assert {(m["user"], m["role"], m["project"]) for m in rows} == {
            (ME, "owner", None), ("alice", "viewer", None), ("bob", "viewer", "web")}
        assert set(rows[0]) == {"user", "project", "role", "since", "added_by"}
        human = cli.ok("member", "list", "--tenant", "t-mem").out
        assert "alice" in human and "web" in human

        r = cli.fails(1, "--tenant", "t-mem", "member", "add", "carol", "--role", "nosuch")
        assert "unknown role 'nosuch'" in r.err
        cli.fails(1, "--tenant", "t-mem", "member", "add", "carol", "--role", "viewer", "--project", "nosuch")
        cli.fails(2, "--tenant", "t-mem", "member", "add", "bad user!", "--role", "viewer")
        cli.fails(2, "--tenant", "t-mem", "member", "add", "carol")  # --role is required
        r = cli.fails(1, "--tenant", "t-mem", "member", "remove", ME)
        assert "last owner" in r.err

        removed = cli.js("--tenant", "t-mem", "member", "remove", "bob", "--project", "web")
        assert removed == {"tenant": "t-mem", "user": "bob", "project": "web", "removed_role": "viewer"}
        cli.fails(1, "--tenant", "t-mem", "member", "remove", "bob", "--project", "web")
        assert "removed alice" in cli.ok("--tenant", "t-mem", "member", "remove", "alice").out


def test_impersonation_needs_the_permission(cli: Cli) -> None:
    cli.ok("tenant", "create", "t-imp")
    cli.ok("--tenant", "t-imp", "member", "add", "dave", "--role", "member")
    me = cli.js("--tenant", "t-imp", "whoami", "--as", "dave")
    assert me["user"] == "dave" and me["real_user"] == ME and me["roles"] == ["member"]
    # dave cannot impersonate in turn, and cannot manage members
    r = cli.fails(4, "--tenant", "t-imp", "--as", "dave", "member", "add", "erin", "--role", "viewer")
    err = cli("--tenant", "t-imp", "--as", "dave", "member", "add", "erin", "--role", "viewer", "--json").json()["error"]
    assert err["code"] == "permission_denied" and err["permission"] == "members.manage" and err["exit_code"] == 4
    assert "members.manage" in r.err
