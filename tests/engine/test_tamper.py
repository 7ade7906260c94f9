"""Tampering with the DuckDB file while the engine is stopped is found by /v1/audit/verify.

One home, one tenant per kind of tampering: rows of ``audit_log`` changed or
deleted, and ``audit_checkpoints`` rows altered, dropped or re-signed with a
foreign key.  An untouched tenant stays ok.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import duckdb
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.audit import checkpoint_payload

from .helpers import Home, utc_iso

KINDS = (
    "control",
    "details",
    "actor",
    "ts",
    "delete-middle",
    "swap-rows",
    "checkpoint-hash",
    "checkpoint-created-at",
    "checkpoint-deleted",
    "checkpoint-foreign-key",
)


@dataclass
class Tampered:
    h: Home
    tenants: dict[str, str]
    pruned_through: dict[str, int]
    verify: dict[str, dict[str, Any]]


def _tamper(con: duckdb.DuckDBPyConnection, kind: str, t: str) -> None:
    q = {
        "details": 'UPDATE audit_log SET details = \'{"role":"owner"}\' WHERE tenant_id = ? AND seq = 5',
        "actor": "UPDATE audit_log SET actor = 'mallory' WHERE tenant_id = ? AND seq = 5",
        "ts": "UPDATE audit_log SET ts = ts - INTERVAL 1 DAY WHERE tenant_id = ? AND seq = 5",
        "delete-middle": "DELETE FROM audit_log WHERE tenant_id = ? AND seq = 5",
        "checkpoint-hash": "UPDATE audit_checkpoints SET hash = repeat('a', 64) WHERE tenant_id = ?",
        "checkpoint-created-at": (
            "UPDATE audit_checkpoints SET created_at = created_at + INTERVAL 1 SECOND WHERE tenant_id = ?"
        ),
        "checkpoint-deleted": "DELETE FROM audit_checkpoints WHERE tenant_id = ?",
    }.get(kind)
    if q:
        con.execute(q, [t])
    elif kind == "swap-rows":
        # Exchange the contents of seq 5 and 6 (each row keeps a valid hash of its own).
        con.execute(
            "UPDATE audit_log SET seq = CASE seq WHEN 5 THEN 6 ELSE 5 END WHERE tenant_id = ? AND seq IN (5, 6)", [t]
        )
    elif kind == "checkpoint-foreign-key":
        # A checkpoint of the true seq and hash, but signed by a key that is not the engine's.
        seq, h, created = con.execute(
            "SELECT seq, hash, strftime(created_at, '%Y-%m-%dT%H:%M:%S.%fZ')"
            " FROM audit_checkpoints WHERE tenant_id = ?",
            [t],
        ).fetchone()  # type: ignore[misc]
        key = Ed25519PrivateKey.generate()
        from cryptography.hazmat.primitives import serialization

        pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        sig = key.sign(checkpoint_payload(t, int(seq), h, created))
        con.execute(
            "UPDATE audit_checkpoints SET public_key = ?, signature = ? WHERE tenant_id = ?",
            [base64.b64encode(pub).decode(), base64.b64encode(sig).decode(), t],
        )


@pytest.fixture(scope="module")
def tampered() -> Any:
    h = Home()
    try:
        h.start()
        tenants = {k: h.new_tenant(k[:12].strip("-"), {"a1": "viewer", "a2": "viewer", "a3": "viewer"}) for k in KINDS}
        pruned: dict[str, int] = {}
        for k, t in tenants.items():
            if k.startswith("checkpoint"):
                cut = utc_iso()
                h.client(t).post("/v1/members", {"user": "after-cut", "role": "guest"})
                pruned[k] = h.client(t).post("/v1/audit/prune", {"before": cut})["pruned_through_seq"]
                assert h.client(t).post("/v1/audit/verify", {})["ok"] is True
            else:
                assert h.client(t).post("/v1/audit/verify", {})["ok"] is True
        h.stop()
        con = duckdb.connect(str(h.paths.db))
        try:
            for k, t in tenants.items():
                _tamper(con, k, t)
        finally:
            con.close()
        h.start()
        verify = {k: h.client(t).post("/v1/audit/verify", {}) for k, t in tenants.items()}
        yield Tampered(h, tenants, pruned, verify)
    finally:
        h.cleanup()


def test_untouched_tenant_still_verifies(tampered: Tampered) -> None:
    v = tampered.verify["control"]
    assert (
        v["ok"] is True
        and v["first_bad_seq"] is None
        and v["checked"] == tampered.h.head_seq(tampered.tenants["control"])
    )


@pytest.mark.parametrize("kind", ["details", "actor", "ts", "delete-middle", "swap-rows"])
def test_changed_or_missing_row_is_named(tampered: Tampered, kind: str) -> None:
    v = tampered.verify[kind]
    assert v["ok"] is False and v["first_bad_seq"] == 5, v
    assert v["checked"] == 4 and v["reason"]


@pytest.mark.parametrize("kind", ["checkpoint-hash", "checkpoint-created-at", "checkpoint-foreign-key"])
def test_altered_checkpoint_is_detected(tampered: Tampered, kind: str) -> None:
    v = tampered.verify[kind]
    assert v["ok"] is False, v
    assert v["checkpoint_signatures_ok"] is False
    assert v["first_bad_seq"] == tampered.pruned_through[kind] + 1


def test_deleted_checkpoint_is_detected(tampered: Tampered) -> None:
    v = tampered.verify["checkpoint-deleted"]
    assert v["ok"] is False and v["checkpoints"] == 0
    assert v["first_bad_seq"] == 1  # the chain no longer starts at seq 1 nor from a checkpoint


def test_tampering_does_not_stop_the_engine_from_working(tampered: Tampered) -> None:
    h, t = tampered.h, tampered.tenants["details"]
    h.client(t).post("/v1/members", {"user": "later", "role": "guest"})
    v = h.client(t).post("/v1/audit/verify", {})
    assert v["ok"] is False and v["first_bad_seq"] == 5  # still named after new events
    assert h.client(tampered.tenants["control"]).post("/v1/audit/verify", {})["ok"] is True
