"""Behaviour fixed after review: query parsing, suspended reads, owner demotion, resources, errors."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from core.engine.access import Caller
from core.engine.engine import Engine
from core.errors import MusubiError
from core.exports import export_audit
from core.paths import HomePaths
from core.storage.duckdb_store import DuckDBStorage

from .helpers import Home


def test_ascending_is_a_real_boolean(eng: Home) -> None:
    t = eng.new_tenant("asc")
    newest_first = eng.client(t).get("/v1/audit", {"ascending": "false", "limit": 50})
    oldest_first = eng.client(t).get("/v1/audit", {"ascending": "true", "limit": 50})
    assert [e["seq"] for e in newest_first] == sorted((e["seq"] for e in newest_first), reverse=True)
    assert [e["seq"] for e in oldest_first] == sorted(e["seq"] for e in oldest_first)
    status, body = eng.raw("GET", "/v1/audit?ascending=maybe", tenant=t)
    assert status == 400 and "ascending" in body["error"]["message"]


def test_after_seq_must_be_a_number(eng: Home) -> None:
    t = eng.new_tenant("aft")
    status, body = eng.raw("GET", "/v1/audit?after_seq=abc", tenant=t)
    assert status == 400 and "after_seq" in body["error"]["message"]


def test_refused_event_stream_is_audited(eng: Home) -> None:
    t = eng.new_tenant("evs")
    status, _ = eng.raw("GET", "/v1/events", tenant=t, as_user="stranger")
    assert status == 403
    # A stranger (no role in the tenant) is refused before the route: recorded as tenant access.
    denied = eng.audit(t, outcome="denied", action="tenant.access")
    assert denied and denied[-1]["actor"] == "stranger"
    assert denied[-1]["details"]["route"] == "GET /v1/events"


def test_admin_cannot_demote_an_owner(eng: Home) -> None:
    t = eng.new_tenant("dem", members={"olga": "owner", "adam": "admin"})
    status, body = eng.raw("POST", "/v1/members", {"user": "olga", "role": "guest"}, tenant=t, as_user="adam")
    assert status == 403 and body["error"]["permission"] == "tenant.manage"
    roles = {m["user"]: m["role"] for m in eng.client(t).get("/v1/members")}
    assert roles["olga"] == "owner"


def test_suspended_tenant_serves_reads_to_admins_only(eng: Home) -> None:
    t = eng.new_tenant("sus", members={"vic": "viewer", "ada": "admin", "aud": "auditor"})
    eng.client().post(f"/v1/tenants/{t}/suspend", {"reason": "billing"})
    for user, path in (("vic", "/v1/quotas"), ("vic", "/v1/members"), ("vic", "/v1/projects")):
        status, body = eng.raw("GET", path, tenant=t, as_user=user)
        assert status == 403 and body["error"]["code"] == "tenant_suspended", (user, path, body)
    assert eng.raw("GET", "/v1/quotas", tenant=t, as_user="ada")[0] == 200
    assert eng.raw("GET", "/v1/members", tenant=t, as_user="ada")[0] == 200
    assert eng.raw("GET", "/v1/audit", tenant=t, as_user="aud")[0] == 200
    eng.client().post(f"/v1/tenants/{t}/resume")
    assert eng.raw("GET", "/v1/quotas", tenant=t, as_user="vic")[0] == 200


def test_quota_resource_is_the_same_for_success_and_denial(eng: Home) -> None:
    t = eng.new_tenant("res", members={"vic": "viewer"})
    eng.client(t).put("/v1/quotas", {"metric": "tokens", "limit": 500, "period": "hour"})
    eng.raw("PUT", "/v1/quotas", {"metric": "tokens", "limit": 9, "period": "hour"}, tenant=t, as_user="vic")
    events = [e for e in eng.audit(t) if e["action"] == "quota.set" and e["details"].get("period", "hour") == "hour"]
    resources = {e["outcome"]: e["resource"] for e in events}
    assert resources == {"success": "quota:tokens/hour", "denied": "quota:tokens/hour"}


def test_cost_amounts_are_dollar_strings_in_refusals(eng: Home) -> None:
    t = eng.new_tenant("usd")
    eng.client(t).put("/v1/quotas", {"metric": "cost_usd", "limit": "0.50", "period": "day"})
    status, body = eng.raw(
        "POST",
        "/v1/usage",
        {"model": "m", "input_tokens": 1, "output_tokens": 1, "cost_usd": "0.75"},
        tenant=t,
    )
    assert status == 429
    q = body["error"]["quota"]
    assert (q["limit"], q["requested"], q["used"]) == ("0.500000", "0.750000", "0.000000")


def test_export_honours_limit(eng: Home, tmp_path: Path) -> None:
    t = eng.new_tenant("lim")
    out = tmp_path / "a.jsonl"
    res = export_audit(eng.client(t), "jsonl", {"limit": 2}, str(out))
    assert res["events"] == 2 and len(out.read_text().splitlines()) == 2


def _scratch_engine() -> Engine:
    """An in-process engine on a fresh temporary home (for ops no route can make crash)."""
    paths = HomePaths(Path(tempfile.mkdtemp(prefix="mh", dir="/tmp")))
    paths.ensure()
    return Engine(paths, DuckDBStorage(paths.db))


async def _started(engine: Engine) -> None:
    engine.runner.committer.start()
    engine.tenancy.bootstrap("root")
    await engine.runner.committer.seal()


def test_an_op_that_crashes_leaves_no_half_write_and_is_audited_as_error() -> None:
    """A bug inside an operation: its queued writes are dropped, the chain stays whole."""
    engine = _scratch_engine()

    async def scenario() -> dict:
        await _started(engine)
        ctx = Caller("root", "root", "default")
        head = engine.runner.state.head("default")

        def buggy() -> None:
            engine.runner.audit("default", ctx, "member.add", "member:x")  # queued ...
            raise RuntimeError("boom")  # ... then a bug

        with pytest.raises(MusubiError) as ei:
            await engine.runner.run(ctx, "member.add", "member:x", buggy)
        assert ei.value.code == "internal"
        assert engine.runner.state.head("default")[0] == head[0] + 1  # only the 'error' event
        res = await engine.audit_ops.audit_verify(ctx)
        rows = engine.runner.storage.audit_list(
            __import__("core.storage.base", fromlist=["AuditQuery"]).AuditQuery("default", limit=1)
        )
        await engine.runner.committer.close()
        return {"verify": res, "last": rows[0]}

    out = asyncio.run(scenario())
    engine.runner.storage.close()
    assert out["verify"]["ok"] is True
    assert out["last"]["outcome"] == "error" and out["last"]["action"] == "member.add"
    assert "boom" in out["last"]["details"]["error"]


def test_a_crashing_op_rewinds_every_chain_it_touched() -> None:
    """The undo log restores each tenant's head, including a tenant that had no event yet."""
    engine = _scratch_engine()

    async def scenario() -> dict:
        await _started(engine)
        ctx = Caller("root", "root", "default")
        await engine.runner.run(ctx, "tenant.create", "tenant:two", lambda: engine.tenancy.tenant_create(ctx, "two"))
        before = {t: engine.runner.state.head(t) for t in ("default", "two")}
        assert "fresh" not in engine.runner.state.heads

        def buggy() -> None:
            engine.runner.audit("two", ctx, "member.add", "member:x")
            engine.runner.audit("two", ctx, "member.add", "member:y")
            engine.runner.audit("fresh", ctx, "member.add", "member:z")
            raise RuntimeError("boom")

        with pytest.raises(MusubiError):
            await engine.runner.run(ctx, "member.add", "member:x", buggy)
        after = {t: engine.runner.state.head(t) for t in ("default", "two")}
        fresh = "fresh" in engine.runner.state.heads
        results = [await engine.audit_ops.audit_verify(Caller("root", "root", t)) for t in ("default", "two")]
        await engine.runner.committer.close()
        return {"before": before, "after": after, "fresh": fresh, "verify": results}

    out = asyncio.run(scenario())
    engine.runner.storage.close()
    assert out["after"]["two"] == out["before"]["two"]
    assert out["after"]["default"][0] == out["before"]["default"][0] + 1  # only the 'error' event
    assert out["fresh"] is False
    assert all(v["ok"] for v in out["verify"])


