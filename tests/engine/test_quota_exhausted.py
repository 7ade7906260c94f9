"""A used-up limit refuses even charges of zero, and settle may charge at most twice what was reserved.

Issue 9, item 6: while over the limit, `usage reserve --tokens 0 --requests 0` was admitted and
settled with 10^15 tokens, and `usage record` of 0/0/0 was admitted too, so overshoots compounded
without bound.  docs/quotas.md#worst-case-overshoot gives the bound these tests hold.
"""

from __future__ import annotations

from typing import Any

from core import limits

from .helpers import Home


def _over_limit(h: Home) -> str:
    """A tenant whose 100-token daily limit is used up (by a settle 50 over its reservation)."""
    t = h.new_tenant("ex", {"ann": "member"})
    h.client(t).put("/v1/quotas", {"metric": "tokens", "limit": 100, "period": "day"})
    ann = h.client(t, as_user="ann")
    rid = ann.post("/v1/reservations", {"tokens": 100})["reservation_id"]
    assert ann.post(f"/v1/reservations/{rid}/settle", {"input_tokens": 150})["overshoot"] == {"tokens": 50}
    q = h.quota(t, "tokens", "day")
    assert (q["used"], q["reserved"]) == (150, 0)
    return t


def _refused_429(h: Home, t: str, path: str, body: dict[str, Any], code: str = "quota_exceeded") -> dict[str, Any]:
    seq = h.head_seq(t)
    status, got = h.raw("POST", path, body, tenant=t, as_user="ann")
    assert status == 429, got
    assert got["error"]["code"] == code, got
    assert h.head_seq(t) == seq + 1  # nothing but the audited refusal
    (ev,) = h.audit(t, outcome="denied", after_seq=str(seq))
    assert ev["details"]["code"] == code
    return dict(got["error"])


def test_zero_reservation_is_refused_while_the_limit_is_used_up(eng: Home) -> None:
    t = _over_limit(eng)
    err = _refused_429(eng, t, "/v1/reservations", {"tokens": 0, "requests": 0})
    assert "used up" in err["message"] and err["quota"]["metric"] == "tokens" and err["quota"]["requested"] == 0
    assert eng.client(t).get("/v1/reservations") == []
    assert eng.quota(t, "tokens", "day")["used"] == 150


def test_zero_record_is_refused_while_the_limit_is_used_up(eng: Home) -> None:
    t = _over_limit(eng)
    err = _refused_429(eng, t, "/v1/usage", {"model": "m", "input_tokens": 0, "output_tokens": 0, "requests": 0})
    assert "Nothing was charged" in err["message"]
    # Not just tokens: a record adding only a request is refused while tokens are used up.
    _refused_429(eng, t, "/v1/usage", {"model": "m", "input_tokens": 0, "requests": 1})
    q = eng.quota(t, "tokens", "day")
    assert q["used"] == 150 and eng.quota(t, "requests", "hour")["used"] == 1


def test_zero_charges_are_still_admitted_below_the_limit(eng: Home) -> None:
    t = eng.new_tenant("ez", {"ann": "member"})
    eng.client(t).put("/v1/quotas", {"metric": "tokens", "limit": 100, "period": "day"})
    ann = eng.client(t, as_user="ann")
    ann.post("/v1/usage", {"model": "m", "input_tokens": 99})
    assert ann.post("/v1/usage", {"model": "m", "input_tokens": 0, "requests": 0})["recorded"] is True
    rid = ann.post("/v1/reservations", {"tokens": 0})["reservation_id"]
    ann.post(f"/v1/reservations/{rid}/release", {})
    ann.post("/v1/usage", {"model": "m", "input_tokens": 1})  # exactly at the limit: used up
    status, _ = eng.raw("POST", "/v1/usage", {"model": "m", "input_tokens": 0}, tenant=t, as_user="ann")
    assert status == 429


