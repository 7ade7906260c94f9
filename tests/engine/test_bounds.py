"""Numbers at the HTTP boundary: every numeric field has a range storage can hold (core/limits.py).

Out of range is a 400 that names the field and the range and changes nothing; the largest
values in range are stored, survive a restart, and the chain still verifies.  The three
reproductions of issue 9 (a cost of $1e13, a limit of 1e30 as text and as a JSON number)
once were acknowledged and then poisoned the database for every tenant.
"""

from __future__ import annotations

from typing import Any

import pytest

from core import limits

from .helpers import Home


def _state(h: Home, t: str) -> tuple[Any, ...]:
    c = h.client(t)
    quotas = [
        (q["id"], q["metric"], q["period"], q["limit"], q["used"], q["reserved"])
        for q in c.get("/v1/quotas")["quotas"]
    ]
    return h.head_seq(t), quotas, c.get("/v1/reservations")


def _refused(
    h: Home, t: str, method: str, path: str, body: Any, field: str, *, as_user: str | None = None
) -> dict[str, Any]:
    before = _state(h, t)
    status, got = h.raw(method, path, body, tenant=t, as_user=as_user)
    assert status == 400, got
    err = got["error"]
    assert err["code"] == "bad_request" and err["field"] == field, err
    assert field in err["message"] and " to " in err["message"], err  # names the field and the range
    assert _state(h, t) == before
    return dict(err)


def _restart_and_verify(h: Home, *tenants: str) -> None:
    h.stop()  # a graceful stop must finish: nothing unappliable was journaled
    h.start()
    for t in tenants:
        res = h.client(t).post("/v1/audit/verify", {})
        assert res["ok"] is True, res


def test_issue_reproductions_are_refused_and_the_home_stays_usable(home: Home) -> None:
    home.start()
    t = home.new_tenant("b", {"alice": "member"})
    err = _refused(home, t, "POST", "/v1/usage",
                   {"model": "gpt-5.4", "input_tokens": 1, "output_tokens": 1, "cost_usd": "10000000000000"},
                   "cost_usd", as_user="alice")
    assert err["range"] == {"min": "0", "max": "1,000,000,000", "unit": "usd"}
    assert "1,000,000,000" in err["message"]
    err = _refused(home, t, "PUT", "/v1/quotas",
                   {"metric": "tokens", "limit": "1000000000000000000000000000000", "period": "day"}, "limit")
    assert err["range"]["max"] == limits.LIMIT_COUNT.hi
    _refused(home, t, "PUT", "/v1/quotas", {"metric": "tokens", "limit": 1e30, "period": "day"}, "limit")
    _refused(home, t, "PUT", "/v1/quotas", {"metric": "cost_usd", "limit": 1e30, "period": "day"}, "limit")
    # Writes after the refusals are applied and survive a graceful stop.
    assert home.client(t, as_user="alice").post("/v1/usage", {"model": "m", "input_tokens": 3})["tokens"] == 3
    _restart_and_verify(home, t, "default")
    assert home.quota(t, "tokens", "day")["used"] == 3


OVER: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/v1/usage", {"model": "m", "input_tokens": limits.TOKENS.hi + 1}, "input_tokens"),
    ("POST", "/v1/usage", {"model": "m", "output_tokens": 10**30}, "output_tokens"),
    ("POST", "/v1/usage", {"model": "m", "input_tokens": "9" * 5000}, "input_tokens"),
    ("POST", "/v1/usage", {"model": "m", "requests": limits.REQUESTS.hi + 1}, "requests"),
    ("POST", "/v1/usage", {"model": "m", "cost_usd": "1000000000.000001"}, "cost_usd"),
    ("POST", "/v1/usage", {"model": "m", "cost_usd": "1e999999999"}, "cost_usd"),
    ("POST", "/v1/usage", {"model": "m", "cost_usd": 1e300}, "cost_usd"),
    ("POST", "/v1/reservations", {"tokens": limits.TOKENS.hi + 1}, "tokens"),
    ("POST", "/v1/reservations", {"tokens": 1, "requests": 10**12}, "requests"),
    ("POST", "/v1/reservations", {"tokens": 1, "cost_usd": "2e9"}, "cost_usd"),
    ("POST", "/v1/reservations", {"tokens": 1, "ttl_s": 86_401}, "ttl_s"),
    ("POST", "/v1/reservations", {"tokens": 1, "ttl_s": 10**40}, "ttl_s"),
    ("PUT", "/v1/quotas", {"metric": "requests", "limit": limits.LIMIT_COUNT.hi + 1, "period": "day"}, "limit"),
    ("PUT", "/v1/quotas", {"metric": "cost_usd", "limit": "1000000000000.000001", "period": "day"}, "limit"),
    ("POST", "/v1/models/route", {"task": "review", "input_tokens": 10**16}, "input_tokens"),
    ("POST", "/v1/cost/estimate", {"models": ["gpt-5.4"], "texts": [{"text": "x"}], "retrieval_tokens": 10**16},
     "retrieval_tokens"),
]


@pytest.mark.parametrize("case", OVER, ids=[f"{c[1]}:{c[3]}:{i}" for i, c in enumerate(OVER)])
def test_out_of_range_is_a_400_naming_field_and_range(eng: Home, case: tuple[str, str, dict[str, Any], str]) -> None:
    method, path, body, field = case
    t = eng.new_tenant("or")
    _refused(eng, t, method, path, body, field)


def test_history_hours_out_of_range(eng: Home) -> None:
    t = eng.new_tenant("hh")
    status, got = eng.raw("GET", f"/v1/usage/history?since_hours={10**15}", tenant=t)
    assert status == 400 and got["error"]["field"] == "since_hours", got
    assert eng.raw("GET", f"/v1/usage/history?since_hours={limits.SINCE_HOURS.hi}", tenant=t)[0] == 200


def test_the_largest_values_in_range_are_stored_and_survive_a_restart(home: Home) -> None:
    home.start()
    t = home.new_tenant("max")
    c = home.client(t)
    c.put("/v1/quotas", {"metric": "tokens", "limit": limits.LIMIT_COUNT.hi, "period": "day", "alerts": [10]})
    c.put("/v1/quotas", {"metric": "requests", "limit": str(limits.LIMIT_COUNT.hi), "period": "hour"})
    c.put("/v1/quotas", {"metric": "cost_usd", "limit": "1000000000000", "period": "month"})
    big = limits.TOKENS.hi
    r = c.post("/v1/usage", {"model": "m", "input_tokens": big, "output_tokens": big, "requests": limits.REQUESTS.hi,
                             "cost_usd": "1000000000"})
    assert r["tokens"] == 2 * big and r["cost_usd"] == "1000000000.000000"
    rid = c.post("/v1/reservations", {"tokens": big, "requests": limits.REQUESTS.hi, "cost_usd": "1000000000",
                                      "ttl_s": limits.TTL_S.hi})["reservation_id"]
    # Settle may charge up to twice what was reserved: the largest ledger row there is.
    s = c.post(f"/v1/reservations/{rid}/settle", {"input_tokens": big, "output_tokens": big,
                                                   "requests": limits.REQUESTS.hi, "cost_usd": "1000000000"})
    assert s["tokens"] == 2 * big
    _restart_and_verify(home, t)
    q = home.quota(t, "tokens", "day")
    assert (q["limit"], q["used"]) == (limits.LIMIT_COUNT.hi, 4 * big)
    assert home.quota(t, "cost_usd", "month")["limit"] == "1000000000000.000000"
    hist = home.client(t).get("/v1/usage/history", {"bucket": "day"})
    assert sum(row["tokens"] for row in hist["rows"]) == 4 * big
