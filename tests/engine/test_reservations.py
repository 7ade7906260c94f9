"""Reserve → settle → release, expiry by the engine's sweeper, and survival across restarts."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest

from .helpers import Home, poll


def _tenant(eng: Home, limit: int = 1000) -> str:
    t = eng.new_tenant("rs", {"ann": "member", "ben": "member"})
    eng.client(t).put("/v1/quotas", {"metric": "tokens", "limit": limit, "period": "day"})
    return t


def test_reservation_counts_against_the_limit_and_settle_records_actual(eng: Home) -> None:
    t = _tenant(eng)
    ann = eng.client(t, as_user="ann")
    r = ann.post("/v1/reservations", {"tokens": 600, "ttl_s": 300})
    rid = r["reservation_id"]
    assert rid.startswith("rsv_") and r["tokens"] == 600
    q = eng.quota(t, "tokens", "day")
    assert (q["used"], q["reserved"], q["remaining"]) == (0, 600, 400)
    # 600 held + 500 > 1000: refused, and nothing charged.
    status, body = eng.raw("POST", "/v1/usage", {"model": "m", "input_tokens": 500}, tenant=t, as_user="ben")
    assert status == 429 and body["error"]["quota"]["reserved"] == 600
    status, body = eng.raw("POST", "/v1/reservations", {"tokens": 401}, tenant=t, as_user="ben")
    assert status == 429
    assert eng.raw("POST", "/v1/usage", {"model": "m", "input_tokens": 400}, tenant=t, as_user="ben")[0] == 201
    q = eng.quota(t, "tokens", "day")
    assert (q["used"], q["reserved"], q["remaining"]) == (400, 600, 0)
    # The call used more than estimated: settle records the actual, overshoot reported.
    s = ann.post(f"/v1/reservations/{rid}/settle", {"input_tokens": 500, "output_tokens": 200, "model": "big"})
    assert s["settled"] is True and s["tokens"] == 700 and s["overshoot"] == {"tokens": 100}
    q = eng.quota(t, "tokens", "day")
    assert (q["used"], q["reserved"], q["remaining"]) == (1100, 0, 0)
    (ev,) = eng.audit(t, action="usage.settle")
    assert ev["details"]["overshoot"] == {"tokens": 100} and ev["details"]["reserved"]["tokens"] == 600
    # Closed: neither settle nor release finds it again.
    assert eng.raw("POST", f"/v1/reservations/{rid}/settle", {"input_tokens": 1}, tenant=t, as_user="ann")[0] == 404
    assert eng.raw("POST", f"/v1/reservations/{rid}/release", {}, tenant=t, as_user="ann")[0] == 404
    hist = eng.client(t).get("/v1/usage/history", {"bucket": "day"})
    assert sum(r["tokens"] for r in hist["rows"]) == 1100


def test_settle_under_estimate_frees_the_rest(eng: Home) -> None:
    t = _tenant(eng)
    ann = eng.client(t, as_user="ann")
    rid = ann.post("/v1/reservations", {"tokens": 800})["reservation_id"]
    s = ann.post(f"/v1/reservations/{rid}/settle", {"input_tokens": 100, "output_tokens": 50})
    assert s["overshoot"] == {}
    q = eng.quota(t, "tokens", "day")
    assert (q["used"], q["reserved"], q["remaining"]) == (150, 0, 850)


def test_release_frees_the_headroom(eng: Home) -> None:
    t = _tenant(eng)
    ann = eng.client(t, as_user="ann")
    rid = ann.post("/v1/reservations", {"tokens": 900})["reservation_id"]
    assert eng.quota(t, "tokens", "day")["remaining"] == 100
    assert [r["reservation_id"] for r in ann.get("/v1/reservations")] == [rid]
    assert ann.post(f"/v1/reservations/{rid}/release", {})["released"] is True
    q = eng.quota(t, "tokens", "day")
    assert (q["used"], q["reserved"], q["remaining"]) == (0, 0, 1000)
    assert ann.get("/v1/reservations") == []
    assert eng.raw("POST", "/v1/usage", {"model": "m", "input_tokens": 1000}, tenant=t, as_user="ben")[0] == 201
    (ev,) = eng.audit(t, action="usage.release")
    assert ev["actor"] == "ann" and ev["resource"] == f"reservation:{rid}"


def test_only_the_holder_or_a_quota_manager_may_close_a_reservation(eng: Home) -> None:
    t = _tenant(eng)
    rid = eng.client(t, as_user="ann").post("/v1/reservations", {"tokens": 10})["reservation_id"]
    status, body = eng.raw("POST", f"/v1/reservations/{rid}/release", {}, tenant=t, as_user="ben")
    assert status == 403 and body["error"]["permission"] == "quotas.manage"
    assert rid not in {r["reservation_id"] for r in eng.client(t, as_user="ben").get("/v1/reservations")}
    # The tenant owner manages quotas, sees and may settle anyone's reservation (charged to its holder).
    assert rid in {r["reservation_id"] for r in eng.client(t).get("/v1/reservations")}
    eng.client(t).post(f"/v1/reservations/{rid}/settle", {"input_tokens": 7})
    (entry,) = [e for e in eng.audit(t, action="usage.settle")]
    assert entry["details"]["tokens"] == 7
    assert eng.quota(t, "tokens", "day")["used"] == 7


@pytest.mark.parametrize("ttl", [0, -1, 86_401, "soon"])
def test_bad_ttl_is_refused(eng: Home, ttl: object) -> None:
    t = _tenant(eng)
    status, body = eng.raw("POST", "/v1/reservations", {"tokens": 1, "ttl_s": ttl}, tenant=t)
    assert status == 400 and "ttl_s" in body["error"]["message"]
    assert eng.quota(t, "tokens", "day")["reserved"] == 0


def test_expired_reservation_frees_headroom_and_is_audited(eng: Home) -> None:
    t = _tenant(eng)
    rid = eng.client(t, as_user="ann").post("/v1/reservations", {"tokens": 900, "ttl_s": 1})["reservation_id"]
    assert eng.raw("POST", "/v1/usage", {"model": "m", "input_tokens": 200}, tenant=t, as_user="ben")[0] == 429
    # The engine sweeps once a second; poll rather than time it.
    poll(lambda: eng.quota(t, "tokens", "day")["reserved"] == 0)
    assert eng.raw("POST", "/v1/usage", {"model": "m", "input_tokens": 200}, tenant=t, as_user="ben")[0] == 201
    (ev,) = eng.audit(t, action="usage.expire")
    assert ev["actor"] == "engine" and ev["resource"] == f"reservation:{rid}"
    assert ev["details"]["user"] == "ann" and ev["details"]["tokens"] == 900
    assert eng.raw("POST", f"/v1/reservations/{rid}/settle", {"input_tokens": 5}, tenant=t, as_user="ann")[0] == 404
    assert eng.client(t).post("/v1/audit/verify", {})["ok"] is True


def test_usage_without_a_cost_is_priced_by_the_engine_or_refused_under_a_cost_limit(eng: Home) -> None:
    # Any client, not only the CLI: before, the API charged $0 for usage posted without cost_usd.
    t = _tenant(eng, limit=10**9)
    ann = eng.client(t, as_user="ann")
    spec = eng.client(t).get("/v1/models/sonnet")
    rate_in, rate_out = Decimal(spec["input_per_mtok"]), Decimal(spec["output_per_mtok"])  # micro-dollars/token

    def usd(micros: Decimal) -> str:
        return f"{micros.quantize(Decimal(1), ROUND_HALF_UP) / 1_000_000:.6f}"

    rec = ann.post("/v1/usage", {"model": "sonnet", "input_tokens": 1200, "output_tokens": 300})
    assert rec["cost_usd"] == usd(rate_in * 1200 + rate_out * 300) != "0.000000"
    assert rec["priced"] is True and rec["warning"] is None
    rsv = ann.post("/v1/reservations", {"tokens": 4000, "model": "sonnet"})  # held at the dearer rate, rounded up
    assert rsv["cost_usd"] == usd(max(rate_in, rate_out) * 4000) and rsv["priced"] is True
    s = ann.post(f"/v1/reservations/{rsv['reservation_id']}/settle",
                 {"input_tokens": 3100, "output_tokens": 700, "model": "sonnet"})
    assert s["cost_usd"] == usd(rate_in * 3100 + rate_out * 700) and s["priced"] is True
    given = ann.post("/v1/usage", {"model": "sonnet", "input_tokens": 1, "cost_usd": "0.5"})
    assert given["cost_usd"] == "0.500000" and given["priced"] is True  # a given cost is charged as given
    sources = [e["details"]["cost_source"] for e in eng.audit(t) if e["action"].startswith("usage.")]
    assert sources == ["registry", "registry", "registry", "given"]

    # No cost_usd limit applies: an unknown model is charged $0, flagged and explained.
    rec = ann.post("/v1/usage", {"model": "gpt-4o", "input_tokens": 700, "output_tokens": 100})
    assert rec["cost_usd"] == "0.000000" and rec["priced"] is False and rec["tokens"] == 800
    assert "'gpt-4o'" in rec["warning"] and "cost_usd" in rec["warning"] and "musubi models import" in rec["warning"]
    assert eng.audit(t, action="usage.record")[-1]["details"]["cost_source"] == "unpriced"
    rid = ann.post("/v1/reservations", {"tokens": 10})["reservation_id"]
    s = ann.post(f"/v1/reservations/{rid}/settle", {"input_tokens": 10})  # no model to price it by
    assert s["priced"] is False and "no model" in s["warning"]

    # A cost_usd limit applies to ann: nothing unpriced gets through, and nothing changes.
    eng.client(t).put("/v1/quotas", {"metric": "cost_usd", "limit": "100", "period": "day", "user": "ann"})
    rid = ann.post("/v1/reservations", {"tokens": 4000, "model": "sonnet"})["reservation_id"]
    before = (eng.client(t).get("/v1/usage/history")["rows"], eng.head_seq(t))
    for path, body in (("/v1/usage", {"model": "gpt-4o", "input_tokens": 700}),
                       ("/v1/reservations", {"tokens": 10}),
                       ("/v1/reservations", {"tokens": 10, "model": "gpt-4o"}),
                       (f"/v1/reservations/{rid}/settle", {"input_tokens": 10, "model": "gpt-4o"}),
                       (f"/v1/reservations/{rid}/settle", {"input_tokens": 10})):
        status, answer = eng.raw("POST", path, body, tenant=t, as_user="ann")
        err = answer["error"]
        assert status == 400 and err["code"] == "unpriced_usage" and err["field"] == "cost_usd", (path, answer)
        assert "cost_usd limit ($100.000000 per day for user ann)" in err["message"] and "--cost-usd" in err["message"]
    assert "is not in the model registry" in err["message"] or "no model" in err["message"]
    assert (eng.client(t).get("/v1/usage/history")["rows"], eng.head_seq(t)) == before
    assert [r["reservation_id"] for r in ann.get("/v1/reservations")] == [rid]  # still open
    # ben has no cost limit of his own: his unpriced record still goes through, flagged
    assert eng.client(t, as_user="ben").post("/v1/usage", {"model": "gpt-4o", "input_tokens": 1})["priced"] is False


def test_reservations_survive_restart_and_kill(home: Home) -> None:
    home.start()
    t = _tenant(home)
    ann = home.client(t, as_user="ann")
    r1 = ann.post("/v1/reservations", {"tokens": 300, "ttl_s": 3600})["reservation_id"]
    r2 = ann.post("/v1/reservations", {"tokens": 200, "ttl_s": 3600})["reservation_id"]
    ann.post("/v1/usage", {"model": "m", "input_tokens": 100})
    home.stop()
    home.start()
    q = home.quota(t, "tokens", "day")
    assert (q["used"], q["reserved"], q["remaining"]) == (100, 500, 400)
    assert {r["reservation_id"] for r in ann.get("/v1/reservations")} == {r1, r2}
    ann.post(f"/v1/reservations/{r1}/settle", {"input_tokens": 250})
    home.kill9()
    home.start()
    q = home.quota(t, "tokens", "day")
    assert (q["used"], q["reserved"], q["remaining"]) == (350, 200, 450)
    assert [r["reservation_id"] for r in ann.get("/v1/reservations")] == [r2]
    assert ann.post(f"/v1/reservations/{r2}/release", {})["released"] is True
    assert home.quota(t, "tokens", "day")["reserved"] == 0
