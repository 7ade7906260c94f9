"""``musubi quota`` and ``musubi usage``: limits, charges, reservations, exit 3 and 4, exact admission."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from typing import Any

from .helpers import MUSUBI, REPO, Cli, base_env

QUOTA_KEYS = {"id", "metric", "period", "scope", "user", "limit", "used", "reserved", "remaining", "fraction_used",
              "window_start", "resets_at", "alerts"}


def _quota(status: dict[str, Any], metric: str, period: str, user: str | None = None) -> dict[str, Any]:
    found = [q for q in status["quotas"] if q["metric"] == metric and q["period"] == period and q["user"] == user]
    assert len(found) == 1, status
    return found[0]


def test_new_tenant_has_default_quotas(cli: Cli) -> None:
    cli.ok("tenant", "create", "q-default")
    st = cli.js("quota", "status", "--tenant", "q-default")
    assert set(st) == {"tenant", "user", "quotas", "tightest"}
    assert _quota(st, "tokens", "day")["limit"] == 100_000
    assert _quota(st, "requests", "hour")["limit"] == 100
    assert set(st["quotas"][0]) == QUOTA_KEYS
    human = cli.ok("--tenant", "q-default", "quota", "status").out
    assert "tokens" in human and "100000" in human and "RESETS AT" in human


def test_quota_set_status_remove(cli: Cli) -> None:
    t = ("--tenant", "q-set")
    cli.ok("tenant", "create", "q-set")
    q = cli.js(*t, "quota", "set", "tokens", "5000", "--per", "hour", "--alert", "0.8,1.0")
    assert set(q) == QUOTA_KEYS
    assert q["limit"] == 5000 and q["period"] == "hour" and q["scope"] == "tenant" and q["alerts"] == [0.8, 1.0]
    q = cli.js("quota", "set", "cost_usd", "12.50", "--per", "month", "--user", "alice", *t)
    assert q["limit"] == "12.500000" and q["user"] == "alice" and q["scope"] == "user"
    assert "quota set: 7 requests per minute" in cli.ok(*t, "quota", "set", "requests", "7", "--per", "minute").out
    st = cli.js(*t, "quota", "status")
    assert _quota(st, "cost_usd", "month", "alice")["remaining"] == "12.500000"
    assert _quota(st, "requests", "minute")["limit"] == 7
    only_alice = cli.js(*t, "quota", "status", "--user", "alice")
    assert {q["user"] for q in only_alice["quotas"]} == {None, "alice"}

    removed = cli.js(*t, "quota", "remove", "cost_usd", "--per", "month", "--user", "alice")
    assert removed["removed"] is True and removed["metric"] == "cost_usd" and removed["user"] == "alice"
    r = cli.fails(1, *t, "quota", "remove", "cost_usd", "--per", "month", "--user", "alice")
    assert "no cost_usd per month quota" in r.err
    assert "removed the requests per minute quota" in cli.ok(*t, "quota", "remove", "requests", "--per", "minute").out


def test_quota_bad_input_changes_nothing(cli: Cli) -> None:
    t = ("--tenant", "q-bad")
    cli.ok("tenant", "create", "q-bad")
    before = cli.js(*t, "quota", "status")
    r = cli.fails(2, *t, "quota", "set", "tokens", "-5", "--per", "day")
    assert "negative" in r.err
    err = cli(*t, "quota", "set", "tokens", "-5", "--per", "day", "--json").json()["error"]
    assert err["code"] == "bad_request" and err["field"] == "limit" and err["exit_code"] == 2
    cli.fails(2, *t, "quota", "set", "tokens", "lots", "--per", "day")
    cli.fails(2, *t, "quota", "set", "cost_usd", "0.0000001", "--per", "day")
    cli.fails(2, *t, "quota", "set", "tokens", "5", "--per", "day", "--alert", "2,abc")
    cli.fails(2, *t, "quota", "set", "tokens", "5", "--per", "fortnight")
    after = cli.js(*t, "quota", "status")
    assert [q["limit"] for q in before["quotas"]] == [q["limit"] for q in after["quotas"]]


def test_usage_record_and_the_hard_limit(cli: Cli) -> None:
    t = ("--tenant", "q-rec")
    cli.ok("tenant", "create", "q-rec")
    cli.ok(*t, "quota", "set", "tokens", "1000", "--per", "day")
    rec = cli.js(*t, "usage", "record", "--model", "gpt-4o", "--input-tokens", "700", "--output-tokens", "100",
                 "--cost-usd", "0.0105")
    assert rec["recorded"] is True and rec["tokens"] == 800 and rec["requests"] == 1 and rec["cost_usd"] == "0.010500"
    assert set(rec) == {"recorded", "tenant", "user", "model", "tokens", "requests", "cost_usd", "entry_id", "ts",
                        "priced", "warning"}
    before = _quota(cli.js(*t, "quota", "status"), "tokens", "day")
    assert before["used"] == 800

    r = cli.fails(3, *t, "usage", "record", "--model", "gpt-5.4-mini", "--input-tokens", "150", "--output-tokens", "100")
    assert "quota exceeded" in r.err and "Nothing was charged" in r.err and "musubi quota set tokens" in r.err
    err = cli(*t, "usage", "record", "--model", "gpt-5.4-mini", "--input-tokens", "201", "--output-tokens", "0", "--json")
    assert err.rc == 3
    body = err.json()["error"]
    assert body["code"] == "quota_exceeded" and body["exit_code"] == 3
    assert body["quota"]["limit"] == 1000 and body["quota"]["used"] == 800 and body["quota"]["requested"] == 201
    after = _quota(cli.js(*t, "quota", "status"), "tokens", "day")
    assert after["used"] == 800 and after["remaining"] == 200  # nothing charged
    assert "recorded 200 tokens" in cli.ok(*t, "usage", "record", "--model", "m", "--input-tokens", "200",
                                          "--output-tokens", "0", "--cost-usd", "0").out
    cli.fails(3, *t, "usage", "record", "--model", "m", "--input-tokens", "1", "--output-tokens", "0", "--cost-usd", "0")
    denied = cli.js(*t, "audit", "list", "--outcome", "denied", "--action", "usage.record")
    assert len(denied) == 3 and all(e["details"]["code"] == "quota_exceeded" for e in denied)


def test_usage_record_without_a_cost_is_priced_from_the_registry_or_refused(cli: Cli) -> None:
    t = ("--tenant", "q-price")
    cli.ok("tenant", "create", "q-price")
    spec = cli.js(*t, "models", "show", "sonnet")
    rec = cli.js(*t, "usage", "record", "--model", "sonnet", "--input-tokens", "1200", "--output-tokens", "300")
    want = Decimal(spec["input_per_mtok"]) * 1200 + Decimal(spec["output_per_mtok"]) * 300  # micro-dollars
    assert want > 0 and rec["cost_usd"] == f"{want / 1_000_000:.6f}" and rec["model"] == "sonnet"
    human = cli.ok(*t, "usage", "record", "--model", "sonnet", "--input-tokens", "1200", "--output-tokens", "300")
    assert f"${want / 1_000_000:.6f} for sonnet" in human.out and "registry's prices" in human.out
    given = cli.js(*t, "usage", "record", "--model", "sonnet", "--input-tokens", "1", "--output-tokens", "1",
                   "--cost-usd", "0.5")
    assert given["cost_usd"] == "0.500000"  # a given cost is charged as given
    used = sum(row["tokens"] for row in cli.js(*t, "usage", "history")["rows"])
    assert used == 3002
    # no cost_usd limit applies: an unknown model is recorded at $0, and the warning says so and how to fix it
    r = cli.ok(*t, "usage", "record", "--model", "gpt-4o", "--input-tokens", "700", "--output-tokens", "100")
    assert "$0.000000 for gpt-4o" in r.out and "not priced" in r.out
    assert "'gpt-4o' has no price" in r.err and "--cost-usd" in r.err and "musubi models import" in r.err
    used += 800
    # under a cost_usd limit it is refused, exit 2, with nothing charged
    cli.ok(*t, "quota", "set", "cost_usd", "100", "--per", "day")
    r = cli.fails(2, *t, "usage", "record", "--model", "gpt-4o", "--input-tokens", "700", "--output-tokens", "100")
    assert "'gpt-4o' has no price" in r.err and "cost_usd limit" in r.err and "--cost-usd" in r.err
    r = cli.fails(2, *t, "usage", "record", "--model", "gpt-4o", "--input-tokens", "700", "--output-tokens", "100",
                  "--json")
    err = r.json()["error"]
    assert err["code"] == "unpriced_usage" and err["exit_code"] == 2 and "--cost-usd" in err["message"]
    assert sum(row["tokens"] for row in cli.js(*t, "usage", "history")["rows"]) == used  # refused: nothing charged
    assert len(cli.js(*t, "audit", "list", "--action", "usage.record")) == 4
    ok = cli.js(*t, "usage", "record", "--model", "gpt-4o", "--input-tokens", "700", "--output-tokens", "100",
                "--cost-usd", "0.0105")
    assert ok["cost_usd"] == "0.010500"


def test_reserve_settle_release(cli: Cli) -> None:
    t = ("--tenant", "q-rsv")
    cli.ok("tenant", "create", "q-rsv")
    cli.ok(*t, "quota", "set", "tokens", "1000", "--per", "day")
    rsv = cli.js(*t, "usage", "reserve", "--tokens", "600", "--ttl", "300")
    assert set(rsv) == {"reservation_id", "tokens", "requests", "cost_usd", "expires_at", "priced", "warning"}
    assert rsv["reservation_id"].startswith("rsv_") and rsv["tokens"] == 600
    assert _quota(cli.js(*t, "quota", "status"), "tokens", "day")["reserved"] == 600
    r = cli.fails(3, *t, "usage", "reserve", "--tokens", "500")
    assert "reserving" in r.err
    rows = cli.js(*t, "usage", "reservations")
    assert [x["reservation_id"] for x in rows] == [rsv["reservation_id"]]
    assert rsv["reservation_id"] in cli.ok(*t, "usage", "reservations").out

    settled = cli.js(*t, "usage", "settle", rsv["reservation_id"], "--input-tokens", "500", "--output-tokens", "150",
                     "--model", "m", "--cost-usd", "0")
    assert settled["settled"] is True and settled["tokens"] == 650 and settled["overshoot"] == {"tokens": 50}
    q = _quota(cli.js(*t, "quota", "status"), "tokens", "day")
    assert q["used"] == 650 and q["reserved"] == 0
    cli.fails(1, *t, "usage", "settle", rsv["reservation_id"], "--input-tokens", "1", "--output-tokens", "1",
              "--cost-usd", "0")

    second = cli.ok(*t, "usage", "reserve", "--tokens", "100").out
    rid = second.split(":")[0]
    assert rid.startswith("rsv_")
    assert cli.js(*t, "usage", "release", rid) == {"reservation_id": rid, "released": True}
    assert cli.js(*t, "usage", "reservations") == []
    assert "no open reservations" in cli.ok(*t, "usage", "reservations").out
    cli.fails(1, *t, "usage", "release", rid)
    cli.fails(2, *t, "usage", "release", "not-a-reservation")
    cli.fails(2, *t, "usage", "reserve", "--ttl", "0")

    hist = cli.js(*t, "usage", "history", "--bucket", "day", "--since-hours", "48")
    assert hist["tenant"] == "q-rsv" and hist["bucket"] == "day"
    assert sum(r["tokens"] for r in hist["rows"]) == 650 and set(hist["rows"][0]) == {"bucket", "tokens", "requests", "cost_micros"}
    assert "650" in cli.ok(*t, "usage", "history").out


def test_usage_settle_without_a_cost_is_priced_from_the_registry_or_refused(cli: Cli) -> None:
    t = ("--tenant", "q-sprice")
    cli.ok("tenant", "create", "q-sprice")
    spec = cli.js(*t, "models", "show", "sonnet")
    want = (Decimal(spec["input_per_mtok"]) * 3100 + Decimal(spec["output_per_mtok"]) * 700) / 1_000_000
    assert want > 0

    def reserve() -> str:
        rid = cli.js(*t, "usage", "reserve", "--tokens", "4000")["reservation_id"]
        assert isinstance(rid, str) and rid.startswith("rsv_")
        return rid

    def open_ids() -> list[str]:
        return [r["reservation_id"] for r in cli.js(*t, "usage", "reservations")]

    def used() -> tuple[int, Decimal]:
        rows = cli.js(*t, "usage", "history")["rows"]
        return sum(r["tokens"] for r in rows), sum((Decimal(r["cost_micros"]) for r in rows), Decimal(0))

    charge = ("--input-tokens", "3100", "--output-tokens", "700")
    rid = reserve()
    settled = cli.js(*t, "usage", "settle", rid, *charge, "--model", "sonnet")
    assert settled["settled"] is True and settled["tokens"] == 3800 and settled["cost_usd"] == f"{want:.6f}"
    rid = reserve()
    human = cli.ok(*t, "usage", "settle", rid, *charge, "--model", "sonnet").out
    assert f"settled {rid}: 3800 tokens, 1 request(s), ${want:.6f} at the model registry's prices" in human
    rid = reserve()
    given = cli.js(*t, "usage", "settle", rid, *charge, "--model", "sonnet", "--cost-usd", "0.5")
    assert given["cost_usd"] == "0.500000"  # a given cost is charged as given, not the registry's
    assert "$0.000000." in cli.ok(*t, "usage", "settle", reserve(), "--input-tokens", "1", "--output-tokens", "0",
                                  "--cost-usd", "0").out  # no --model needed with a cost
    assert open_ids() == []
    before = used()
    assert before == (3 * 3800 + 1, 2 * want * 1_000_000 + 500_000)

    # no cost_usd limit applies: a model with no price is settled at $0, and the warning says so
    r = cli.ok(*t, "usage", "settle", reserve(), *charge, "--model", "gpt-4o")
    assert "$0.000000, not priced" in r.out and "'gpt-4o' has no price" in r.err and "--cost-usd" in r.err
    before = (before[0] + 3800, before[1])
    assert used() == before

    # under a cost_usd limit: unpriced is refused, exit 2, nothing settled or held, the reservation still open
    cli.ok(*t, "quota", "set", "cost_usd", "100", "--per", "day")
    err = cli.fails(2, *t, "usage", "reserve", "--tokens", "4000", "--json").json()["error"]
    assert err["code"] == "unpriced_usage" and "--model M" in err["message"] and "--cost-usd" in err["message"]
    assert open_ids() == []
    out = cli.ok(*t, "usage", "reserve", "--tokens", "4000", "--model", "sonnet").out
    assert "at the model registry's prices" in out
    rid = out.split(":")[0]
    hold = max(Decimal(spec["input_per_mtok"]), Decimal(spec["output_per_mtok"])) * 4000 / 1_000_000
    assert cli.js(*t, "usage", "reservations")[0]["cost_usd"] == f"{hold:.6f}"
    r = cli.fails(2, *t, "usage", "settle", rid, *charge, "--model", "gpt-4o")
    assert "'gpt-4o' has no price" in r.err and "cost_usd limit" in r.err and "--cost-usd" in r.err
    err = cli.fails(2, *t, "usage", "settle", rid, *charge, "--json").json()["error"]  # no model to price it by
    assert err["code"] == "unpriced_usage" and "--model M" in err["message"] and "--cost-usd" in err["message"]
    assert open_ids() == [rid] and used() == before
    # the priced hold covers the priced settle (a $0 hold could not: at most 2x the reserved cost)
    assert cli.js(*t, "usage", "settle", rid, *charge, "--model", "sonnet")["cost_usd"] == f"{want:.6f}"
    rid = cli.js(*t, "usage", "reserve", "--tokens", "4000", "--cost-usd", "0")["reservation_id"]
    err = cli.fails(3, *t, "usage", "settle", rid, *charge, "--model", "sonnet", "--json").json()["error"]
    assert err["code"] == "settle_over_reservation" and open_ids() == [rid]


def test_viewer_is_denied_and_the_denial_is_audited(cli: Cli) -> None:
    t = ("--tenant", "q-deny")
    cli.ok("tenant", "create", "q-deny")
    cli.ok(*t, "member", "add", "bob", "--role", "viewer")
    before = cli.js(*t, "quota", "status")
    r = cli.fails(4, *t, "--as", "bob", "quota", "set", "tokens", "5", "--per", "day")
    assert "quotas.manage" in r.err and "bob" in r.err
    # the same with the global options after the subcommand
    r = cli.fails(4, "quota", "set", "tokens", "5", "--per", "day", "--as", "bob", *t)
    assert [q["limit"] for q in cli.js(*t, "quota", "status")["quotas"]] == [q["limit"] for q in before["quotas"]]
    cli.fails(4, *t, "--as", "bob", "usage", "record", "--model", "sonnet", "--input-tokens", "1", "--output-tokens", "0")
    assert cli.js(*t, "--as", "bob", "quota", "status")["user"] == "bob"  # viewers may read headroom

    denied = cli.js(*t, "audit", "list", "--outcome", "denied", "--action", "quota.set")
    assert len(denied) == 2
    ev = denied[0]
    assert ev["actor"] == "bob" and ev["outcome"] == "denied" and ev["details"]["permission"] == "quotas.manage"
    assert ev["details"]["impersonator"]
    human = cli.ok(*t, "audit", "list", "--outcome", "denied").out
    assert "bob" in human and "quota.set" in human and "denied" in human


def test_forty_parallel_records_admit_exactly_ten(cli: Cli) -> None:
    cli.ok("tenant", "create", "q-par")
    cli.ok("--tenant", "q-par", "quota", "set", "tokens", "1000", "--per", "day")
    env = base_env(cli.home)
    env["MUSUBI_TENANT"] = "q-par"
    cmd = [*MUSUBI, "usage", "record", "--model", "m", "--input-tokens", "100", "--output-tokens", "0", "--cost-usd", "0"]
    procs = [subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(40)]
    results = [(p.wait(timeout=300), p.stdout.read() if p.stdout else "", p.stderr.read() if p.stderr else "")
               for p in procs]
    for p in procs:
        for f in (p.stdout, p.stderr):
            if f:
                f.close()
    codes = sorted(rc for rc, _o, _e in results)
    assert codes.count(0) == 10 and codes.count(3) == 30, results
    assert all("Traceback" not in e for _rc, _o, e in results)
    q = _quota(cli.js("--tenant", "q-par", "quota", "status"), "tokens", "day")
    assert q["used"] == 1000 and q["remaining"] == 0
