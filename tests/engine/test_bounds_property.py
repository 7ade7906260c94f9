"""Property test: generated junk on every write route never gets a 500 nor bricks the home.

The routes come from the live aiohttp route table (``build_app``), so a new write route is
covered without touching this file.  Each gets a few dozen bodies mixing a plausible request
with generated values in its fields (huge and negative integers, 1e30, NaN and infinities,
numbers as text, wrong types, nested structures, unicode), plus junk path parameters and
query strings.  Every answer must be a success or a 4xx in the JSON error shape.  Afterwards
the engine must stop gracefully (nothing unappliable was journaled), start again, and every
tenant's audit chain must verify.

Runtime: ~25 routes x EXAMPLES examples of one or two requests each, derandomized so a
failure reproduces.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import Home, routes_app, unique

EXAMPLES = 30
WRITE_METHODS = ("POST", "PUT", "DELETE", "PATCH")
# Stopping the engine is what the last test does gracefully; its body is not read.
NOT_FUZZED = {("POST", "/v1/engine/stop")}
# A path that exists nowhere: routes that write files (audit export and checkpoint, trace links)
# must never be pointed at this machine's real folders by a generated value.
NOWHERE = "/nonexistent-musubi-fuzz"


def _write_routes() -> list[tuple[str, str]]:
    app = routes_app()
    out = set()
    for r in app.router.routes():
        info = r.resource.get_info() if r.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if r.method in WRITE_METHODS and path and (r.method, path) not in NOT_FUZZED:
            out.add((r.method, path))
    return sorted(out)


ROUTES = _write_routes()

# A plausible body per route, so the generated values reach the checks behind the first ones.
BASE: dict[str, dict[str, Any]] = {
    "/v1/tenants": {"name": "fz-new"},
    "/v1/tenants/{name}/suspend": {"reason": "fuzz"},
    "/v1/projects": {"path": "{home}", "name": "p"},
    "/v1/roles": {"name": "fzrole", "permissions": ["specs.read"], "description": ""},
    "/v1/members": {"user": "alice", "role": "viewer"},
    "/v1/quotas": {"metric": "tokens", "limit": 1000, "period": "day", "alerts": [0.5]},
    "/v1/usage": {"model": "gpt-5.4", "input_tokens": 1, "output_tokens": 1, "requests": 1, "cost_usd": "0.01"},
    "/v1/reservations": {"tokens": 10, "requests": 1, "cost_usd": "0.01", "ttl_s": 60},
    "/v1/reservations/{rid}/settle": {"input_tokens": 5, "output_tokens": 5, "requests": 1, "model": "gpt-5.4"},
    "/v1/audit/export": {"format": "jsonl", "path": "{home}/out/a.jsonl", "filters": {"limit": 5}},
    "/v1/audit/prune": {"before": "2000-01-01"},
    "/v1/audit/checkpoint": {"path": "{home}/out/cp.json"},
    "/v1/models/allowed": {"models": ["gpt-5.4"]},
    "/v1/models/route": {"task": "review", "input_tokens": 1000, "kind": "code"},
    "/v1/cost/estimate": {"models": ["gpt-5.4"], "texts": [{"name": "a", "text": "x = 1"}], "task": "review"},
    "/v1/trace/review": {"id": "REQ-1", "path": "{home}"},
    "/v1/trace/links": {"requirement": "REQ-1", "kind": "code", "target": "a.py", "line": 1, "path": "{home}"},
    "/v1/trace/links/remove": {"requirement": "REQ-1", "kind": "code", "target": "a.py", "path": "{home}"},
    "/v1/jobs": {"kind": "index", "params": {}},
}
KEYS = sorted({k for b in BASE.values() for k in b} | {"tokens", "metric", "period", "user", "project", "anchor",
                                                         "workflow", "paths", "retrieval_tokens", "cache", "state",
                                                         "source", "task_kind"})

numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([0, -1, 10**15, 10**15 + 1, 10**18, 10**18 + 1, 2**63 - 1, 2**63, 2**64, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),  # NaN and Infinity go out as the non-JSON literals
    st.sampled_from([1e30, -1e30, 1e308, 5e-324, 0.5, 1.5]),
)
numeric_text = st.sampled_from(["NaN", "nan", "Infinity", "-inf", "1e30", "1e999999999", "-0", "0x10", "1_000",
                                "9" * 50, "0.0000001", "１２", "", " ", "10000000000000", "1e-999999999"])
scalars = st.one_of(st.none(), st.booleans(), numbers, numeric_text, st.text(max_size=30),
                    st.text(alphabet=st.characters(codec="utf-8"), max_size=10))
nested = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
values = st.one_of(numbers, numbers, numeric_text, scalars, nested)  # numbers most often: they are the point
query_values = st.sampled_from(["tokens", "requests", "cost_usd", "day", "hour", "alice", "p"]) | st.text(max_size=12)


@st.composite
def bodies(draw: st.DrawFn, path: str, home: str) -> Any:
    """Mostly the route's plausible body with one or two fields replaced, sometimes extra keys."""
    if draw(st.integers(0, 19)) == 0:
        return draw(values)  # now and then not an object at all
    base = {k: v.replace("{home}", home) if isinstance(v, str) else v for k, v in BASE.get(path, {}).items()}
    body = dict(base) if draw(st.integers(0, 9)) else {}
    own = sorted(base) or KEYS
    for k in draw(st.lists(st.sampled_from(own), min_size=1, max_size=2)):
        body[k] = draw(values)
    if not draw(st.integers(0, 3)):
        body[draw(st.sampled_from(KEYS) | st.text(max_size=10))] = draw(values)
    p = body.get("path")
    if p is not base.get("path") and isinstance(p, str) and p.startswith("/"):
        body["path"] = NOWHERE + p  # keep generated paths off this machine's real folders
    return body


