"""Facts the engine docs state about the journal, the audit log and suspended tenants.

Static facts (file names, engine_meta keys, the in-memory tail, quota resources) are compared
with the code; behaviour (who may read a suspended tenant, the "no role" permission string,
``ascending``, the verify answer, the after-a-crash recipe for auditors) with a real engine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from core.client import EngineClient, ping
from core.engine.access import ADMIN_READERS
from core.engine.journal import APPLIED_KEY
from core.engine.runner import RECENT_EVENTS
from core.errors import BadRequest, PermissionDenied, TenantSuspended
from core.paths import HomePaths
from core.quotas import quota_resource
from core.rbac import BUILTIN_ROLES
from tests.engine.helpers import wait_gone

from .engine_home import client, new_home, remove_home, running_engine
from .test_schema_snippets import snippet

DOCS = Path(__file__).resolve().parents[2] / "docs"


def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The body under ``heading`` (a full heading line) up to the next heading of its level or above."""
    level = len(heading) - len(heading.lstrip("#"))
    start = text.index(heading + "\n") + len(heading) + 1
    nxt = re.search(rf"^#{{1,{level}}} ", text[start:], re.M)
    return text[start : start + nxt.start()] if nxt else text[start:]


# -- static facts -----------------------------------------------------------------------------


def test_home_layout_names_every_file_of_the_home() -> None:
    paths = HomePaths(Path("/h"))
    table = section(doc("architecture.md"), "## One engine per home")
    for attr in ("db", "socket", "journal", "pidfile", "engine_log", "signing_key", "tenants"):
        rel = getattr(paths, attr).relative_to(paths.home)
        assert f"`{rel}" in table, f"architecture.md's home table lacks {rel} (HomePaths.{attr})"


def test_journal_file_and_meta_key_match_the_code() -> None:
    journal = HomePaths(Path("/h")).journal.name
    schema = doc("schema.md")
    assert f"`{journal}`" in section(schema, "### Is the file complete?")
    meta = section(schema, "### `engine_meta`")
    assert f"| `{APPLIED_KEY}` |" in meta, "schema.md's engine_meta keys differ from the journal's"
    durability = section(doc("audit.md"), "## Durability")
    assert journal in durability and f"engine_meta.{APPLIED_KEY}" in durability
    gc = section(doc("architecture.md"), "## Group commit and the write-ahead journal")
    assert f"engine_meta.{APPLIED_KEY}" in gc and f"$MUSUBI_HOME/{journal}" in gc


def test_in_memory_tail_size_matches_the_code() -> None:
    for name in ("architecture.md", "audit.md", "api.md"):
        assert f"newest {RECENT_EVENTS}" in doc(name), (
            f"{name} does not give the tail size {RECENT_EVENTS}"
        )


def test_quota_resources_match_the_code() -> None:
    audit = doc("audit.md")
    assert f"`{quota_resource('METRIC', 'PERIOD')}`" in audit
    assert f"`{quota_resource('METRIC', 'PERIOD', 'NAME')}`" in audit
    for name in ("audit.md", "schema.md"):
        text = doc(name)
        assert f"`{quota_resource('tokens', 'day')}`" in text, name
        assert f"`{quota_resource('cost_usd', 'day', 'alice')}`" in text, name


def test_benchmarks_named_in_architecture_exist() -> None:
    text = section(doc("architecture.md"), "### Measuring it")
    named = set(re.findall(r"`(benchmarks/[\w/]+\.py)`", text))
    assert {
        "benchmarks/run_all.py",
        "benchmarks/bench_engine_load.py",
        "benchmarks/bench_audit.py",
    } <= named
    root = DOCS.parent
    assert all((root / n).is_file() for n in named), named
    assert "benchmarks/run_all.py" in (root / "Makefile").read_text(encoding="utf-8")


# -- a running engine -------------------------------------------------------------------------


@dataclass
class Live:
    paths: HomePaths
    tenant: str
    by_role: dict[str, str]  # built-in role -> a user bound with it


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    paths = new_home()
    tenant = "docs-facts"
    by_role = {role: f"u-{role}" for role in BUILTIN_ROLES}
    try:
        with running_engine(paths):
            client(paths).post("/v1/tenants", {"name": tenant})
            t = client(paths, tenant)
            for role, user in by_role.items():
                t.post("/v1/members", {"user": user, "role": role})
            client(paths).post(
                "/v1/members", {"user": "sys-owner", "role": "owner"}
            )  # in 'default'
            yield Live(paths, tenant, by_role)
    finally:
        remove_home(paths)


def as_user(live: Live, user: str) -> EngineClient:
    return client(live.paths, live.tenant, as_user=user)


def test_no_role_permission_string_is_the_documented_one(live: Live) -> None:
    with pytest.raises(PermissionDenied) as ei:
        as_user(live, "stranger").get("/v1/members")
    perm = ei.value.extra["permission"]
    assert f'`permission: "{perm}"`' in section(doc("rbac.md"), "## Denials")
    assert f'`permission: "{perm}"`' in section(doc("api.md"), "### GET /v1/projects")
    assert f"`{perm}`" in section(doc("audit.md"), "## What is audited")


def _documented_admin_roles() -> set[str]:
    m = re.search(
        r"among the built-in roles are (.*?);",
        section(doc("rbac.md"), "## Suspended tenants"),
        re.S,
    )
    assert m, "rbac.md no longer names the built-in roles that keep admin reads"
    return {r for r in BUILTIN_ROLES if re.search(rf"\b{r}\b", m.group(1))}


