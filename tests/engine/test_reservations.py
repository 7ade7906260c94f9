"""Reserve → settle → release, expiry by the engine's sweeper, and survival across restarts."""

from __future__ import annotations

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
