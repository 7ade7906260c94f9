"""The model registry: shipped data (``registry.toml``) plus the user's config overrides.

A model is found by id or alias, case-insensitively.  An unknown name is an
error that lists the closest known names; nothing ever falls back silently to a
default model (the prototype priced unknown models as gpt-4o).

Users add models or override fields of shipped ones in ``config.toml``
(read by :func:`core.config.load_config`, the one loader the TUI uses too)::

    [[models]]
    id = "azure/gpt-5.4"          # an existing id: only the given fields change
    deployment = "prod-gpt54"

    [[models]]
    id = "ollama/qwen3-coder"      # a new id: every required field must be given
    provider = "ollama"
    context_window = 65536
    max_output = 8192
    input_per_mtok = 0
    output_per_mtok = 0
    cached_input_per_mtok = 0
    tokenizer = "local"
    tier = "standard"
    prices_checked = 2026-11-01
    source = "local model"

Every entry is validated with pydantic; a bad config is a :class:`ConfigError`
naming the file, the entry (and its line) and the field.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.config import ConfigError, load_config
from core.errors import BadRequest, NotFound
from core.models.kinds import TASK_KINDS, TIERS

STATUSES: tuple[str, ...] = ("preview", "active", "legacy", "deprecated", "retired")
CAPABILITIES: tuple[str, ...] = ("chat", "reasoning", "code", "fast", "long_context")
PROVIDERS: tuple[str, ...] = ("openai", "azure", "anthropic", "google", "mistral", "ollama", "openai-compatible")
TOKENIZERS: tuple[str, ...] = ("o200k_base", "cl100k_base", "anthropic", "anthropic-2026", "gemini", "mistral", "local")

Tier = Literal["basic", "standard", "advanced", "frontier"]
Provider = Literal["openai", "azure", "anthropic", "google", "mistral", "ollama", "openai-compatible"]
TokenizerName = Literal["o200k_base", "cl100k_base", "anthropic", "anthropic-2026", "gemini", "mistral", "local"]
Status = Literal["preview", "active", "legacy", "deprecated", "retired"]
Capability = Literal["chat", "reasoning", "code", "fast", "long_context"]
__all__ = ["CAPABILITIES", "STATUSES", "TASK_KINDS", "TIERS", "ConfigError", "ModelRetired", "ModelSpec", "Registry",
           "check_task", "load_registry", "read_config"]
LOCAL_PROVIDERS = frozenset({"ollama", "openai-compatible"})


class ModelRetired(BadRequest):
    """A request named a model that the provider has shut down (400, CLI exit 2: pick its replacement)."""

    code = "model_retired"


def _price(v: Any) -> Decimal:
    # TOML floats are binary; going through str() keeps "0.075" exactly 0.075.
    if isinstance(v, bool):
        raise ValueError("a price must be a number, not true/false")
    d = Decimal(str(v))
    if not d.is_finite() or d < 0:
        raise ValueError("a price must be a finite number >= 0")
    return d


class LongContext(BaseModel):
    """Prices that apply to the whole request once its prompt exceeds ``threshold`` tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: int = Field(gt=0)
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal

    @field_validator("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", mode="before")
    @classmethod
    def _prices(cls, v: Any) -> Decimal:
        return _price(v)


