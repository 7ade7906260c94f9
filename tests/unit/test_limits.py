"""core.limits: whole numbers and dollar amounts within ranges storage can hold."""

from __future__ import annotations

import pytest

from core import limits
from core.errors import BadRequest
from core.trace.links import validate_link


@pytest.mark.parametrize(
    "value,want",
    [(0, 0), (7, 7), ("7", 7), (" 1_000 ", 1000), ("+5", 5), (5.0, 5), (10**15, 10**15), (str(10**15), 10**15)],
)
def test_count_accepts_whole_numbers_in_range(value: object, want: int) -> None:
    assert limits.count(value, "tokens", limits.TOKENS) == want


@pytest.mark.parametrize(
    "value,says",
    [
        (-1, "is negative"), ("-3", "is negative"), (10**15 + 1, "is out of range"), (1e30, "is out of range"),
        ("1" * 41, "is out of range"), ("9" * 5000, "is out of range"), (1.5, "is not a whole number"),
        (float("nan"), "is not a whole number"), (float("inf"), "is not a whole number"),
        (True, "is not a whole number"),
        (None, "is not a whole number"), ([1], "is not a whole number"), ("1e3", "is not a whole number"),
        ("١٢", "is not a whole number"),  # Arabic-Indic digits: str.isdigit() says yes, int() would too
    ],
)
def test_count_refusals_name_field_and_range(value: object, says: str) -> None:
    with pytest.raises(BadRequest) as ei:
        limits.count(value, "tokens", limits.TOKENS)
    e = ei.value
    assert says in e.message and "tokens" in e.message and "from 0 to 1,000,000,000,000,000" in e.message
    assert e.extra["field"] == "tokens" and e.extra["range"] == {"min": 0, "max": 10**15, "unit": "tokens"}


def test_count_lower_bound_above_zero() -> None:
    with pytest.raises(BadRequest, match="ttl_s 0 is out of range: give a whole number of seconds from 1 to 86,400"):
        limits.count(0, "ttl_s", limits.TTL_S)


@pytest.mark.parametrize(
    "value,micros",
    [("0", 0), (0, 0), ("0.000001", 1), (0.1, 100_000), ("1000000000", 10**15), ("999999999.999999", 10**15 - 1),
     ("1e-6", 1), ("0e-999999", 0), (" 2.50 ", 2_500_000)],
)
def test_dollars_exact(value: object, micros: int) -> None:
    assert limits.dollars(value, "cost_usd", limits.COST) == micros


@pytest.mark.parametrize(
    "value,says",
    [
        ("10000000000000", "is out of range"), ("1000000000.000001", "is out of range"),
        ("1e999999999", "is out of range"), (1e300, "is out of range"),
        ("1e-999999999", "more than 6 decimal places"), ("0.0000001", "more than 6 decimal"),
        ("-0.01", "is negative"), ("NaN", "not a finite"), ("-Infinity", "not a finite"), ("abc", "not a number"),
        (True, "not a number"), ([1], "not a number"), ("1" * 41, "not a number"),
    ],
)
def test_dollars_refusals(value: object, says: str) -> None:
    with pytest.raises(BadRequest, match=says) as ei:
        limits.dollars(value, "cost_usd", limits.COST)
    assert "dollars from 0 to 1,000,000,000, at most 6 decimals" in ei.value.message


def test_storage_holds_every_range_and_what_is_derived_from_it() -> None:
    # A ledger row: tokens = input + output; a settle charges at most SETTLE_FACTOR x a reservation.
    assert limits.SETTLE_FACTOR * 2 * limits.TOKENS.hi <= limits.BIGINT_MAX
    assert limits.SETTLE_FACTOR * limits.COST.hi <= limits.BIGINT_MAX
    assert limits.SETTLE_FACTOR * limits.REQUESTS.hi <= limits.BIGINT_MAX
    # A window's usage stays within SETTLE_FACTOR x its limit (docs/quotas.md#worst-case-overshoot).
    for r in (limits.LIMIT_COUNT, limits.LIMIT_COST):
        assert limits.SETTLE_FACTOR * r.hi <= limits.BIGINT_MAX


def test_text_fields() -> None:
    assert limits.text(None, "reason", 10) is None
    assert limits.text("ok", "reason", 10) == "ok"
    with pytest.raises(BadRequest, match="reason must be a string, or left out"):
        limits.text({"a": 1}, "reason", 10)
    with pytest.raises(BadRequest, match="path must be a non-empty string"):
        limits.text(None, "path", 10, required=True)
    with pytest.raises(BadRequest, match="at most 10 are allowed"):
        limits.text("x" * 11, "reason", 10)


def test_link_line_is_bounded() -> None:
    validate_link("REQ-1", "code", "src/a.py", limits.LINE.hi, "manual", "accepted")
    with pytest.raises(BadRequest, match="positive integer"):
        validate_link("REQ-1", "code", "src/a.py", limits.LINE.hi + 1, "manual", "accepted")
