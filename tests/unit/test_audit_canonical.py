"""Stored ``details`` must be exactly the canonical text: the same value written otherwise is a change.

The engine's ``audit verify`` (core.audit) and the stand-alone script of docs/schema.md report it
alike (tests/docs/test_schema_snippets.py runs both on a real database).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from core.audit import CHANGED, GENESIS_HASH, NOT_CANONICAL, format_ts, make_event, verify_rows


def _rows(details: list[dict[str, object]]) -> list[list[object]]:
    prev, out = GENESIS_HASH, []
    for i, d in enumerate(details, 1):
        e = make_event("acme", i, datetime(2026, 1, 1) + timedelta(seconds=i), "root", "member.add", f"member:u{i}",
                       "success", d, prev)
        out.append([e.seq, format_ts(e.ts), e.actor, e.action, e.resource, e.outcome, e.details, e.prev_hash, e.hash])
        prev = e.hash
    return out


@pytest.mark.parametrize(
    "stored,reason",
    [
        ('{"role": "owner"}', NOT_CANONICAL),  # a space: same value, other text
        ('{ "role":"owner" }', NOT_CANONICAL),
        ('{"role":"viewer","role":"owner"}', NOT_CANONICAL),  # DuckDB reads 'viewer', Python 'owner'
        ('{"role":"\\u006fwner"}', NOT_CANONICAL),  # an escape for a plain letter
        ('{"role":"admin"}', CHANGED),  # another value, canonical text
        ('{"role": "admin"}', CHANGED),  # another value, other text too: a change of contents first
        ("not json", CHANGED),
    ],
)
def test_a_stored_details_text_other_than_the_canonical_one_is_named(stored: str, reason: str) -> None:
    rows = _rows([{"role": "viewer"}, {"role": "owner"}, {"role": "guest"}])
    assert json.loads(rows[1][6]) == {"role": "owner"} and rows[1][6] == '{"role":"owner"}'
    rows[1][6] = stored
    res = verify_rows("acme", [tuple(r) for r in rows])  # type: ignore[misc]
    assert (res.first_bad_seq, res.reason) == (2, reason)


def test_the_canonical_text_verifies() -> None:
    res = verify_rows("acme", [tuple(r) for r in _rows([{"b": 1, "a": "ü"}, {}])])  # type: ignore[misc]
    assert res.ok and res.checked == 2