class ModelSpec(BaseModel):
    """One model: limits, prices per million tokens (= micro-dollars per token), tokenizer, tier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    provider: Provider
    aliases: tuple[str, ...] = ()
    context_window: int = Field(gt=0, description="max prompt + output tokens of one request")
    max_output: int = Field(gt=0, description="max output tokens of one request")
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal
    tokenizer: TokenizerName
    tier: Tier
    prices_checked: date
    source: str = Field(min_length=1)
    long_context: LongContext | None = None
    deployment: str | None = None
    base_url: str | None = None
    # Lifecycle (provider terms: OpenAI, Anthropic, Google and Azure all use these words).  The
    # stored status is what the source said; deprecated_on/retires_on move it forward by date,
    # so an entry retires on its day without a code change (see :meth:`status_on`).
    status: Status = "active"
    deprecated_on: date | None = None
    retires_on: date | None = None
    replacement: str | None = None
    lifecycle_source: str | None = None
    # What the model is for; task kinds list what they need (``[routing] needs``).  A model
    # without "chat" (a code-completion model such as Codestral) never gets a prose task.
    capabilities: tuple[Capability, ...] = ("chat", "code")
    # The model this entry serves under another provider (azure/gpt-5.4 -> gpt-5.4): a fallback
    # chain never lists the same underlying model twice.  Default: the id after the last "/".
    same_as: str | None = None
    origin: Literal["builtin", "config", "import"] = "builtin"

    @field_validator("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", mode="before")
    @classmethod
    def _prices(cls, v: Any) -> Decimal:
        return _price(v)

    @model_validator(mode="after")
    def _limits(self) -> ModelSpec:
        if self.max_output > self.context_window:
            raise ValueError(f"max_output ({self.max_output}) exceeds context_window ({self.context_window})")
        if self.deprecated_on and self.retires_on and self.deprecated_on > self.retires_on:
            raise ValueError(f"deprecated_on ({self.deprecated_on}) is after retires_on ({self.retires_on})")
        if not self.capabilities:
            raise ValueError("capabilities must name at least one of " + ", ".join(CAPABILITIES))
        return self

    def status_on(self, today: date) -> str:
        """The lifecycle status on ``today``: the stored one, moved forward by the dates."""
        if self.status == "retired" or (self.retires_on is not None and today >= self.retires_on):
            return "retired"
        if self.status == "deprecated" or (self.deprecated_on is not None and today >= self.deprecated_on):
            return "deprecated"
        return self.status

    def lifecycle_note(self, today: date) -> str | None:
        """One sentence about the model's lifecycle, or None for an active model with no end date."""
        st = self.status_on(today)
        if st == "active" and self.retires_on is None:
            return None
        if st == "retired":
            text = f"{self.id} was retired" + (f" on {self.retires_on}" if self.retires_on else "")
        elif st == "preview" and self.retires_on is None:
            text = f"{self.id} is a preview and may be retired at short notice"
        else:
            text = f"{self.id} is {st}" + (f" and retires on {self.retires_on}" if self.retires_on else "")
        if self.replacement and st != "active":
            text += f"; use {self.replacement} instead"
        return text + "."

    def check_usable(self, today: date) -> None:
        """Raise :class:`ModelRetired` (naming the replacement) when the model is retired on ``today``."""
        if self.status_on(today) == "retired":
            when = f" on {self.retires_on}" if self.retires_on else ""
            hint = (f"Use {self.replacement} instead." if self.replacement
                    else "Pick another model (see: musubi models list).")
            raise ModelRetired(f"model {self.id} was retired{when}: the provider no longer serves it. {hint}",
                               model=self.id, replacement=self.replacement)

    @property
    def underlying(self) -> str:
        """The model behind this entry, whichever provider serves it."""
        return (self.same_as or self.id.rsplit("/", 1)[-1]).lower()

    @property
    def tier_rank(self) -> int:
        return TIERS.index(self.tier)

    @property
    def is_local(self) -> bool:
        return self.provider in LOCAL_PROVIDERS

    @property
    def exact_tokens(self) -> bool:
        return self.tokenizer in ("o200k_base", "cl100k_base")

    def as_json(self, today: date | None = None) -> dict[str, Any]:
        d = self.model_dump(mode="json", exclude_none=True)
        if today is not None:
            d["status"] = self.status_on(today)
            note = self.lifecycle_note(today)
            if note:
                d["lifecycle_note"] = note
        for k in ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok"):
            d[k] = str(getattr(self, k))
        if self.long_context:
            d["long_context"] = {
                "threshold": self.long_context.threshold,
                **{k: str(getattr(self.long_context, k)) for k in ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok")},
            }
        d["exact_tokens"] = self.exact_tokens
        return d


class OutputDefault(BaseModel):
    """Expected output of a task kind before the ledger has history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ratio: float = Field(ge=0)
    p90_ratio: float = Field(ge=0)
    floor: int = Field(ge=0)
    cap: int = Field(gt=0)


class RoutingRules(BaseModel):
    """Router rules: task kind -> minimum tier, excluded providers/models, fallback count."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: dict[str, Tier]
    needs: dict[str, tuple[Capability, ...]] = Field(default_factory=dict)
    exclude_providers: tuple[str, ...] = ()
    exclude_models: tuple[str, ...] = ()
    fallbacks: int = Field(default=3, ge=0, le=10)
    long_context_above: int = Field(default=200_000, gt=0)

    @field_validator("tasks", "needs")
    @classmethod
    def _known_tasks(cls, v: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(v) - set(TASK_KINDS))
        if unknown:
            raise ValueError(f"unknown task kind(s) {', '.join(unknown)}; known: {', '.join(TASK_KINDS)}")
        return v


def _fmt_validation(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(entry)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def _norm(name: str) -> str:
    return name.strip().lower()


class Registry:
    """All known models, their aliases, routing rules and output defaults."""

    def __init__(
        self,
        models: Iterable[ModelSpec],
        routing: RoutingRules,
        output_defaults: Mapping[str, OutputDefault],
        min_samples: int = 5,
    ) -> None:
        self.models: dict[str, ModelSpec] = {}
        self._names: dict[str, str] = {}
        for m in models:
            self._add(m)
        self.routing = routing
        self.output_defaults = dict(output_defaults)
        self.min_samples = min_samples

    def _add(self, m: ModelSpec) -> None:
        old = self.models.get(m.id)
        if old is not None:
            for a in (old.id, *old.aliases):
                self._names.pop(_norm(a), None)
        for name in (m.id, *m.aliases):
            owner = self._names.get(_norm(name))
            if owner is not None and owner != m.id:
                raise ConfigError(f"model name {name!r} of {m.id!r} is already used by {owner!r}; pick another alias.")
        self.models[m.id] = m
        for name in (m.id, *m.aliases):
            self._names[_norm(name)] = m.id

    # -- lookup ---------------------------------------------------------------------------

    def get(self, name: str) -> ModelSpec:
        """The model called ``name`` (id or alias); unknown names raise with close matches."""
        if not isinstance(name, str) or not name.strip():
            raise BadRequest("a model name is required, e.g. --model gpt-5.4 (see: musubi models list).", field="model")
        mid = self._names.get(_norm(name))
        if mid is None:
            raise NotFound(self.unknown_message(name), code="unknown_model", model=name, suggestions=self.close_matches(name))
        return self.models[mid]

    def close_matches(self, name: str, n: int = 5) -> list[str]:
        """Known ids and aliases that look like ``name``, best first (ids, never raw aliases twice)."""
        key = _norm(name)
        names = list(self._names)
        hits = difflib.get_close_matches(key, names, n=n * 2, cutoff=0.5)
        # Substring hits catch "sonnet" -> "claude-sonnet-5" that ratio scoring may rank low.
        hits += [k for k in names if key and (key in k or k in key) and k not in hits]
        out: list[str] = []
        for h in hits:
            mid = self._names[h]
            if mid not in out:
                out.append(mid)
        return out[:n]

    def unknown_message(self, name: str) -> str:
        close = self.close_matches(name)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return (
            f"unknown model {name!r}.{hint} See every model with: musubi models list "
            "(add your own in config.toml [[models]], see docs/models.md)."
        )

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _norm(name) in self._names

    def all(self) -> list[ModelSpec]:
        """Models in a stable order: provider, tier (lowest first), id."""
        return sorted(self.models.values(), key=lambda m: (PROVIDERS.index(m.provider), m.tier_rank, m.id))

    def output_default(self, task: str) -> OutputDefault:
        check_task(task)
        return self.output_defaults[task]


def check_task(task: object) -> str:
    if task not in TASK_KINDS:
        raise BadRequest(f"unknown task kind {task!r}: use one of {', '.join(TASK_KINDS)}.", field="task")
    return str(task)


# -- loading --------------------------------------------------------------------------------


def builtin_data() -> dict[str, Any]:
    """The parsed ``registry.toml`` shipped with the package."""
    text = (resources.files("core.models") / "registry.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _parse_model(raw: Any, where: str, origin: str) -> ModelSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each model must be a table with id, provider, prices, ...")
    try:
        return ModelSpec.model_validate({**raw, "origin": origin})
    except ValidationError as exc:
        raise ConfigError(f"{where} (id {raw.get('id')!r}): {_fmt_validation(exc)}. See docs/models.md for the fields.") from None


def _merge_models(models: dict[str, ModelSpec], entries: Iterable[Any], where: str, origin: str,
                  lines: Sequence[int] = ()) -> None:
    """Apply ``entries`` over ``models``: an existing id changes only the given fields, a new id gives all.

    ``lines`` are the entries' line numbers in the file, when known, for the error message.
    """
    for i, raw in enumerate(entries):
        at = f"{where} #{i + 1}" + (f" (line {lines[i]})" if i < len(lines) else "")
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise ConfigError(f"{at}: every entry needs an id = \"...\".")
        base = models.get(raw["id"])
        merged = {**base.model_dump(exclude={"origin"}), **raw} if base else raw
        models[raw["id"]] = _parse_model(merged, at, origin)


def load_registry(
    config: Mapping[str, Any] | None = None,
    config_path: str | Path | None = None,
    overlays: Sequence[tuple[str, Sequence[Mapping[str, Any]]]] = (),
    model_lines: Sequence[int] = (),
) -> Registry:
    """Shipped models merged with ``config`` (the parsed user config.toml, if any), then ``overlays``.

    ``overlays`` are imported price tables (``musubi models import``) as ``(where, entries)``,
    applied in order after config.toml: the engine owner's, then the tenant's.
    ``model_lines`` are the line numbers of config's ``[[models]]`` entries (error messages).
    """
    data = builtin_data()
    models = {}
    for i, raw in enumerate(data.get("model", [])):
        m = _parse_model(raw, f"registry.toml model #{i + 1}", "builtin")
        models[m.id] = m
    routing_raw: dict[str, Any] = dict(data.get("routing", {}))
    od_raw: dict[str, Any] = dict(data.get("output_defaults", {}))
    where = str(config_path or "config.toml")
    if config:
        user_models = config.get("models", [])
        if not isinstance(user_models, list):
            raise ConfigError(f"{where}: 'models' must be an array of tables: write [[models]] entries.")
        _merge_models(models, user_models, f"{where} [[models]]", "config", model_lines)
        user_routing = config.get("routing")
        if user_routing is not None:
            if not isinstance(user_routing, dict):
                raise ConfigError(f"{where}: [routing] must be a table.")
            tasks = {**routing_raw.get("tasks", {}), **user_routing.get("tasks", {})}
            needs = {**routing_raw.get("needs", {}), **user_routing.get("needs", {})}
            routing_raw = {**routing_raw, **user_routing, "tasks": tasks, "needs": needs}
    for ov_where, entries in overlays:
        _merge_models(models, entries, ov_where, "import")
    try:
        routing = RoutingRules.model_validate(routing_raw)
    except ValidationError as exc:
        raise ConfigError(f"{where} [routing]: {_fmt_validation(exc)}.") from None
    min_samples = int(od_raw.pop("min_samples", 5))
    try:
        defaults = {k: OutputDefault.model_validate(v) for k, v in od_raw.items()}
    except ValidationError as exc:
        raise ConfigError(f"registry.toml [output_defaults]: {_fmt_validation(exc)}.") from None
    missing = sorted(set(TASK_KINDS) - set(defaults))
    if missing:
        raise ConfigError(f"registry.toml [output_defaults] lacks task kind(s): {', '.join(missing)}.")
    reg = Registry(models.values(), routing, defaults, min_samples)
    for name in routing.exclude_models:
        reg.get(name)  # an excluded model must exist: a typo would exclude nothing
    for m in reg.models.values():
        if m.replacement is not None and m.replacement not in reg:
            raise ConfigError(f"model {m.id!r} names replacement {m.replacement!r}, which is not a known model; "
                              "add it or fix the name.")
    return reg


def read_config(path: Path) -> dict[str, Any]:
    """The ``[[models]]`` and ``[routing]`` sections of config.toml, for :func:`load_registry`.

    The whole file is read and validated by :func:`core.config.load_config`, the loader the
    TUI uses too, so a file one of them accepts the other accepts (its errors name the line
    of a bad ``[[models]]`` entry).  A missing file is an empty config; a broken one a
    :class:`ConfigError`.
    """
    return load_config(path).registry_input()
