"""Price arithmetic: cached input, long-context tiers and rounding to micro-dollars."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import BadRequest
from core.models.pricing import micros_to_usd, rates_for, request_cost, to_micros
from core.models.registry import load_registry

REG = load_registry()


def test_a_million_tokens_cost_the_list_price() -> None:
    m = REG.get("gpt-5.4")
    assert to_micros(request_cost(m, 200_000, 0, 0)) == 500_000
    assert to_micros(request_cost(m, 0, 0, 1_000_000)) == 15_000_000


def test_cached_input_is_priced_separately() -> None:
    m = REG.get("gpt-5.4")  # $2.50 in, $0.25 cached, $15 out
    c = request_cost(m, 60_000, 40_000, 2_000)
    # 60k * 2.5 + 40k * 0.25 + 2k * 15 = 150,000 + 10,000 + 30,000 micro-dollars
    assert c == Decimal(190_000)
    assert micros_to_usd(to_micros(c)) == "0.190000"


def test_rounding_low_floors_high_ceils_expected_half_up() -> None:
    nano = REG.get("gpt-5.4-nano")  # $0.20 per M = 0.2 micro-dollars per token
    one = request_cost(nano, 1, 0, 0)
    assert one == Decimal("0.2")
    assert (to_micros(one, "low"), to_micros(one, "expected"), to_micros(one, "high")) == (0, 0, 1)
    half = request_cost(nano, 0, 25, 0)  # 25 cached * 0.02 = 0.5
    assert half == Decimal("0.50")
    assert to_micros(half, "expected") == 1  # half-up, not banker's rounding
    assert to_micros(request_cost(REG.get("gpt-5.4-mini"), 0, 3, 0)) == 0  # 0.225 -> 0


def test_long_context_tier_applies_above_threshold() -> None:
    m = REG.get("gpt-5.4")
    assert not rates_for(m, 272_000).long_context
    r = rates_for(m, 272_001)
    assert r.long_context and r.input == Decimal("5.00") and r.output == Decimal("22.50")
    assert to_micros(request_cost(m, 272_001, 0, 0)) == 1_360_005
    g = REG.get("gemini-2.5-pro")
    # 210k prompt > 200k: every token at the long rates ($2.50 in, $0.25 cached, $15 out).
    assert to_micros(request_cost(g, 150_000, 60_000, 1000)) == 375_000 + 15_000 + 15_000
    assert to_micros(request_cost(g, 150_000, 50_000, 1000)) == 187_500 + 6_250 + 10_000


def test_local_models_are_free() -> None:
    assert to_micros(request_cost(REG.get("ollama/llama3.1:8b"), 10**6, 10**6, 10**6), "high") == 0


def test_negative_tokens_are_refused() -> None:
    with pytest.raises(BadRequest):
        request_cost(REG.get("gpt-5.4"), -1, 0, 0)


def test_usage_recorded_elsewhere_is_priced_uncached_with_the_tier_by_prompt_per_request() -> None:
    from core.models.pricing import usage_cost

    m = REG.get("gpt-5.4")  # $2.50 in, $15 out; above 272k prompt tokens $5 in, $22.5 out
    assert usage_cost(m, 600, 200) == 600 * 2.5 + 200 * 15  # 4,500 micro-dollars
    assert usage_cost(m, 300_000, 1_000) == 300_000 * 5 + 1_000 * 22.5  # one request over the threshold
    assert usage_cost(m, 300_000, 1_000, requests=2) == 300_000 * 2.5 + 1_000 * 15  # 150k each: base rates
    assert usage_cost(m, 10, 0, requests=0) == 25  # no request count: the whole prompt decides the tier
    assert usage_cost(REG.get("gpt-5.4-nano"), 1, 0) == 0  # 0.2 micro-dollars: rounded half-up to 0
    with pytest.raises(BadRequest, match="must be >= 0"):
        usage_cost(m, -1, 0)
