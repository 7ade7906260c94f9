"""The CLI reproductions of issue 9, item 1: out-of-range numbers exit 2 with the field and its range,
change nothing, and the home still stops, starts and verifies (they once bricked it)."""

from __future__ import annotations

from .helpers import Cli


def test_out_of_range_numbers_exit_2_and_the_home_stays_usable(fresh_home: Cli) -> None:
    cli = fresh_home
    cli.ok("member", "add", "alice", "--role", "member")
    used = {q["metric"]: q["used"] for q in cli.js("quota", "status")["quotas"]}

    r = cli.fails(2, "--as", "alice", "usage", "record", "--model", "gpt-5.4", "--input-tokens", "1",
                  "--output-tokens", "1", "--cost-usd", "10000000000000")
    assert "cost_usd" in r.err and "1,000,000,000" in r.err, r.err
    r = cli.fails(2, "quota", "set", "tokens", "1000000000000000000000000000000", "--per", "day")
    assert "limit" in r.err and "1,000,000,000,000,000,000" in r.err, r.err
    r = cli.fails(2, "--as", "alice", "usage", "reserve", "--tokens", "10000000000000000")
    assert "tokens" in r.err and "out of range" in r.err, r.err

    st = cli.js("quota", "status")
    assert {q["metric"]: q["used"] for q in st["quotas"]} == used
    assert next(q for q in st["quotas"] if q["metric"] == "tokens")["limit"] == 100_000

    # What is accepted afterwards is applied, survives a graceful stop, and the chain verifies.
    cli.ok("--as", "alice", "usage", "record", "--model", "gpt-5.4", "--input-tokens", "2", "--output-tokens", "3")
    cli.ok("engine", "stop")
    cli.ok("engine", "start")
    assert cli.js("audit", "verify")["ok"] is True
    tokens = next(q for q in cli.js("quota", "status")["quotas"] if q["metric"] == "tokens")
    assert tokens["used"] == used["tokens"] + 5
