"""core.quotas windows and parsing, core.names validation, core.rbac permission checks."""

from __future__ import annotations

from datetime import datetime

import pytest

from core import names
from core.errors import BadRequest
from core.quotas import (
    MICROS,
    check_metric,
    check_period,
    micros_to_usd,
    parse_alerts,
    parse_limit,
    usd_to_micros,
    window_end,
    window_start,
)
from core.rbac import BUILTIN_ROLES, PERMISSIONS, validate_permissions

D = datetime


@pytest.mark.parametrize(
    "period,now,start,end",
    [
        ("minute", D(2026, 3, 4, 5, 6, 59, 999999), D(2026, 3, 4, 5, 6), D(2026, 3, 4, 5, 7)),
        ("minute", D(2026, 3, 4, 5, 7, 0, 0), D(2026, 3, 4, 5, 7), D(2026, 3, 4, 5, 8)),
        ("minute", D(2026, 12, 31, 23, 59, 30), D(2026, 12, 31, 23, 59), D(2027, 1, 1, 0, 0)),
        ("hour", D(2026, 3, 4, 5, 59, 59, 999999), D(2026, 3, 4, 5), D(2026, 3, 4, 6)),
        ("hour", D(2026, 3, 4, 23, 0, 0, 1), D(2026, 3, 4, 23), D(2026, 3, 5, 0)),
        ("day", D(2026, 3, 4, 23, 59, 59, 999999), D(2026, 3, 4), D(2026, 3, 5)),
        ("day", D(2026, 2, 28, 12), D(2026, 2, 28), D(2026, 3, 1)),
        ("day", D(2028, 2, 28, 12), D(2028, 2, 28), D(2028, 2, 29)),
        ("day", D(2026, 12, 31, 0, 0), D(2026, 12, 31), D(2027, 1, 1)),
        ("month", D(2026, 1, 31, 23, 59, 59, 999999), D(2026, 1, 1), D(2026, 2, 1)),
        ("month", D(2026, 2, 1, 0, 0), D(2026, 2, 1), D(2026, 3, 1)),
        ("month", D(2026, 11, 30, 12), D(2026, 11, 1), D(2026, 12, 1)),
        ("month", D(2026, 12, 31, 23, 59, 59, 999999), D(2026, 12, 1), D(2027, 1, 1)),
        ("month", D(2027, 1, 1, 0, 0, 0, 0), D(2027, 1, 1), D(2027, 2, 1)),
    ],
)
def test_windows(period: str, now: datetime, start: datetime, end: datetime) -> None:
    ws = window_start(period, now)
    assert ws == start
    assert window_end(period, ws) == end
    assert ws <= now < window_end(period, ws)


def test_adjacent_windows_do_not_overlap() -> None:
    for period in ("minute", "hour", "day", "month"):
        t = D(2026, 12, 31, 23, 59, 59, 999999)
        ws = window_start(period, t)
        nxt = window_end(period, ws)
        assert window_start(period, nxt) == nxt  # the next window starts exactly at the reset
        assert window_start(period, t) != window_start(period, nxt)


@pytest.mark.parametrize("fn", [window_start, window_end])
def test_unknown_period_in_window(fn) -> None:
    with pytest.raises(BadRequest, match="unknown period 'week'"):
        fn("week", D(2026, 1, 1))


@pytest.mark.parametrize(
    "value,micros",
    [
        ("0.25", 250_000),
        ("0", 0),
        (0, 0),
        (3, 3 * MICROS),
        ("1e-6", 1),
        ("0.000001", 1),
        (0.1, 100_000),
        ("0.3", 300_000),
        ("12345678.123456", 12_345_678_123_456),
        ("99999999999.999999", 99_999_999_999_999_999),
        ("1.10", 1_100_000),
    ],
)
def test_usd_to_micros_exact(value: object, micros: int) -> None:
    assert usd_to_micros(value) == micros
    assert isinstance(usd_to_micros(value), int)


