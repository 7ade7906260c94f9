"""The router: tiers per task kind, context fit, allowed models, fallbacks, explanations."""

from __future__ import annotations

import pytest

from core.errors import BadRequest
from core.models.registry import TIERS, load_registry
from core.models.router import NoRoute, route

REG = load_registry()



@pytest.mark.parametrize(
    ("task", "tier"),
    [("classify", "basic"), ("summarise", "basic"), ("requirements", "standard"), ("tasks", "standard"),
     ("test", "standard"), ("design", "advanced"), ("implementation", "advanced"), ("review", "advanced")],
)
def test_each_task_gets_at_least_its_tier(task: str, tier: str) -> None:
    d = route(REG, task, 20_000)
    assert d.tier == tier
    assert TIERS.index(d.choice.model.tier) >= TIERS.index(tier)
    for f in d.fallbacks:
        assert TIERS.index(f.model.tier) >= TIERS.index(tier)


def test_choice_is_the_cheapest_eligible_model() -> None:
    d = route(REG, "implementation", 20_000)
    eligible_costs = [c.cost_micros for c in [d.choice, *d.fallbacks]]
    assert d.choice.cost_micros == min(eligible_costs)
    # The hardest tasks never go to a basic model, however cheap.
    assert d.choice.model.tier != "basic"
    basic = [r for r in d.rejected if r.model.tier == "basic" and not r.model.is_local]
    assert basic and all("below the needed advanced" in r.reason for r in basic)


def test_huge_inputs_reject_models_whose_window_is_too_small() -> None:
    huge = route(REG, "implementation", 700_000)  # only ~1M-window models fit
    assert huge.choice.model.context_window >= 700_000
    too_small = [r for r in huge.rejected if "context window" in (r.reason or "")]
    assert {r.model.id for r in too_small} >= {"mistral-medium-3.5"}


def test_small_and_large_inputs_pick_different_models() -> None:
    # codestral (256k window) is the cheaper of the two while the input fits it; past its window
    # the router must move to the 1M-window model, saying why.
    pair = {"codestral-latest", "gemini-3.5-flash-lite"}
    small = route(REG, "test", 150_000, allowed=pair)
    large = route(REG, "test", 300_000, allowed=pair)
    assert small.choice.model.id == "codestral-latest"
    assert large.choice.model.id == "gemini-3.5-flash-lite"
    reason = next(r.reason for r in large.rejected if r.model.id == "codestral-latest")
    assert reason and "context window 256,000 <" in reason


def test_estimated_tokenizers_use_their_upper_band_for_fit() -> None:
    # 300k o200k tokens of code is ~600k in the upper Claude 5 band: Claude 5 models still fit
    # their 1M window, Haiku 4.5 (200k) does not.
    d = route(REG, "requirements", 300_000)
    haiku = next(r for r in d.rejected if r.model.id == "claude-haiku-4-5")
    assert "context window" in haiku.reason
    opus_like = [c for c in [d.choice, *d.fallbacks] if c.model.tokenizer == "anthropic-2026"]
    for c in opus_like:
        assert c.input_high > c.input_tokens > 300_000


def test_allowed_models_restrict_the_choice() -> None:
    d = route(REG, "review", 5_000, allowed={"claude-sonnet-5", "gpt-5.5"})
    assert d.choice.model.id in {"claude-sonnet-5", "gpt-5.5"}
    assert all(f.model.id in {"claude-sonnet-5", "gpt-5.5"} for f in d.fallbacks)
    assert any(r.reason == "not in the tenant's allowed models" for r in d.rejected)


def test_no_route_explains_every_rejection() -> None:
    with pytest.raises(NoRoute) as ei:
        route(REG, "design", 5_000, allowed={"gpt-5.4-nano"})
    err = ei.value
    assert "allowed" in err.message and "musubi models allowed set" in err.message
    reasons = {r["model"]: r["rejected"] for r in err.extra["rejected"]}
    assert "below the needed advanced" in reasons["gpt-5.4-nano"]


def test_fallbacks_prefer_other_providers() -> None:
    d = route(REG, "implementation", 20_000)
    providers = [d.choice.model.provider] + [f.model.provider for f in d.fallbacks]
    assert len(d.fallbacks) == REG.routing.fallbacks
    assert len(set(providers)) == len(providers)


def test_local_models_are_excluded_until_config_allows_them() -> None:
    d = route(REG, "classify", 500)
    assert not d.choice.model.is_local
    assert any(r.model.is_local and "exclude_providers" in r.reason for r in d.rejected)
    local_ok = load_registry({"routing": {"exclude_providers": []}})
    d2 = route(local_ok, "classify", 500)
    assert d2.choice.model.is_local and d2.choice.cost_micros == 0


def test_rules_from_config_change_the_tier() -> None:
    reg = load_registry({"routing": {"tasks": {"summarise": "frontier"}}})
    assert route(reg, "summarise", 1000).choice.model.tier == "frontier"


def test_explanation_and_json() -> None:
    d = route(REG, "review", 12_345)
    text = "\n".join(d.explanation())
    assert "needs tier 'advanced'" in text and d.choice.model.id in text and "fallbacks" in text
    j = d.as_json()
    assert j["choice"]["model"] == d.choice.model.id and j["explanation"]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_bad_input_tokens(bad: object) -> None:
    with pytest.raises(Exception) as ei:
        route(REG, "review", bad)  # type: ignore[arg-type]
    assert "input tokens" in str(ei.value)


def test_unknown_task_kind() -> None:
    with pytest.raises(BadRequest, match="unknown task kind"):
        route(REG, "dance", 10)
