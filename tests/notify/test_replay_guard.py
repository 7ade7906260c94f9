"""Slack's replay guard (core/integrations/replay.py, migration 012): claims, release, pruning, a real DuckDB."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from core.integrations.replay import TABLE, ReplayGuard
from core.storage.base import Delete, Insert
from core.storage.duckdb_store import DuckDBStorage

T0 = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_signature_is_claimed_once_and_a_released_claim_can_be_claimed_again() -> None:
    guard = ReplayGuard(None, clock=Clock())
    first = guard.claim("t1", "slack", "v0=aa", T0)
    assert first is not None
    assert guard.claim("t1", "slack", "v0=aa", T0) is None  # a replay, even before the first is durable
    assert guard.claim("t2", "slack", "v0=aa", T0) is not None  # another tenant's signing secret, its own guard
    first.release()  # its handling failed before anything was durable: the vendor's retry is not a replay
    again = guard.claim("t1", "slack", "v0=aa", T0)
    assert again is not None
    again.durable = True
    again.release()  # a durable claim is never forgotten
    assert guard.claim("t1", "slack", "v0=aa", T0) is None


def test_rows_past_the_window_are_pruned_with_the_next_write() -> None:
    clock = Clock()
    guard = ReplayGuard(None, clock=clock)
    old = guard.claim("t1", "slack", "v0=old", T0 - 10)
    assert old is not None
    future = guard.claim("t1", "slack", "v0=future", T0 + 200)  # up to 5 minutes ahead is accepted too
    assert future is not None
    clock.now = T0 + 295  # old: 305 s past its timestamp; future: still inside
    new = guard.claim("t1", "slack", "v0=new", T0 + 290)
    assert new is not None
    muts = guard.mutations(new)
    deleted = {m.where["signature"] for m in muts if isinstance(m, Delete)}
    assert deleted == {"v0=old", "v0=new"}  # the expired row, and the new row's own upsert delete
    assert [m.row["signature"] for m in muts if isinstance(m, Insert)] == ["v0=new"]
    assert set(guard.seen) == {("t1", "slack", "v0=future"), ("t1", "slack", "v0=new")}


def test_the_table_survives_a_reopen_and_expired_rows_are_deleted(tmp_path: Path) -> None:
    """Through DuckDB: what a guard wrote is refused by the next guard; what expired is deleted from the table."""
    db = tmp_path / "db.duckdb"
    clock = Clock()
    st = DuckDBStorage(db)
    try:
        guard = ReplayGuard(None, st.load(datetime.now()).integrations["inbound_replay"], clock=clock)
        for sig, when in (("v0=early", T0 - 200), ("v0=late", T0)):
            claim = guard.claim("t1", "slack", sig, when)
            assert claim is not None
            st.apply(guard.mutations(claim))
    finally:
        st.close()
    clock.now = T0 + 150  # early: 350 s past its timestamp (expired); late: 150 s (a replay would still verify)
    st = DuckDBStorage(db)
    try:
        guard = ReplayGuard(None, st.load(datetime.now()).integrations[TABLE], clock=clock)
        assert guard.claim("t1", "slack", "v0=late", T0) is None  # refused as a replay after the "restart"
        assert set(guard.seen) == {("t1", "slack", "v0=late")}
        fresh = guard.claim("t1", "slack", "v0=next", T0 + 140)
        assert fresh is not None
        st.apply(guard.mutations(fresh))
        rows = st.con.execute(f"SELECT signature, request_ts FROM {TABLE} ORDER BY signature").fetchall()
    finally:
        st.close()
    assert [r[0] for r in rows] == ["v0=late", "v0=next"]  # the expired row is gone from the table
    assert rows[0][1] == datetime(2027, 1, 15, 8, 0)  # the request's timestamp, naive UTC


def test_a_teams_activity_is_kept_while_its_token_is_accepted() -> None:
    """Not 5 minutes like a Slack signature: until the token's exp plus the skew it is accepted with."""
    from core.integrations.botauth import SKEW_S
    from core.integrations.teamsin import MAX_KEEP_S, replay_ts

    clock = Clock()
    guard = ReplayGuard(None, clock=clock)
    exp = int(T0) + 3600  # a Bot Connector token lives about an hour
    claim = guard.claim("t1", "teams", '["msteams", "19:c", "1:a"]', replay_ts(exp, guard.window_s, T0))
    assert claim is not None
    clock.now = exp + SKEW_S  # the last moment the token verifies: still a replay
    other = guard.claim("t1", "teams", '["msteams", "19:c", "1:b"]', replay_ts(exp, guard.window_s, T0))
    assert other is not None
    guard.mutations(other)  # prunes what left the window
    assert guard.claim("t1", "teams", '["msteams", "19:c", "1:a"]', 0) is None
    clock.now = exp + SKEW_S + 1  # past it the token is refused as expired, so the row may go
    assert [m for m in guard.mutations(other) if isinstance(m, Delete) and m.where["signature"].endswith('"1:a"]')]
    far = replay_ts(10**12, guard.window_s, T0)  # an absurd exp: kept at most MAX_KEEP_S, a storable time
    assert far == int(T0) + MAX_KEEP_S + SKEW_S - guard.window_s
    assert replay_ts(f"{exp}.5", guard.window_s, T0) == replay_ts(exp, guard.window_s, T0)  # a float exp, as text
