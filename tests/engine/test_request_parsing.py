"""Request bodies are parsed strictly: wrong JSON types, deep nesting, repeated keys, NaN, huge
numbers and oversized bodies are 4xx answers in the JSON error shape, never a 500, and change nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .helpers import Home


def _deep(n: int) -> bytes:
    return b'{"name": ' + b"[" * n + b"]" * n + b"}"


RAW: dict[str, tuple[str, str, bytes, str]] = {
    # name: (method, path, raw body, what the message says)
    "nested-1000": ("POST", "/v1/tenants", _deep(1000), "nested more than"),
    "nested-100000": ("POST", "/v1/tenants", _deep(100_000), "nested more than"),
    "duplicate-key": ("POST", "/v1/usage", b'{"model": "m", "input_tokens": 1, "input_tokens": 99}', "repeats the key 'input_tokens'"),
    "duplicate-nested-key": ("POST", "/v1/audit/export", b'{"format": "jsonl", "filters": {"a": 1, "a": 2}}', "repeats the key 'a'"),
    "nan": ("POST", "/v1/usage", b'{"model": "m", "input_tokens": NaN}', "NaN, which is not JSON"),
    "infinity": ("PUT", "/v1/quotas", b'{"metric": "tokens", "period": "day", "limit": -Infinity}', "-Infinity"),
    "float-overflow": ("POST", "/v1/usage", b'{"model": "m", "cost_usd": 1e400}', "too large"),
    "int-5000-digits": ("POST", "/v1/usage", b'{"model": "m", "input_tokens": ' + b"9" * 5000 + b"}", "no field can hold"),
}


TYPED: dict[str, tuple[str, str, dict[str, Any], str]] = {
    # name: (method, path, body, the field the 400 names)
    "project-path-int": ("POST", "/v1/projects", {"path": 1}, "path"),
    "project-name-list": ("POST", "/v1/projects", {"path": "/tmp", "name": ["x"]}, "name"),
    "quota-alerts-zero": ("PUT", "/v1/quotas", {"metric": "tokens", "limit": 5, "period": "day", "alerts": 0}, "alert"),
    "quota-alerts-object": ("PUT", "/v1/quotas", {"metric": "tokens", "limit": 5, "period": "day", "alerts": {"a": 1}}, "alert"),
    "quota-alerts-nested": ("PUT", "/v1/quotas", {"metric": "tokens", "limit": 5, "period": "day", "alerts": [[0.5]]}, "alert"),
    "quota-alerts-too-many": ("PUT", "/v1/quotas", {"metric": "tokens", "limit": 5, "period": "day", "alerts": [0.1] * 17}, "alert"),
    "quota-user-int": ("PUT", "/v1/quotas", {"metric": "tokens", "limit": 5, "period": "day", "user": 0}, "user"),
    "suspend-reason-object": ("POST", "/v1/tenants/{t}/suspend", {"reason": {"why": 1}}, "reason"),
    "role-description-list": ("POST", "/v1/roles", {"name": "r1", "permissions": ["specs.read"], "description": [1]}, "description"),
    "role-permission-int": ("POST", "/v1/roles", {"name": "r1", "permissions": [1]}, "permissions"),
    "member-project-int": ("POST", "/v1/members", {"user": "u1", "role": "viewer", "project": 7}, "project"),
    "settle-model-object": ("POST", "/v1/reservations/{rid}/settle", {"input_tokens": 1, "model": {"m": 1}}, "model"),
    "settle-model-long": ("POST", "/v1/reservations/{rid}/settle", {"input_tokens": 1, "model": "m" * 201}, "model"),
    "record-model-list": ("POST", "/v1/usage", {"model": ["m"], "input_tokens": 1}, "model"),
    "export-filter-list": ("POST", "/v1/audit/export", {"format": "jsonl", "path": "/tmp/x.jsonl", "filters": {"actor": ["a"]}}, "filters"),
    "checkpoint-path-int": ("POST", "/v1/audit/checkpoint", {"path": 5}, "path"),
    "reserve-tokens-float": ("POST", "/v1/reservations", {"tokens": 1.5}, "tokens"),
    "reserve-ttl-bool": ("POST", "/v1/reservations", {"tokens": 1, "ttl_s": True}, "ttl_s"),
}


@pytest.fixture(scope="module")
def tenant(eng: Home) -> str:
    return eng.new_tenant("rp", {"ann": "member"})


def _snapshot(eng: Home, t: str) -> tuple[Any, ...]:
    c = eng.client(t)
    return (eng.head_seq(t), eng.head_seq("default"), c.get("/v1/members"), c.get("/v1/roles"), c.get("/v1/projects"),
            [(q["id"], q["limit"], q["used"], q["alerts"]) for q in c.get("/v1/quotas")["quotas"]],
            [r["reservation_id"] for r in c.get("/v1/reservations")], eng.client().get(f"/v1/tenants/{t}")["status"])


@pytest.mark.parametrize("name", list(RAW))
def test_malformed_bodies_are_400s(eng: Home, tenant: str, name: str) -> None:
    method, path, raw, says = RAW[name]
    before = _snapshot(eng, tenant)
    status, got = eng.raw(method, path, raw_body=raw, tenant=tenant)
    assert status == 400, got
    assert got["error"]["code"] == "bad_request" and says in got["error"]["message"], got
    assert _snapshot(eng, tenant) == before


@pytest.mark.parametrize("name", list(TYPED))
def test_wrong_json_types_are_400s_naming_the_field(eng: Home, tenant: str, name: str) -> None:
    method, path, body, field = TYPED[name]
    if "{rid}" in path:
        rid = eng.client(tenant).post("/v1/reservations", {"tokens": 1})["reservation_id"]
        path = path.replace("{rid}", rid)
    before = _snapshot(eng, tenant)
    status, got = eng.raw(method, path.replace("{t}", tenant), body, tenant=tenant)
    assert status == 400, got
    err = got["error"]
    assert err["code"] == "bad_request" and err.get("field") == field, err
    assert "Traceback" not in err["message"] and "internal" not in err["message"]
    assert _snapshot(eng, tenant) == before


def test_an_oversized_body_gets_the_json_error_shape(eng: Home, tenant: str) -> None:
    before = _snapshot(eng, tenant)
    big = json.dumps({"model": "m", "input_tokens": 1, "pad": "x" * (2 << 20)}).encode()
    status, got = eng.raw("POST", "/v1/usage", raw_body=big, tenant=tenant)
    assert status == 413, got
    assert isinstance(got, dict) and got["error"]["code"] == "body_too_large", got
    assert "1,048,576 bytes" in got["error"]["message"]
    assert _snapshot(eng, tenant) == before


def test_engine_is_whole_after_the_bad_bodies(eng: Home, tenant: str) -> None:
    c = eng.client(tenant)
    assert c.post("/v1/usage", {"model": "fine", "input_tokens": 1})["recorded"] is True
    assert c.post("/v1/audit/verify", {})["ok"] is True