def test_usd_sums_are_exact_where_floats_are_not() -> None:
    # A float is read through its shortest repr, so 0.1 is exactly 100,000 micros (not the
    # binary 0.1000000000000000055...), and float inputs sum exactly once parsed.
    assert usd_to_micros(0.1) + usd_to_micros(0.2) == usd_to_micros(0.3) == 300_000
    # The float sum itself is 0.30000000000000004: refused, never silently rounded.
    with pytest.raises(BadRequest, match="more than 6 decimal places"):
        usd_to_micros(0.1 + 0.2)
    assert usd_to_micros("0.1") + usd_to_micros("0.2") == usd_to_micros("0.3")
    assert micros_to_usd(usd_to_micros("0.1") + usd_to_micros("0.2")) == "0.300000"
    assert micros_to_usd(1) == "0.000001"
    assert micros_to_usd(12_345_678_123_456) == "12345678.123456"


@pytest.mark.parametrize(
    "value,msg",
    [
        ("abc", "not a number"),
        ("", "not a number"),
        (None, "not a number"),
        ("-0.01", "negative"),
        (-1, "negative"),
        ("NaN", "not a finite"),
        ("inf", "not a finite"),
        ("0.0000001", "more than 6 decimal places"),
        ("1.2345678", "more than 6 decimal places"),
    ],
)
def test_usd_to_micros_errors(value: object, msg: str) -> None:
    with pytest.raises(BadRequest, match=msg):
        usd_to_micros(value)


@pytest.mark.parametrize(
    "metric,value,want",
    [
        ("tokens", 1000, 1000),
        ("tokens", "1_000", 1000),
        ("tokens", "0", 0),
        ("requests", 5.0, 5),
        ("cost_usd", "2.50", 2_500_000),
        ("cost_usd", 3, 3_000_000),
    ],
)
def test_parse_limit(metric: str, value: object, want: int) -> None:
    assert parse_limit(metric, value) == want


@pytest.mark.parametrize(
    "metric,value,msg",
    [
        ("tokens", -1, "negative"),
        ("tokens", "-5", "negative"),
        ("tokens", 1.5, "not a whole number"),
        ("tokens", "1.5", "not a whole number"),
        ("tokens", "lots", "not a whole number"),
        ("tokens", True, "not a whole number"),
        ("tokens", None, "not a whole number"),
        ("tokens", [1], "not a whole number"),
        ("tokens", float("inf"), "not a whole number"),
        ("tokens", float("nan"), "not a whole number"),
        ("cost_usd", "-1", "negative"),
        ("cost_usd", "x", "not a number"),
    ],
)
def test_parse_limit_errors(metric: str, value: object, msg: str) -> None:
    with pytest.raises(BadRequest, match=msg):
        parse_limit(metric, value)


def test_parse_alerts() -> None:
    assert parse_alerts("0.8,1.0") == (0.8, 1.0)
    assert parse_alerts(" 1.0 , 0.5,0.5") == (0.5, 1.0)
    assert parse_alerts([0.9]) == (0.9,)
    assert parse_alerts(None) == () and parse_alerts("") == ()


@pytest.mark.parametrize(
    "value,msg",
    [
        ("x", "not a number"),
        ("0.5,abc", "not a number"),
        ("0", r"\(0, 10\]"),
        ("-0.5", r"\(0, 10\]"),
        ("11", r"\(0, 10\]"),
        ("0.5,,1", "not a number"),
    ],
)
def test_parse_alerts_errors(value: str, msg: str) -> None:
    with pytest.raises(BadRequest, match=msg) as ei:
        parse_alerts(value)
    assert ei.value.extra.get("field") == "alert"


def test_check_metric_and_period() -> None:
    assert check_metric("tokens") == "tokens" and check_period("month") == "month"
    with pytest.raises(BadRequest, match="unknown metric 'bananas'.*tokens, requests, cost_usd"):
        check_metric("bananas")
    with pytest.raises(BadRequest, match="unknown period 'week'.*minute, hour, day, month"):
        check_period("week")
    with pytest.raises(BadRequest):
        check_metric(None)


# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ok", ["a", "0", "acme", "team-1", "a" * 63, "9lives", "a-"])
def test_tenant_names_ok(ok: str) -> None:
    assert names.tenant_name(ok) == ok