def test_an_op_that_runs_while_a_failed_write_is_rebuilt_is_refused() -> None:
    """Rebuilding state after a failed write awaits the database; an op in that window saw the
    failed state (its audit event chains on the refused one), so its write must be refused."""
    import threading

    from core.errors import StorageError

    engine = _scratch_engine()
    real_apply = engine.runner.storage.apply
    hooks: dict = {}

    def slow_apply(mutations, meta=None):  # type: ignore[no-untyped-def]
        if hooks.get("during"):
            ran = threading.Event()
            hooks["loop"].call_soon_threadsafe(hooks.pop("during"), ran)
            ran.wait(5)
        return real_apply(mutations, meta=meta)

    engine.runner.storage.apply = slow_apply  # type: ignore[method-assign]

    async def scenario() -> dict:
        await _started(engine)
        ctx = Caller("root", "root", "default")
        await engine.runner.run(ctx, "usage.record", "model:m", lambda: engine.usage.usage_record(ctx, "m", 7, 0))
        results: dict = {}

        def start_b(ran: threading.Event) -> None:
            async def op_b() -> None:
                try:
                    record = lambda: engine.usage.usage_record(ctx, "m", 5, 0)  # noqa: E731
                    await engine.runner.run(ctx, "usage.record", "model:m", record)
                    results["b"] = "ok"
                except StorageError as exc:
                    results["b"] = exc.code
            hooks["b"] = asyncio.ensure_future(op_b())
            hooks["loop"].call_soon(ran.set)  # B's op has run and sealed by now

        hooks["loop"] = asyncio.get_running_loop()
        hooks["during"] = start_b
        real_write = engine.runner.journal.write
        state = {"fail": True}

        def failing_write(data: bytes) -> None:
            if state.pop("fail", False):
                raise OSError(5, "Input/output error")
            real_write(data)

        engine.runner.journal.write = failing_write  # type: ignore[method-assign]
        with pytest.raises(StorageError):
            await engine.runner.run(ctx, "usage.record", "model:m", lambda: engine.usage.usage_record(ctx, "m", 100, 0))
        await hooks["b"]
        await engine.runner.run(ctx, "usage.record", "model:m", lambda: engine.usage.usage_record(ctx, "m", 1, 0))
        tokens = next(q for q in engine.usage.quota_status(ctx)["quotas"] if q["metric"] == "tokens")["used"]
        res = await engine.audit_ops.audit_verify(ctx)
        await engine.runner.committer.close()
        return {"b": results.get("b"), "tokens": tokens, "verify": res}

    out = asyncio.run(scenario())
    engine.runner.storage.close()
    assert out["b"] == "write_failed"
    assert out["tokens"] == 8  # 7 before, 1 after; neither the failed 100 nor B's 5
    assert out["verify"]["ok"] is True, out["verify"]