def test_suspended_tenant_reads_follow_the_doc(live: Live) -> None:
    admin_roles = {r for r, perms in BUILTIN_ROLES.items() if set(perms) & ADMIN_READERS}
    assert _documented_admin_roles() == admin_roles
    client(live.paths).post(f"/v1/tenants/{live.tenant}/suspend", {"reason": "docs"})
    try:
        for role, user in live.by_role.items():
            c = as_user(live, user)
            if role in admin_roles:
                assert c.get("/v1/members"), role
            else:
                with pytest.raises(TenantSuspended):
                    c.get("/v1/members")
                with pytest.raises(TenantSuspended):
                    c.get("/v1/events")  # the event stream checks it too
        with pytest.raises(TenantSuspended):  # every change is refused, owners included
            as_user(live, live.by_role["owner"]).put(
                "/v1/quotas", {"metric": "tokens", "limit": 5, "period": "hour"}
            )
        system = client(live.paths, as_user="sys-owner")  # an owner of 'default', no role here
        assert system.get(f"/v1/tenants/{live.tenant}")["status"] == "suspended"
        with pytest.raises(TenantSuspended):
            client(live.paths, live.tenant, as_user="sys-owner").get("/v1/members")
    finally:
        client(live.paths).post(f"/v1/tenants/{live.tenant}/resume", {})
    assert as_user(live, live.by_role["viewer"]).get("/v1/members")


def test_ascending_accepts_exactly_the_documented_words(live: Live) -> None:
    text = section(doc("api.md"), "### GET /v1/audit")
    m = re.search(r"`ascending` \((.*?)\)\. Any other", text, re.S)
    assert m, "api.md no longer lists the words ascending accepts"
    oldest, newest = m.group(1).split(";", 1)
    words = {
        True: re.findall(r"`([^`]+)`", oldest),
        False: re.findall(r"`([^`]+)`", newest),
    }
    assert words[True] and words[False]
    c = client(live.paths, live.tenant)
    for asc, ws in words.items():
        for w in ws:
            seqs = [e["seq"] for e in c.get("/v1/audit", {"ascending": w.upper(), "limit": 5})]
            assert len(seqs) > 1 and seqs == sorted(seqs, reverse=not asc), (w, seqs)
    with pytest.raises(BadRequest, match="ascending"):
        c.get("/v1/audit", {"ascending": "maybe"})
    with pytest.raises(BadRequest, match="after_seq"):
        c.get("/v1/audit", {"after_seq": "abc"})


def test_verify_answer_has_the_documented_keys(live: Live) -> None:
    text = section(doc("api.md"), "### POST /v1/audit/verify")
    examples = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.S)]
    c = client(live.paths, live.tenant)
    plain = c.post("/v1/audit/verify", {})
    anchor = c.post("/v1/audit/checkpoint", {})
    anchored = c.post("/v1/audit/verify", {"anchor": anchor})
    answers = [e for e in examples if "ok" in e]
    assert len(answers) >= 3
    for e in answers:
        assert set(e) == set(plain), f"documented keys {sorted(e)} != engine's {sorted(plain)}"
    assert plain["anchor_seq"] is None and anchored["anchor_seq"] == anchor["seq"]
    with pytest.raises(BadRequest):
        c.post("/v1/audit/verify", {"anchor": dict(anchor, hash="0" * 64)})


# -- after a crash: the auditors' recipe ------------------------------------------------------


def test_after_kill9_start_and_stop_gives_a_complete_file(tmp_path: Path) -> None:
    """audit.md/schema.md: after a crash the journal holds acknowledged writes; start+stop applies them."""
    assert "start and stop the engine once" in section(doc("audit.md"), "## Durability")
    script = tmp_path / "verify_chain.py"
    script.write_text(snippet("verify-chain"), encoding="utf-8")
    paths = new_home()
    tenant = "docs-crash"
    try:
        with running_engine(paths):
            client(paths).post("/v1/tenants", {"name": tenant})
            t = client(paths, tenant)
            for i in range(20):
                t.post("/v1/members", {"user": f"m{i}", "role": "viewer"})
            head = int(t.get(f"/v1/tenants/{tenant}")["audit_head_seq"])
            info = ping(paths)
            assert info
            os.kill(int(info["pid"]), signal.SIGKILL)
            wait_gone(int(info["pid"]))
            # Acknowledged writes are in the journal until an engine applies them.
            assert paths.journal.stat().st_size > 0
        with running_engine(paths):
            pass  # start (replays the journal) and stop (applies, empties it)
        assert paths.journal.stat().st_size == 0
        con = duckdb.connect(str(paths.db), read_only=True)
        try:
            stored = con.execute(
                "SELECT max(seq) FROM audit_log WHERE tenant_id = ?", [tenant]
            ).fetchone()
            applied = con.execute(
                "SELECT value FROM engine_meta WHERE key = ?", [APPLIED_KEY]
            ).fetchone()
        finally:
            con.close()
        assert stored == (head,)
        assert applied and int(applied[0]) > 0
        p = subprocess.run(
            [sys.executable, str(script), str(paths.db), tenant],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == 0 and p.stdout.startswith("OK: "), p.stdout + p.stderr
        assert f"head seq {head}," in p.stdout
    finally:
        remove_home(paths)
