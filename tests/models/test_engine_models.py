"""The model and cost routes against a real engine on a short temporary home."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import BadRequest, NotFound, PermissionDenied
from tests.engine.helpers import Home

CORPUS = Path(__file__).with_name("corpus")


@pytest.fixture(scope="module", autouse=True)
def cfgdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="mc", dir="/tmp"))
    old = os.environ.get("MUSUBI_CONFIG_DIR")
    os.environ["MUSUBI_CONFIG_DIR"] = str(d)  # the engine inherits it when it starts
    try:
        yield d
    finally:
        if old is None:
            os.environ.pop("MUSUBI_CONFIG_DIR", None)
        else:
            os.environ["MUSUBI_CONFIG_DIR"] = old
        shutil.rmtree(d, ignore_errors=True)


def test_list_and_show(eng: Home) -> None:
    t = eng.new_tenant("mod")
    c = eng.client(t)
    r = c.get("/v1/models")
    assert len(r["models"]) >= 15 and r["allowed"] is None
    assert all(m["allowed"] for m in r["models"])
    m = c.get("/v1/models/azure/gpt-5.4")
    assert m["provider"] == "azure" and m["input_per_mtok"] == "2.5" and m["source"]
    assert c.get("/v1/models/ollama/qwen2.5-coder:32b")["tier"] == "basic"
    assert c.get("/v1/models/sonnet")["id"] == "claude-sonnet-5-5"
    with pytest.raises(NotFound) as ei:
        c.get("/v1/models/gpt-5.44")
    assert "gpt-5.4" in ei.value.extra["suggestions"]


def test_guest_may_not_read_models(eng: Home) -> None:
    t = eng.new_tenant("modg", {"gina": "guest"})
    with pytest.raises(PermissionDenied, match="quotas.read"):
        eng.client(t, as_user="gina").get("/v1/models")


def test_allowed_models_are_pinned_enforced_and_audited(eng: Home) -> None:
    t = eng.new_tenant("pin", {"val": "viewer", "mem": "member"})
    owner = eng.client(t)
    with pytest.raises(PermissionDenied, match="quotas.manage"):
        eng.client(t, as_user="val").put("/v1/models/allowed", {"models": ["gpt-5.4"]})
    with pytest.raises(NotFound):
        owner.put("/v1/models/allowed", {"models": ["gpt-5.4", "no-such-model"]})
    with pytest.raises(BadRequest, match="musubi models allowed clear"):
        owner.put("/v1/models/allowed", {"models": []})
    assert owner.get("/v1/models/allowed")["allowed"] is None  # nothing changed by the refusals
    r = owner.put("/v1/models/allowed", {"models": ["gpt-5.4", "sonnet"]})
    assert r["allowed"] == ["claude-sonnet-5-5", "gpt-5.4"] and r["previous"] is None
    listed = {m["id"]: m["allowed"] for m in owner.get("/v1/models")["models"]}
    assert listed["gpt-5.4"] and listed["claude-sonnet-5-5"] and not listed["gpt-5.5"]
    mem = eng.client(t, as_user="mem")
    # The router picks only pinned models ...
    d = mem.post("/v1/models/route", {"task": "review", "input_tokens": 2000})
    assert d["choice"]["model"] in ("gpt-5.4", "claude-sonnet-5-5")
    # ... and an estimate naming another model is refused, and the refusal audited.
    with pytest.raises(PermissionDenied) as ei:
        mem.post("/v1/cost/estimate", {"models": ["gpt-5.5"], "texts": [{"text": "hi"}]})
    assert ei.value.code == "model_not_allowed" and "gpt-5.5" in ei.value.message
    denied = eng.audit(t, outcome="denied", action="cost.estimate")
    assert denied and denied[-1]["actor"] == "mem"
    allows = eng.audit(t, action="models.allow")
    assert allows[-1]["details"]["models"] == ["claude-sonnet-5-5", "gpt-5.4"]
    assert any(e["actor"] == "val" for e in eng.audit(t, outcome="denied", action="models.allow"))
    # The pin survives a restart (it is in the database, not just in memory).
    eng.stop()
    eng.start()
    assert eng.client(t).get("/v1/models/allowed")["allowed"] == ["claude-sonnet-5-5", "gpt-5.4"]
    owner.delete("/v1/models/allowed")
    assert owner.get("/v1/models/allowed")["allowed"] is None
    assert eng.audit(t, action="models.allow_all")[-1]["details"]["previous"] == ["claude-sonnet-5-5", "gpt-5.4"]


def test_estimate_reads_files_and_breaks_down_per_file(eng: Home, tmp_path: Path) -> None:
    t = eng.new_tenant("est")
    files = []
    for p in sorted(CORPUS.iterdir()):
        dst = tmp_path / p.name
        dst.write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
        files.append(str(dst))
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01binary")
    files.append(str(tmp_path / "blob.bin"))
    files.append(str(tmp_path / "missing.txt"))
    c = eng.client(t)
    r = c.post("/v1/cost/estimate", {"models": ["gpt-5.4", "claude-opus-5", "gemini-3.5-flash-lite"], "paths": files,
                                     "texts": [{"name": "note", "text": "extra context"}], "workflow": "spec"})
    assert r["workflow"] == "spec" and [s["task"] for s in r["steps"]] == ["requirements", "design", "tasks"]
    names = [f["name"] for f in r["files"]]
    assert len(names) == len(list(CORPUS.iterdir())) + 1 and "note" in names
    assert {s["reason"] for s in r["skipped"]} >= {"binary file"}
    assert len(r["skipped"]) == 2
    py = next(f for f in r["files"] if f["name"].endswith("code_py.py"))
    from core.models.tokens import count_exact

    assert py["tokens"]["o200k_base"]["tokens"] == count_exact((CORPUS / "code_py.py").read_text())
    gpt = r["models"][0]
    assert gpt["cost_micros"]["low"] <= gpt["cost_micros"]["expected"] <= gpt["cost_micros"]["high"]
    quotas = {(q["metric"], q["period"]) for q in gpt["quotas"]}
    assert quotas == {("tokens", "day"), ("requests", "hour")}  # a new tenant's defaults
    # The same files again: counted from the cache, same numbers.
    r2 = c.post("/v1/cost/estimate", {"models": ["gpt-5.4"], "paths": files, "workflow": "spec",
                                      "texts": [{"name": "note", "text": "extra context"}]})
    assert r2["models"][0]["input_tokens"] == gpt["input_tokens"]


def test_estimate_shows_which_quota_would_trip(eng: Home) -> None:
    t = eng.new_tenant("trip")
    c = eng.client(t)
    c.put("/v1/quotas", {"metric": "tokens", "limit": 1000, "period": "day"})
    r = c.post(
        "/v1/cost/estimate",
        {"models": ["gpt-5.4-mini"], "texts": [{"text": "word " * 3000}], "task": "summarise"},
    )
    m = r["models"][0]
    assert "tokens per day (tenant)" in m["trips"]
    q = next(q for q in m["quotas"] if q["metric"] == "tokens")
    assert q["remaining_now"] == 1000 and q["remaining_after"]["expected"] < 0


def test_estimate_bad_input(eng: Home) -> None:
    t = eng.new_tenant("bad")
    c = eng.client(t)
    for body, needle in [
        ({"models": []}, "non-empty list"),
        ({"models": ["gpt-5.4"], "paths": ["relative/x.py"]}, "absolute"),
        ({"models": ["gpt-5.4"], "workflow": "spec", "task": "review"}, "not both"),
        ({"models": ["gpt-5.4"], "task": "dance"}, "unknown task kind"),
        ({"models": ["gpt-5.4"], "retrieval_tokens": -1}, "retrieval_tokens"),
        ({"models": ["gpt-5.4"], "texts": [{"name": "x"}]}, "text"),
    ]:
        with pytest.raises(BadRequest, match=needle):
            c.post("/v1/cost/estimate", body)
    with pytest.raises(NotFound, match="unknown workflow"):
        c.post("/v1/cost/estimate", {"models": ["gpt-5.4"], "workflow": "nope"})
    with pytest.raises(BadRequest, match="input_tokens"):
        c.post("/v1/models/route", {"task": "review", "input_tokens": -3})


def test_estimate_learns_output_from_the_ledger(eng: Home) -> None:
    t = eng.new_tenant("hist")
    c = eng.client(t)
    body = {"models": ["gpt-5.4"], "texts": [{"text": "def f(x):\n    return x\n" * 300}], "task": "review"}
    before = c.post("/v1/cost/estimate", body)["models"][0]
    assert before["steps"][0]["output_source"] == "default"
    # Settled runs with a task kind, written while the engine is stopped (as a run would leave them).
    eng.stop()
    import duckdb

    con = duckdb.connect(str(eng.paths.db))
    now = datetime.now(UTC).replace(tzinfo=None)
    start = int(con.execute("SELECT coalesce(max(entry_id), 0) FROM usage_ledger").fetchone()[0]) + 1
    for i in range(8):
        row = [t, start + i, now, "u", None, "gpt-5.4", 1000, 2000 + 100 * i, 3000 + 100 * i, 1, 0, "settle", None]
        # the last two columns are the run and step of a run's call (schema v6): none here
        con.execute("INSERT INTO usage_ledger VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", [*row, "review", None, None])
    con.close()
    eng.start()
    after = c.post("/v1/cost/estimate", body)["models"][0]
    assert after["steps"][0]["output_source"] == "history" and after["steps"][0]["output_samples"] == 8
    ratio = after["output_tokens"]["expected"] / after["input_tokens"]["expected"]
    assert 2.3 < ratio < 2.4  # the median of 2.0 .. 2.7
    assert after["cost_micros"]["expected"] > before["cost_micros"]["expected"]


def test_broken_config_is_a_clear_error_until_fixed(eng: Home, cfgdir: Path) -> None:
    t = eng.new_tenant("cfg")
    c = eng.client(t)
    cfg = cfgdir / "config.toml"
    cfg.write_text('[[models]]\nid = "gpt-5.4"\ninput_per_mtok = -2\n')
    try:
        with pytest.raises(BadRequest) as ei:
            c.get("/v1/models")
        assert ei.value.code == "bad_config" and str(cfg) in ei.value.message and "input_per_mtok" in ei.value.message
        cfg.write_text('[[models]]\nid = "gpt-5.4"\ndeployment = "x"\n\n[routing]\nexclude_providers = []\n')
        assert c.get("/v1/models/gpt-5.4")["deployment"] == "x"
        d = c.post("/v1/models/route", {"task": "classify", "input_tokens": 100})
        assert d["choice"]["provider"] == "ollama"  # local models allowed by the config now
    finally:
        cfg.unlink()
    assert "deployment" not in c.get("/v1/models/gpt-5.4")


def test_workflows_route(eng: Home) -> None:
    t = eng.new_tenant("wf")
    w = {x["name"]: x for x in eng.client(t).get("/v1/cost/workflows")["workflows"]}
    assert w["implement"]["steps"] == ["implementation", "review", "test"]




def test_usage_with_a_task_kind_feeds_the_estimate(eng: Home) -> None:
    t = eng.new_tenant("feed")
    c = eng.client(t)
    with pytest.raises(BadRequest, match="unknown task kind"):
        c.post("/v1/usage", {"model": "gpt-5.4-mini", "input_tokens": 100, "output_tokens": 10, "task_kind": "dance"})
    for i in range(6):
        c.post(
            "/v1/usage",
            {
                "model": "gpt-5.4-mini",
                "input_tokens": 1000,
                "output_tokens": 500 + i,
                "task_kind": "test",
            },
        )
    rid = c.post("/v1/reservations", {"tokens": 2000})["reservation_id"]
    c.post(f"/v1/reservations/{rid}/settle", {"input_tokens": 1000, "output_tokens": 510, "model": "gpt-5.4-mini",
                                              "task_kind": "test"})
    assert eng.audit(t, action="usage.record")[-1]["details"]["task_kind"] == "test"
    r = c.post("/v1/cost/estimate", {"models": ["gpt-5.4-mini"], "texts": [{"text": "x = 1\n" * 500}], "task": "test"})
    step = r["models"][0]["steps"][0]
    assert step["output_source"] == "history" and step["output_samples"] == 7
    assert r["history_samples"] == 7
