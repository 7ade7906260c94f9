"""Requests and answers of the provider routes (issue 12; docs/api.md "Providers").

``GET /v1/providers``, ``POST /v1/providers/test``, ``POST /v1/engine/reload``.  No answer
carries a key: ``key_set`` says only whether one is configured.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

from core.api.models import MAX_NAME, Request, text
from core.errors import BadRequest

# The variables a reload may carry (core.orchestration.provider_settings.PROVIDER_VARIABLES).
RELOAD_VARIABLES: tuple[str, ...] = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION", "OLLAMA_HOST",
)
MAX_VALUE = 4096


def _reload_env(v: object, field: str) -> dict[str, str] | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise BadRequest(f"{field} must be an object of provider variables.", field=field)
    unknown = sorted(set(v) - set(RELOAD_VARIABLES))
    if unknown:
        raise BadRequest(f"{field}: {', '.join(unknown)} is not a provider variable; send only "
                         f"{', '.join(RELOAD_VARIABLES)}.", field=field)
    for value in v.values():
        if not isinstance(value, str) or len(value) > MAX_VALUE:
            raise BadRequest(f"{field}: each value must be text of at most {MAX_VALUE} characters.", field=field)
    return {k: val for k, val in v.items() if val}


class ProviderTest(Request):
    """``POST /v1/providers/test``: ``name`` checks one provider; none checks all."""

    name: Any = None
    CHECKS = {"name": text(MAX_NAME)}


class EngineReload(Request):
    """``POST /v1/engine/reload``: ``env`` replaces the provider variables the engine uses (the
    client sends those of its own shell); left out, the engine keeps the ones it has."""

    env: Any = None
    CHECKS = {"env": _reload_env}


class ProviderInfo(TypedDict):
    name: str
    kind: str
    label: str  # the replay provider: "replay (recorded responses, not a model)"
    is_replay: bool
    source: str  # "config:PATH", "env:OPENAI_API_KEY", or both joined by " + "
    base_url: str | None
    key_set: bool
    serves: list[str]
    models: list[str]
    check_model: str | None
    status: Literal["ready", "unavailable"]
    problem: str | None


class SetupHint(TypedDict):
    provider: str  # a registry provider (core/models/registry.toml) no configured provider serves
    hint: str


class ProviderList(TypedDict):
    providers: list[ProviderInfo]
    hints: list[SetupHint]
    config: str
    config_error: str | None
    generation: int
    in_flight: int


class ProviderCheckRow(TypedDict):
    name: str
    kind: str
    label: str
    ok: bool
    detail: str  # the vendor's own text on failure, redacted
    latency_ms: float | None


class ProviderTested(TypedDict):
    results: list[ProviderCheckRow]
    ok: bool


class Reloaded(TypedDict):
    generation: int
    providers: list[str]
    previous_in_flight: int  # calls still running on the previous set; it closes after them
