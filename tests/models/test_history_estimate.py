"""Expected output from ledger history, and the per-model estimate of a run."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from core.errors import BadRequest, NotFound
from core.models.estimate import (
    SHARED_PREAMBLE,
    Document,
    estimate,
    load_workflows,
    single_step,
    workflow,
)
from core.models.history import RatioStats, expected_output, ledger_rows, output_ratios, quantile
from core.models.registry import load_registry
from core.models.tokens import count_exact

REG = load_registry()
CORPUS = Path(__file__).with_name("corpus")


def test_quantile_matches_linear_interpolation() -> None:
    v = [0.1, 0.2, 0.3, 0.4, 1.0]
    assert quantile(v, 0.5) == 0.3
    assert quantile(v, 0.9) == pytest.approx(0.76)
    assert quantile([2.0], 0.9) == 2.0


def test_output_ratios_fold_aliases_and_skip_bad_rows() -> None:
    rows = [("sonnet", "review", 1000, 100), ("claude-sonnet-5-5", "review", 1000, 300),
            ("claude-sonnet-5-5", "review", 0, 50), ("claude-sonnet-5-5", None, 1000, 10),
            ("no-such-model", "review", 1000, 10), ("claude-sonnet-5-5", "review", 2000, 400)]
    st = output_ratios(rows, REG)
    assert list(st) == [("claude-sonnet-5-5", "review")]
    s = st[("claude-sonnet-5-5", "review")]
    assert (s.n, s.median) == (3, pytest.approx(0.2))


def test_defaults_until_enough_history() -> None:
    d = REG.output_default("review")
    few = {("gpt-5.4", "review"): RatioStats(REG.min_samples - 1, 0.5, 0.6, 0.9)}
    e = expected_output(REG, "gpt-5.4", "review", 10_000, 128_000, few)
    assert e.source == "default" and e.samples == REG.min_samples - 1
    assert e.expected == max(round(d.ratio * 10_000), d.floor)
    assert e.high == max(round(d.p90_ratio * 10_000), d.floor)
    assert e.low <= e.expected <= e.high


def test_history_replaces_defaults_with_median_and_p90() -> None:
    hist = {("gpt-5.4", "review"): RatioStats(12, 0.05, 0.5, 0.9)}
    e = expected_output(REG, "gpt-5.4", "review", 10_000, 128_000, hist)
    assert (e.source, e.samples, e.low, e.expected, e.high) == ("history", 12, 500, 5000, 9000)
    capped = expected_output(REG, "gpt-5.4", "review", 10_000, 4000, hist)
    assert capped.high == 4000


def test_ledger_rows_from_a_real_database() -> None:
    from core.storage.duckdb_store import DuckDBStorage

    d = Path(tempfile.mkdtemp(prefix="mh", dir="/tmp"))
    try:
        st = DuckDBStorage(d / "m.duckdb")
        now = datetime(2026, 11, 1, 12)
        rows = [
            (
                "default",
                i,
                now - timedelta(minutes=i),
                "u",
                None,
                "gpt-5.4",
                1000,
                100 * (i + 1),
                1000 + 100 * (i + 1),
                1,
                0,
                "settle",
                None,
                "review",
            )
            for i in range(6)
        ]
        rows.append(("other", 99, now, "u", None, "gpt-5.4", 1000, 9000, 10000, 1, 0, "settle", None, "review"))
        rows.append(("default", 100, now, "u", None, "gpt-5.4", 1000, 5, 1005, 1, 0, "record", None, None))
        # the last two columns are the run and step of a run's call (schema v6): none here
        st.con.executemany("INSERT INTO usage_ledger VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           [(*r, None, None) for r in rows])
        got = ledger_rows(st, "default", now - timedelta(days=30))
        assert len(got) == 6  # other tenant and the row without a task kind are left out
        stats = output_ratios(got, REG)[("gpt-5.4", "review")]
        assert stats.n == 6 and stats.median == pytest.approx(0.35)
        assert ledger_rows(st, "default", now + timedelta(days=1)) == []
        st.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _docs() -> list[Document]:
    return [Document(p.name, p.read_text(encoding="utf-8")) for p in sorted(CORPUS.iterdir())]


def test_workflows_resolve_shared_prompts() -> None:
    wfs = load_workflows()
    assert [s.task for s in wfs["full"].steps] == [
        "requirements",
        "design",
        "tasks",
        "implementation",
        "review",
        "test",
    ]
    assert wfs["full"].steps[4].prompt == wfs["implement"].steps[1].prompt
    with pytest.raises(NotFound, match="unknown workflow"):
        workflow("nope")


def test_estimate_of_a_workflow_per_model() -> None:
    models = [REG.get("gpt-5.4"), REG.get("claude-sonnet-5"), REG.get("ollama/llama3.1:8b")]
    r = estimate(REG, models, _docs(), workflow("spec").steps)
    assert len(r["files"]) == len(_docs())
    f0 = r["files"][0]
    assert f0["tokens"]["o200k_base"]["exact"] and not f0["tokens"]["anthropic-2026"]["exact"]
    gpt, claude, local = r["models"]
    assert gpt["exact_tokens"] and not claude["exact_tokens"]
    # Exact tokenizer: the input band is a point; estimated: a real band.
    assert gpt["input_tokens"]["low"] == gpt["input_tokens"]["expected"] == gpt["input_tokens"]["high"]
    assert claude["input_tokens"]["low"] < claude["input_tokens"]["expected"] < claude["input_tokens"]["high"]
    for m in (gpt, claude):
        c = m["cost_micros"]
        assert 0 < c["low"] <= c["expected"] <= c["high"]
        assert m["requests"] == 3 and m["fits"] and m["max_chunks"] == 1
        # Steps 2 and 3 re-send the files: cache hits except in the high bound.
        assert m["cached_input_tokens"]["expected"] > 0 and m["cached_input_tokens"]["high"] == 0
        assert m["steps"][0]["cached_input_tokens"]["expected"] == 0
    assert local["cost_micros"] == {"low": 0, "expected": 0, "high": 0}


def test_estimate_cost_adds_up_from_its_own_tokens() -> None:
    from core.models.pricing import request_cost, to_micros

    m = REG.get("gpt-5.4-mini")
    text = "word " * 5000
    r = estimate(REG, [m], [Document("a.txt", text)], single_step("summarise"), cache=False)["models"][0]
    step = r["steps"][0]
    exp = to_micros(request_cost(m, step["input_tokens"]["expected"], 0, step["output_tokens"]["expected"]))
    assert r["cost_micros"]["expected"] == exp
    assert count_exact(text) == 5001  # "word", 4999 x " word", and the trailing space
    # + the shared preamble (the cacheable prefix, see LAYOUT) and two messages' overhead (2 x (3 + role) + 3 primer)
    assert r["input_tokens"]["expected"] == 5001 + count_exact(SHARED_PREAMBLE) + 11


def test_estimate_chunks_when_the_context_window_is_too_small() -> None:
    big = Document("big.txt", "lorem ipsum dolor sit amet\n" * 12_000)  # ~72k tokens
    small = REG.get("ollama/qwen2.5-coder:32b")  # 32k window
    large = REG.get("gpt-5.4")
    r = estimate(REG, [small, large], [big], single_step("summarise"))
    s, lg = r["models"]
    assert not s["fits"] and s["max_chunks"] >= 3 and s["requests"] == s["max_chunks"]
    assert lg["fits"] and lg["max_chunks"] == 1


def test_estimate_uses_history_when_present() -> None:
    m = REG.get("gpt-5.4")
    docs = [Document("a.py", "x = 1\n" * 2000)]
    base = estimate(REG, [m], docs, single_step("review"))["models"][0]
    hist = {("gpt-5.4", "review"): RatioStats(50, 1.0, 2.0, 3.0)}
    withh = estimate(REG, [m], docs, single_step("review"), history=hist)["models"][0]
    assert base["steps"][0]["output_source"] == "default"
    assert withh["steps"][0]["output_source"] == "history" and withh["steps"][0]["output_samples"] == 50
    assert withh["output_tokens"]["expected"] == 2 * withh["input_tokens"]["expected"]
    assert withh["cost_micros"]["expected"] > base["cost_micros"]["expected"]


def test_quota_headroom_and_which_quota_trips() -> None:
    m = REG.get("gpt-5.4")
    quotas = [
        {"id": 1, "metric": "tokens", "period": "day", "scope": "tenant", "limit": 100_000, "remaining": 10_000},
        {"id": 2, "metric": "requests", "period": "hour", "scope": "tenant", "limit": 100, "remaining": 100},
        {"id": 3, "metric": "cost_usd", "period": "month", "scope": "user", "user": "ann", "limit": 5_000_000,
         "remaining": 5_000_000},
    ]
    r = estimate(REG, [m], [Document("a.txt", "token " * 20_000)], workflow("spec").steps, quotas=quotas)["models"][0]
    q = {x["metric"]: x for x in r["quotas"]}
    assert q["tokens"]["trips"]["expected"] and r["trips"] == ["tokens per day (tenant)"]
    assert not q["requests"]["trips"]["high"] and q["requests"]["needed"]["expected"] == 3
    assert q["requests"]["remaining_after"]["expected"] == 97
    assert q["cost_usd"]["needed"]["expected"] == r["cost_micros"]["expected"]
    assert q["cost_usd"]["headroom_after"]["high"] < 1.0


def test_retrieval_budget_adds_to_every_step() -> None:
    m = REG.get("gpt-5.4")
    a = estimate(REG, [m], [], workflow("spec").steps, retrieval_tokens=0)["models"][0]
    b = estimate(REG, [m], [], workflow("spec").steps, retrieval_tokens=1000)["models"][0]
    assert b["input_tokens"]["expected"] - a["input_tokens"]["expected"] == 3000


def test_estimate_bad_input() -> None:
    with pytest.raises(BadRequest, match="at least one model"):
        estimate(REG, [], [], single_step("review"))
    with pytest.raises(BadRequest, match="nothing to estimate"):
        estimate(REG, [REG.get("gpt-5.4")], [], [])
    with pytest.raises(BadRequest, match="retrieval"):
        estimate(REG, [REG.get("gpt-5.4")], [], single_step("review"), retrieval_tokens=-5)