def test_the_route_table_yields_the_write_routes() -> None:
    # Guards the discovery itself: a change that broke it would otherwise fuzz nothing.
    assert {("POST", "/v1/usage"), ("PUT", "/v1/quotas"), ("POST", "/v1/reservations/{rid}/settle"),
            ("POST", "/v1/projects"), ("POST", "/v1/cost/estimate"), ("POST", "/v1/trace/links")} <= set(ROUTES)
    assert len(ROUTES) >= 20 and all(m in WRITE_METHODS for m, _p in ROUTES)
    assert set(BASE) <= {p for _m, p in ROUTES}, "a plausible body for a route that is gone"


@pytest.fixture(scope="module")
def fz() -> Iterator[tuple[Home, str]]:
    h = Home()
    try:
        h.start()
        (h.dir / "out").mkdir()
        yield h, h.new_tenant("fz", {"alice": "member"})
    finally:
        h.cleanup()


def _fill(path: str, draw: st.DrawFn, h: Home, tenant: str) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1).split(":")[0]
        if name == "rid" and draw(st.booleans()):
            status, got = h.raw("POST", "/v1/reservations", {"tokens": 10}, tenant=tenant)
            return got["reservation_id"] if status == 201 else "rsv_none"
        v = draw(
            st.sampled_from([tenant, "default", "alice", "p", "fzrole", "rsv_nope", "j-000000000000"])
            | st.text(min_size=1, max_size=20)
        )
        return urllib.parse.quote(v, safe="")

    return re.sub(r"\{([^}]+)\}", one, path)


def _check(status: int, got: Any, what: str) -> None:
    assert status < 500, f"{what} -> {status} {got}"
    if status >= 400:
        assert isinstance(got, dict) and isinstance(got.get("error"), dict), f"{what} -> {status} {got!r}"
        assert got["error"]["code"] != "internal", f"{what} -> {got}"


@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_generated_values_on_every_write_route(fz: tuple[Home, str], route: tuple[str, str]) -> None:
    h, tenant = fz
    method, template = route

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def probe(data: st.DataObject) -> None:
        root = h.client()
        if root.get(f"/v1/tenants/{tenant}")["status"] == "suspended":
            root.post(f"/v1/tenants/{tenant}/resume", {})
        path = _fill(template, data.draw, h, tenant)
        query = data.draw(
            st.dictionaries(
                st.sampled_from(["metric", "period", "user", "project"]), query_values, max_size=3
            )
        )
        if query:
            path += "?" + urllib.parse.urlencode(query)
        body = data.draw(bodies(template, str(h.dir)))
        raw = json.dumps(body).encode()  # allow_nan: NaN/Infinity literals are part of the probe
        as_user = data.draw(st.sampled_from([None, None, "alice"]))  # an owner mostly, a member's refusals too
        status, got = h.raw(method, path, raw_body=raw, tenant=tenant, as_user=as_user)
        _check(status, got, f"{method} {path} {raw[:300]!r}")

    probe()


def test_the_engine_stops_restarts_and_every_chain_verifies(fz: tuple[Home, str]) -> None:
    h, _tenant = fz
    h.stop()  # graceful: must not time out on an unappliable write
    h.start()
    root = h.client()
    tenants = [t["name"] for t in root.get("/v1/tenants")]
    assert len(tenants) >= 2
    for t in tenants:
        res = h.client(t).post("/v1/audit/verify", {})
        assert res["ok"] is True, (t, res)
    # And the home still takes writes.
    t = h.new_tenant("after")
    assert h.client(t).post("/v1/usage", {"model": "m", "input_tokens": unique("x").count("-")})["recorded"] is True