def test_settle_with_a_quadrillion_tokens_is_refused_and_the_reservation_stays_open(eng: Home) -> None:
    t = eng.new_tenant("sb", {"ann": "member"})
    eng.client(t).put("/v1/quotas", {"metric": "tokens", "limit": 1000, "period": "day"})
    ann = eng.client(t, as_user="ann")
    rid = ann.post("/v1/reservations", {"tokens": 100})["reservation_id"]
    err = _refused_429(eng, t, f"/v1/reservations/{rid}/settle", {"input_tokens": 10**15},
                       code="settle_over_reservation")
    assert err["reservation"] == {"id": rid, "metric": "tokens", "reserved": 100, "requested": 10**15, "most": 200}
    assert "still open" in err["message"] and "musubi usage record" in err["message"]
    q = eng.quota(t, "tokens", "day")
    assert (q["used"], q["reserved"]) == (0, 100)
    # One over twice the reservation is refused; exactly twice is the bound.
    _refused_429(eng, t, f"/v1/reservations/{rid}/settle", {"input_tokens": 150, "output_tokens": 51},
                 code="settle_over_reservation")
    s = ann.post(f"/v1/reservations/{rid}/settle", {"input_tokens": 150, "output_tokens": 50})
    assert s["overshoot"] == {"tokens": 100}
    assert eng.quota(t, "tokens", "day")["used"] == 200


def test_settle_bound_applies_only_to_limited_metrics(eng: Home) -> None:
    t = eng.new_tenant("sl", {"ann": "member"})
    ann = eng.client(t, as_user="ann")
    # No cost_usd limit: a tokens-only reservation may be settled with its cost.
    rid = ann.post("/v1/reservations", {"tokens": 100})["reservation_id"]
    assert ann.post(f"/v1/reservations/{rid}/settle", {"input_tokens": 90, "cost_usd": "3.5"})["cost_usd"] == "3.500000"
    # With one, the cost must have been reserved too (a hold of $0, given: without a cost it is refused).
    eng.client(t).put("/v1/quotas", {"metric": "cost_usd", "limit": "100", "period": "day", "user": "ann"})
    rid = ann.post("/v1/reservations", {"tokens": 100, "cost_usd": "0"})["reservation_id"]
    err = _refused_429(eng, t, f"/v1/reservations/{rid}/settle", {"input_tokens": 90, "cost_usd": "0.01"},
                       code="settle_over_reservation")
    assert err["reservation"]["metric"] == "cost_usd" and err["reservation"]["most"] == "0.000000"
    # requests is limited by default (100 per hour): a reservation of 0 requests settles 0.
    free = {"cost_usd": "0"}  # under ann's cost_usd limit a charge without a cost is refused (unpriced)
    rid = ann.post("/v1/reservations", {"tokens": 10, "requests": 0, **free})["reservation_id"]
    _refused_429(eng, t, f"/v1/reservations/{rid}/settle", {"input_tokens": 1, **free}, code="settle_over_reservation")
    assert ann.post(f"/v1/reservations/{rid}/settle", {"input_tokens": 1, "requests": 0, **free})["settled"] is True


def test_a_window_never_passes_twice_its_limit(eng: Home) -> None:
    """Many reservations, each settled at the bound: used stays <= 2 x limit (the documented worst case)."""
    t = eng.new_tenant("w2", {"ann": "member"})
    limit = 1000
    eng.client(t).put("/v1/quotas", {"metric": "tokens", "limit": limit, "period": "day"})
    ann = eng.client(t, as_user="ann")
    rids = []
    while True:  # hold as much as admission allows, in pieces
        status, got = eng.raw("POST", "/v1/reservations", {"tokens": 150}, tenant=t, as_user="ann")
        if status != 201:
            assert status == 429
            break
        rids.append(got["reservation_id"])
    for rid in rids:
        ann.post(f"/v1/reservations/{rid}/settle", {"input_tokens": limits.SETTLE_FACTOR * 150})
    for body in ({"tokens": 0}, {"tokens": 1}):
        assert eng.raw("POST", "/v1/reservations", body, tenant=t, as_user="ann")[0] == 429
    used = eng.quota(t, "tokens", "day")["used"]
    assert limit < used <= limits.SETTLE_FACTOR * limit
