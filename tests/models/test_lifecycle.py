"""Lifecycle: status by date, the router's handling of retired/deprecated/legacy models, capabilities, fallbacks."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from core.models.estimate import Document, estimate, single_step
from core.models.registry import ConfigError, ModelRetired, load_registry
from core.models.router import NoRoute, route

TODAY = date(2026, 12, 6)
TOMORROW = TODAY + timedelta(days=1)
REG = load_registry()


def _dated(**lifecycle: object) -> dict[str, object]:
    """A config entry retiring the cheapest advanced model, so the router would pick it."""
    return {"id": "mistral-large-4", **lifecycle}


def test_a_model_retiring_tomorrow_is_picked_today_and_refused_after() -> None:
    reg = load_registry({"models": [_dated(retires_on=TOMORROW.isoformat(), replacement="gpt-6.1-sol")]})
    m = reg.get("mistral-large-4")
    assert m.status_on(TODAY) == "active" and m.status_on(TOMORROW) == "retired"
    today = route(reg, "implementation", 40_000, today=TODAY)
    assert today.choice.model.id == "mistral-large-4"
    after = route(reg, "implementation", 40_000, today=TOMORROW)
    assert after.choice.model.id != "mistral-large-4"
    why = next(r for r in after.rejected if r.model.id == "mistral-large-4").reason
    assert why == f"retired on {TOMORROW}; replaced by gpt-6.1-sol"
    doc = [Document("a.py", "print(1)\n")]
    assert estimate(reg, [m], doc, single_step("review"), today=TODAY)["models"][0]["model"] == "mistral-large-4"
    with pytest.raises(ModelRetired) as ei:
        estimate(reg, [m], doc, single_step("review"), today=TOMORROW)
    assert "Use gpt-6.1-sol instead" in ei.value.message and ei.value.exit_code == 2
    assert ei.value.extra["replacement"] == "gpt-6.1-sol"


def test_deprecated_on_moves_status_and_estimates_warn() -> None:
    reg = load_registry({"models": [_dated(deprecated_on=TODAY.isoformat(), retires_on="2027-06-01",
                                           replacement="gpt-6.1-sol")]})
    m = reg.get("mistral-large-4")
    assert m.status_on(TODAY - timedelta(days=1)) == "active" and m.status_on(TODAY) == "deprecated"
    e = estimate(reg, [m, reg.get("gpt-6.1-sol")], [Document("a.py", "x = 1\n")], single_step("review"), today=TODAY)
    assert e["warnings"] == ["mistral-large-4 is deprecated and retires on 2027-06-01; use gpt-6.1-sol instead."]
    assert e["models"][0]["status"] == "deprecated" and "lifecycle" in e["models"][0]
    assert e["models"][1]["status"] == "active" and "lifecycle" not in e["models"][1]


def test_router_never_picks_a_retired_model() -> None:
    # The reproduction: 300k tokens of implementation went to azure/gpt-4.1 (retired 2026-10-14).
    d = route(REG, "implementation", 300_000, today=TODAY)
    picked = [d.choice, *d.fallbacks]
    assert all(c.model.status_on(TODAY) != "retired" for c in picked)
    assert "azure/gpt-4.1" not in {c.model.id for c in picked}
    why = next(r for r in d.rejected if r.model.id == "azure/gpt-4.1").reason
    assert why.startswith("retired on 2026-10-14") and "azure/gpt-6.1-sol" in why


@pytest.mark.parametrize("task", ["design", "implementation", "review"])
def test_deprecated_and_legacy_models_only_when_nothing_else_fits(task: str) -> None:
    # Reproduction: design, implementation and review at 40k all went to mistral-medium-3.5 (deprecated).
    d = route(REG, task, 40_000, today=TODAY)
    assert d.choice.status == "active" and not d.fallback_to_old
    assert all(f.status in ("active", "preview") for f in d.fallbacks)
    reasons = {r.model.id: r.reason for r in d.rejected}
    assert "used only when no active model fits" in reasons["mistral-medium-3.5"]
    assert "used only when no active model fits" in reasons["claude-sonnet-5"]  # legacy


def test_a_legacy_model_is_picked_when_nothing_else_fits_and_says_so() -> None:
    d = route(REG, "review", 5_000, allowed={"claude-sonnet-5", "gpt-5.4-nano"}, today=TODAY)
    assert d.choice.model.id == "claude-sonnet-5" and d.fallback_to_old
    text = "\n".join(d.explanation())
    assert "no active model fits, so a legacy one was picked" in text and "claude-sonnet-5-5" in text
    assert d.as_json()["picked_non_active"] is True


def test_a_retired_model_is_never_picked_even_when_it_is_the_only_one() -> None:
    with pytest.raises(NoRoute) as ei:
        route(REG, "summarise", 1_000, allowed={"gemini-2.5-flash"}, today=TODAY)
    assert any(r["rejected"].startswith("retired") for r in ei.value.extra["rejected"])


def test_code_completion_models_get_no_prose_task() -> None:
    # Reproduction: codestral (a code-completion model) was chosen for 'requirements'.
    d = route(REG, "requirements", 20_000, today=TODAY)
    assert d.choice.model.id != "codestral-latest"
    assert "codestral-latest" not in {f.model.id for f in d.fallbacks}
    why = next(r for r in d.rejected if r.model.id == "codestral-latest").reason
    assert "code-completion model" in why
    # ... while code work it may do.
    t = route(REG, "test", 20_000, allowed={"codestral-latest"}, today=TODAY)
    assert t.choice.model.id == "codestral-latest"


def test_task_needs_come_from_the_rules_and_config_can_change_them() -> None:
    d = route(REG, "design", 10_000, today=TODAY)
    assert (
        d.needs == ("chat", "reasoning")
        and "needs tier 'advanced' or higher and chat, reasoning" in d.explanation()[0]
    )
    reg = load_registry({"routing": {"needs": {"design": ["chat"]}}})
    assert route(reg, "design", 10_000, today=TODAY).needs == ("chat",)
    with pytest.raises(ConfigError):
        load_registry({"routing": {"needs": {"design": ["telepathy"]}}})


def test_long_inputs_need_a_long_context_model() -> None:
    d = route(REG, "requirements", 250_000, today=TODAY)
    assert "long_context" in d.needs
    for c in [d.choice, *d.fallbacks]:
        assert "long_context" in c.model.capabilities


@pytest.mark.parametrize(("task", "tokens"), [("classify", 500), ("implementation", 20_000), ("review", 40_000),
                                               ("implementation", 300_000), ("summarise", 5_000)])
def test_fallbacks_never_repeat_the_same_underlying_model(task: str, tokens: int) -> None:
    # Reproduction: chains listed gpt-5.4 and azure/gpt-5.4 back to back.
    reg = load_registry({"routing": {"fallbacks": 10}})
    d = route(reg, task, tokens, today=TODAY)
    underlying = [c.model.underlying for c in [d.choice, *d.fallbacks]]
    assert len(underlying) == len(set(underlying)), underlying
    assert REG.get("azure/gpt-5.4").underlying == REG.get("gpt-5.4").underlying == "gpt-5.4"


def test_ties_prefer_the_vendors_own_api() -> None:
    d = route(REG, "classify", 500, today=TODAY)
    assert d.choice.model.id == "gpt-6-luna"  # same price as azure/gpt-6-luna


def test_every_shipped_model_has_a_lifecycle_and_no_alias_points_at_an_old_model() -> None:
    for m in REG.all():
        assert m.status_on(TODAY) in ("preview", "active", "legacy", "deprecated", "retired")
        if m.status_on(TODAY) in ("retired", "deprecated", "legacy"):
            assert m.replacement and REG.get(m.replacement).status_on(TODAY) in ("active", "preview"), m.id
            assert m.lifecycle_source, m.id
    for alias in ("sonnet", "opus", "haiku", "gemini-flash", "gemini-pro"):
        assert REG.get(alias).status_on(TODAY) in ("active", "preview"), alias
    # The list: retired and deprecated entries are marked so.
    assert {m: REG.get(m).status_on(TODAY) for m in ("azure/gpt-4.1", "azure/gpt-4.1-mini", "gemini-2.5-pro",
                                                      "gemini-2.5-flash", "mistral-medium-3.5", "claude-opus-5",
                                                      "claude-sonnet-5")} == {
        "azure/gpt-4.1": "retired", "azure/gpt-4.1-mini": "retired", "gemini-2.5-pro": "retired",
        "gemini-2.5-flash": "retired", "mistral-medium-3.5": "deprecated", "claude-opus-5": "legacy",
        "claude-sonnet-5": "legacy"}


def test_lifecycle_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="deprecated_on"):
        load_registry({"models": [_dated(deprecated_on="2027-01-02", retires_on="2027-01-01")]})
    with pytest.raises(ConfigError, match="replacement"):
        load_registry({"models": [_dated(replacement="gpt-99")]})
    with pytest.raises(ConfigError, match="status"):
        load_registry({"models": [_dated(status="sunset")]})
    with pytest.raises(ConfigError, match="capabilities"):
        load_registry({"models": [_dated(capabilities=[])]})