def test_a_killed_sync_helper_is_replaced_and_writes_go_on(eng: Home) -> None:
    """The process that fsyncs the journal dies: the engine starts another, nothing is lost."""
    import os
    import signal

    from .helpers import wait_gone

    t = eng.new_tenant("syh")
    c = eng.client(t)
    c.post("/v1/usage", {"model": "m", "input_tokens": 3})
    helper = eng.client().get("/v1/health")["sync_helper_pid"]
    assert isinstance(helper, int)
    os.kill(helper, signal.SIGKILL)
    wait_gone(helper)
    for _ in range(3):
        try:
            c.post("/v1/usage", {"model": "m", "input_tokens": 4})
            break
        except MusubiError as exc:  # a write caught mid-sync is refused whole, never half-done
            assert exc.code == "write_failed", exc
    after = eng.client().get("/v1/health")["sync_helper_pid"]
    assert after not in (None, helper)
    assert eng.quota(t, "tokens", "day")["used"] == 7
    assert c.post("/v1/audit/verify", {})["ok"] is True


def test_verify_against_an_exported_checkpoint_catches_a_cut_tail(home: Home, tmp_path: Path) -> None:
    import duckdb

    home.start()
    t = home.new_tenant("cut")
    c = home.client(t)
    for i in range(5):
        c.post("/v1/usage", {"model": "m", "input_tokens": i, "output_tokens": 0})
    anchor = c.post("/v1/audit/checkpoint", {})
    assert c.post("/v1/audit/verify", {"anchor": anchor})["ok"] is True
    home.stop()
    con = duckdb.connect(str(home.paths.db))
    con.execute("DELETE FROM audit_log WHERE tenant_id = ? AND seq >= ?", [t, anchor["seq"] - 1])
    con.close()
    home.start()
    plain = home.client(t).post("/v1/audit/verify", {})
    anchored = home.client(t).post("/v1/audit/verify", {"anchor": anchor})
    assert plain["ok"] is True  # a cut tail is invisible to the chain alone ...
    assert anchored["ok"] is False and anchored["first_bad_seq"] == anchor["seq"] - 1  # ... but not to the anchor
    forged = dict(anchor, hash="0" * 64)
    status, body = home.raw("POST", "/v1/audit/verify", {"anchor": forged}, tenant=t)
    assert status == 400 and "anchor" in body["error"]["message"]