@pytest.mark.parametrize(
    "bad", ["", "-a", "A", "Acme", "a_b", "a b", "a.b", "a" * 64, "é", "a\n", "a/b", None, 5, "ａ"]
)
def test_tenant_names_bad(bad: object) -> None:
    with pytest.raises(BadRequest, match="tenant name") as ei:
        names.tenant_name(bad)
    assert ei.value.extra["field"] == "tenant"


@pytest.mark.parametrize("ok", ["alice", "bob.smith", "a@corp.example", "_svc", "user-1", "A1"])
def test_user_names_ok(ok: str) -> None:
    assert names.user_name(ok) == ok


@pytest.mark.parametrize("bad", ["", "-x", "a b", "a/b", "a:b", "x" * 65, "bob\n", "ü", None, ".hidden"])
def test_user_names_bad(bad: object) -> None:
    with pytest.raises(BadRequest, match="user name"):
        names.user_name(bad)


@pytest.mark.parametrize("bad", ["", "Admin", "1role", "ro le", "r" * 64, "role!", "-r"])
def test_role_names_bad(bad: str) -> None:
    with pytest.raises(BadRequest, match="role name"):
        names.role_name(bad)


@pytest.mark.parametrize("bad", ["", ".git", "-p", "a/b", "p" * 129, "a b", "..", "p\x00"])
def test_project_names_bad(bad: str) -> None:
    with pytest.raises(BadRequest, match="project name"):
        names.project_name(bad)


def test_names_ok_roles_projects() -> None:
    assert names.role_name("release-manager_2") == "release-manager_2"
    assert names.project_name("My.Repo_1") == "My.Repo_1"


# -- rbac ----------------------------------------------------------------------------------


def test_validate_permissions() -> None:
    assert validate_permissions(["specs.read", "specs.read"]) == frozenset({"specs.read"})
    with pytest.raises(BadRequest, match="unknown permission.*specs.eat") as ei:
        validate_permissions(["specs.read", "specs.eat"])
    assert "Valid permissions" in ei.value.message
    with pytest.raises(BadRequest, match="at least one permission"):
        validate_permissions([])


def test_builtin_roles_shape() -> None:
    issue = {
        "tenant.manage", "members.manage", "quotas.manage", "billing.read", "audit.read", "audit.export",
        "projects.manage", "specs.read", "specs.write", "index.build", "search.query", "runs.start",
        "runs.approve", "runs.cancel", "integrations.manage", "impersonate",
    }
    assert issue <= set(PERMISSIONS)
    assert set(BUILTIN_ROLES) == {"owner", "admin", "member", "viewer", "guest", "auditor"}
    assert BUILTIN_ROLES["owner"] == frozenset(PERMISSIONS)
    for role, perms in BUILTIN_ROLES.items():
        assert perms <= BUILTIN_ROLES["owner"], role
    assert "tenant.manage" not in BUILTIN_ROLES["admin"] and "impersonate" not in BUILTIN_ROLES["admin"]


def test_window_cache_follows_the_clock_across_minute_and_hour_boundaries() -> None:
    """State.windows caches per minute; a charge just after the boundary lands in the new windows."""
    from datetime import datetime

    from core.engine.state import State
    from core.quotas import PERIODS, Charge, window_start

    st = State()
    times = [
        datetime(2026, 11, 30, 23, 59, 59, 999_999),
        datetime(2026, 12, 1, 0, 0, 0),
        datetime(2026, 12, 1, 0, 0, 30),
        datetime(2026, 12, 1, 0, 1, 0),
        datetime(2026, 11, 30, 23, 59, 0),  # a clock stepping back is answered right too
    ]
    for t in times:
        assert st.windows(t) == {p: window_start(p, t) for p in PERIODS}
    st.add_usage("t", "u", Charge(10, 1, 0), times[0])
    st.add_usage("t", "u", Charge(5, 1, 0), times[1])
    assert st.used[("t", None, "tokens", "month", datetime(2026, 11, 1))] == 10
    assert st.used[("t", "u", "tokens", "month", datetime(2026, 12, 1))] == 5
    assert st.used[("t", None, "requests", "minute", datetime(2026, 12, 1, 0, 0))] == 1
    assert ("t", None, "cost_usd", "day", datetime(2026, 12, 1)) not in st.used  # zero amounts add no counters