def test_audit_list_from_memory_equals_the_table(home: Home) -> None:
    """Newest-first listings come from the in-memory tail; after a restart, from DuckDB: same answers."""
    home.start()
    t = home.new_tenant("mem", members={"vic": "viewer"})
    c = home.client(t)
    for i in range(6):
        c.post("/v1/usage", {"model": f"m{i % 2}", "input_tokens": i, "output_tokens": 1})
    home.raw("PUT", "/v1/quotas", {"metric": "tokens", "limit": 1, "period": "day"}, tenant=t, as_user="vic")
    queries = [
        {"limit": 5},
        {"limit": 100},
        {"action": "usage.*", "limit": 3},
        {"outcome": "denied", "limit": 10},
        {"actor": "vic", "limit": 10},
        {"after_seq": 4, "limit": 100},
    ]
    before = [c.get("/v1/audit", q) for q in queries]
    home.stop()
    home.start()
    after = [home.client(t).get("/v1/audit", q) for q in queries]
    assert before == after
    assert any(before) and before[3] and before[3][0]["outcome"] == "denied"


def test_a_failed_journal_write_refuses_cleanly_and_the_engine_recovers() -> None:
    """Disk trouble on the journal: the write fails as write_failed, nothing half-done, later writes work."""
    from core.errors import StorageError

    d = Path(tempfile.mkdtemp(prefix="mh", dir="/tmp"))
    paths = HomePaths(d)
    paths.ensure()
    engine = Engine(paths, DuckDBStorage(paths.db))
    import os

    import core.engine.journal as journal_module

    fail = {"n": 1}

    class FlakyOS:
        """os for the journal module, whose write fails once part-way, as on a full disk."""

        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

        def write(self, fd: int, data: bytes) -> int:
            if fail["n"]:
                fail["n"] -= 1
                os.write(fd, bytes(data[: len(data) // 2]))  # a torn write ...
                raise OSError(28, "No space left on device")  # ... then the error
            return os.write(fd, data)

    journal_module.os = FlakyOS()  # type: ignore[assignment]

    async def scenario() -> dict:
        engine.runner.committer.start()
        engine.tenancy.bootstrap("root")
        fail["n"] = 0
        await engine.runner.committer.seal()
        await engine.runner.committer.sync()
        engine.runner.journal.truncate()  # all in DuckDB: the failing write is the journal's first bytes
        ctx = Caller("root", "root", "default")
        used_before = engine.usage.quota_status(ctx)["quotas"]
        fail["n"] = 1
        with pytest.raises(StorageError) as ei:
            await engine.runner.run(ctx, "usage.record", "model:m", lambda: engine.usage.usage_record(ctx, "m", 10, 0))
        assert ei.value.code == "write_failed" and "disk" in ei.value.message
        assert engine.usage.quota_status(ctx)["quotas"] == used_before  # state rebuilt: nothing charged
        await engine.runner.run(ctx, "usage.record", "model:m", lambda: engine.usage.usage_record(ctx, "m", 7, 0))
        # No torn line was left in front of the write that followed: a replay finds it.
        groups = engine.runner.journal.read()
        journaled = [m.row.get("tokens") for _n, ms in groups for m in ms if m.table == "usage_ledger"]
        res = await engine.audit_ops.audit_verify(ctx)
        tokens = next(q for q in engine.usage.quota_status(ctx)["quotas"] if q["metric"] == "tokens")
        await engine.runner.committer.close()
        return {"verify": res, "tokens": tokens["used"], "journaled": journaled}

    try:
        out = asyncio.run(scenario())
    finally:
        journal_module.os = os
    engine.runner.storage.close()
    assert out["verify"]["ok"] is True
    assert out["tokens"] == 7
    assert out["journaled"] == [7], out
