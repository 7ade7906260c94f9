"""Which LLM providers are configured: the conventional variables and ``[providers.NAME]`` tables.

Two sources, merged per provider name (docs/providers.md, "Settings and precedence"):

* **variables** (read through :func:`core.config.env`): ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``
  make provider ``openai``; ``ANTHROPIC_API_KEY`` / ``ANTHROPIC_BASE_URL`` make ``anthropic``;
  ``AZURE_OPENAI_ENDPOINT`` / ``AZURE_OPENAI_API_KEY`` / ``OPENAI_API_VERSION`` make ``azure``;
  ``OLLAMA_HOST`` makes ``ollama`` (an OpenAI-compatible server at ``http://HOST:11434/v1``).
* **config.toml**: ``[providers.NAME]`` tables, validated here; a bad value is a
  :class:`~core.config.ConfigError` naming the file, the key, its line and the fix.

**The config file wins, key by key**: a table named like a variable-made provider
(``[providers.openai]``) overrides the keys it sets and takes the rest (typically the key)
from the variables; ``enabled = false`` turns a variable-made provider off.  Why this way
round: the variables are shared with every other tool of the shell, the file is
Musubi's own and explicit.  Order: the file's tables in file order, then variable-made
providers — the first provider that serves a model is the one used.

Nothing here does I/O except reading the variables it is given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from core.config import ConfigError, env
from core.orchestration.contracts import ProviderSettings

KINDS: tuple[str, ...] = ("openai", "azure-openai", "anthropic", "openai-compatible", "replay")
KIND_LABELS: dict[str, str] = {
    "openai": "OpenAI", "azure-openai": "Azure OpenAI", "anthropic": "Anthropic",
    "openai-compatible": "OpenAI-compatible", "replay": "replay (recorded responses, not a model)",
}
# Which registry providers (core/models/registry.toml ``provider``) a kind serves by default.
SERVES: dict[str, tuple[str, ...]] = {
    "openai": ("openai",), "azure-openai": ("azure",), "anthropic": ("anthropic",),
    "openai-compatible": ("openai-compatible",), "replay": (),
}
# A table named like this without a ``kind`` gets that kind.
NAME_KINDS: dict[str, str] = {**{k: k for k in KINDS}, "azure": "azure-openai", "ollama": "openai-compatible"}
PROVIDER_VARIABLES: tuple[str, ...] = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY", "OPENAI_API_VERSION", "OLLAMA_HOST",
)
_TEXT = ("base_url", "api_key", "api_version", "check_model", "organization", "project", "tenant_id", "client_id",
         "authority_host", "file")
_NUMBERS: dict[str, tuple[float, float]] = {
    "timeout_s": (1, 3600), "max_retry_wait_s": (0, 3600), "max_retry_delay_s": (0, 600), "retry_base_s": (0, 60),
    "chunk_delay_s": (0, 10),
}
# Whole numbers: (lowest, highest, the hint of the error).
_WHOLE: dict[str, tuple[int, int, str]] = {
    "max_attempts": (1, 10, "1 means no retries"),
    "pool_size": (1, 1000, "connections to the provider open at once (default 100)"),
}
_KNOWN = frozenset({"kind", "models", "serves", "enabled", "auth", *_WHOLE, *_TEXT, *_NUMBERS})
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_FIX = "see docs/providers.md"


def known_kinds() -> tuple[str, ...]:
    """The built-in kinds, then every kind an installed plug-in registers (``musubi.providers`` entry points).

    Read at each parse (engine start, reload), so a plug-in installed since is accepted without a restart
    of anything but the engine's settings.
    """
    import importlib.metadata

    from core.orchestration.contracts import PROVIDER_ENTRY_POINTS

    plugged = {ep.name for ep in importlib.metadata.entry_points(group=PROVIDER_ENTRY_POINTS)}
    return (*KINDS, *sorted(plugged - set(KINDS)))


def ollama_base(host: str) -> str:
    """``OLLAMA_HOST`` as an OpenAI-compatible base URL, by Ollama's own rules (scheme optional,
    default port 11434; an explicit http:// or https:// without a port means 80/443)."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        parts = urlsplit(f"http://{host}")
        port = parts.port or 11434
        name = parts.hostname or "127.0.0.1"
        if name in ("0.0.0.0", "::"):  # a bind-all address is not one to call
            name = "127.0.0.1"
        return f"http://{name if ':' not in name else f'[{name}]'}:{port}/v1"
    return f"{host}/v1"


def settings_from_env(environ: Mapping[str, str] | None = None) -> list[ProviderSettings]:
    """The providers the conventional variables describe (``environ`` None: the process's own)."""

    def get(name: str) -> str | None:
        return env(name, environ)

    out: list[ProviderSettings] = []
    if get("OPENAI_API_KEY") or get("OPENAI_BASE_URL"):
        out.append(ProviderSettings("openai", "openai", base_url=get("OPENAI_BASE_URL"), api_key=get("OPENAI_API_KEY"),
                                    source="env:OPENAI_API_KEY" if get("OPENAI_API_KEY") else "env:OPENAI_BASE_URL"))
    if get("ANTHROPIC_API_KEY") or get("ANTHROPIC_BASE_URL"):
        out.append(ProviderSettings("anthropic", "anthropic", base_url=get("ANTHROPIC_BASE_URL"),
                                    api_key=get("ANTHROPIC_API_KEY"), source="env:ANTHROPIC_API_KEY"))
    if get("AZURE_OPENAI_ENDPOINT"):
        out.append(ProviderSettings("azure", "azure-openai", base_url=get("AZURE_OPENAI_ENDPOINT"),
                                    api_key=get("AZURE_OPENAI_API_KEY"), api_version=get("OPENAI_API_VERSION"),
                                    source="env:AZURE_OPENAI_ENDPOINT"))
    host = get("OLLAMA_HOST")
    if host:
        out.append(ProviderSettings("ollama", "openai-compatible", base_url=ollama_base(host), source="env:OLLAMA_HOST",
                                    extra={"serves": ("ollama",)}))
    return out


def _line(text: str | None, name: str, key: str | None) -> str:
    """``, line N`` of ``[providers.NAME]`` (and of ``key`` under it), best effort."""
    if not text:
        return ""
    lines = text.splitlines()
    head = re.compile(rf"^\s*\[\s*providers\s*\.\s*[\"']?{re.escape(name)}[\"']?\s*\]")
    start = next((i for i, ln in enumerate(lines) if head.match(ln)), None)
    if start is None:
        return ""
    if key:
        for i in range(start + 1, len(lines)):
            stripped = lines[i].strip()
            if stripped.startswith("["):
                break
            if "=" in stripped and stripped.split("=", 1)[0].strip().strip("\"'") == key:
                return f", line {i + 1}"
    return f", line {start + 1}"


class _Table:
    """One ``[providers.NAME]`` table being checked; :meth:`bad` raises the ConfigError."""

    def __init__(self, name: str, raw: Mapping[str, Any], source: str, text: str | None) -> None:
        self.name, self.raw, self.source, self.text = name, raw, source, text

    def bad(self, key: str | None, problem: str, fix: str) -> ConfigError:
        where = f"[providers.{self.name}]" + (f" {key}" if key else "")
        return ConfigError(f"config file {self.source}: {where}{_line(self.text, self.name, key)}: {problem}. "
                           f"{fix} ({_FIX}).", key=f"providers.{self.name}" + (f".{key}" if key else ""))

    def strings(self, key: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...] | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.bad(key, f"must be a list of names (got {value!r})", f'Write {key} = ["name", ...]')
        if allowed is not None:
            unknown = [v for v in value if v not in allowed]
            if unknown:
                raise self.bad(key, f"unknown {', '.join(unknown)}", f"Use some of {', '.join(allowed)}")
        return tuple(value)

    def parse(self) -> tuple[dict[str, Any], set[str]]:
        """The checked values (ProviderSettings field or ``extra`` key -> value) and the keys set."""
        from core.models.registry import PROVIDERS

        raw, out = self.raw, {}
        unknown = sorted(set(raw) - _KNOWN)
        if unknown:
            raise self.bad(unknown[0], "unknown setting (check the spelling)", f"Known: {', '.join(sorted(_KNOWN))}")
        kind = raw.get("kind", NAME_KINDS.get(self.name))
        kinds = known_kinds()
        if kind not in kinds:
            got = "missing" if kind is None else f"got {kind!r}"
            raise self.bad("kind", f"must name the provider kind ({got})",
                           f"Set kind to one of {', '.join(kinds)} (a plug-in's kind once it is installed)")
        out["kind"] = kind
        for key in _TEXT:
            if key in raw:
                if not isinstance(raw[key], str) or not raw[key].strip():
                    raise self.bad(key, "must be non-empty text", f'Write {key} = "..."')
                out[key] = raw[key].strip()
        for key in ("base_url", "authority_host"):
            if key in out:
                parts = urlsplit(out[key])
                if parts.scheme not in ("http", "https") or not parts.netloc:
                    raise self.bad(key, f"must be an http:// or https:// URL (got {out[key]!r})",
                                   f'Write {key} = "https://host/..."')
        for key, (lo, hi) in _NUMBERS.items():
            if key in raw:
                v = raw[key]
                if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
                    raise self.bad(key, f"must be a number from {lo:g} to {hi:g} (got {v!r})", f"Set {key} in range")
                out[key] = float(v)
        for key, (lo_i, hi_i, hint) in _WHOLE.items():
            if key in raw:
                v = raw[key]
                if isinstance(v, bool) or not isinstance(v, int) or not lo_i <= v <= hi_i:
                    raise self.bad(key, f"must be a whole number from {lo_i} to {hi_i} (got {v!r})", hint)
                out[key] = v
        for key in ("enabled",):
            if key in raw and not isinstance(raw[key], bool):
                raise self.bad(key, f"must be true or false (got {raw[key]!r})", f"Write {key} = false")
        if "enabled" in raw:
            out["enabled"] = raw["enabled"]
        if "auth" in raw:
            if raw["auth"] not in ("key", "entra") or kind != "azure-openai" and raw["auth"] == "entra":
                raise self.bad("auth", f"must be \"key\" or, for kind azure-openai, \"entra\" (got {raw['auth']!r})",
                               'Write auth = "key"')
            out["auth"] = raw["auth"]
        models = self.strings("models")
        if models is not None:
            out["models"] = models
        serves = self.strings("serves", PROVIDERS)
        if serves is not None:
            out["serves"] = serves
        if kind == "replay" and "file" not in out:
            raise self.bad("file", "a replay provider needs its file of recorded replies",
                           'Add file = "path/to/replies.toml"')
        return out, set(raw)


_FIELDS = ("kind", "base_url", "api_key", "api_version", "models")


def _merge(base: ProviderSettings | None, name: str, values: dict[str, Any], source: str) -> ProviderSettings:
    fields = {k: values[k] for k in _FIELDS if k in values}
    extra = {k: v for k, v in values.items() if k not in _FIELDS}
    if base is None:
        return ProviderSettings(name, source=source, extra=extra, **fields)
    if "kind" in values and values["kind"] != base.kind:  # a different kind: nothing of the variables applies
        return ProviderSettings(name, source=source, extra=extra, **fields)
    merged_extra = {**base.extra, **extra}
    return replace(base, **fields, extra=merged_extra, source=f"{source} + {base.source}")


def resolve_settings(
    tables: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None, *, source: str = "config.toml",
    text: str | None = None,
) -> list[ProviderSettings]:
    """Every configured provider: the file's tables merged over the variables (the file wins, key by key)."""
    from_env = {s.name: s for s in settings_from_env(environ)}
    out: list[ProviderSettings] = []
    for name, raw in (tables or {}).items():
        table = _Table(str(name), raw if isinstance(raw, Mapping) else {}, source, text)
        if not _NAME.match(str(name)):
            raise table.bad(None, "a provider name is lower-case letters, digits, '.', '_' or '-'", "Rename the table")
        if not isinstance(raw, Mapping):
            raise table.bad(None, "must be a table", f"Write [providers.{name}] and its keys under it")
        values, _keys = table.parse()
        base = from_env.pop(str(name), None)
        settings = _merge(base, str(name), values, f"config:{source}")
        if settings.extra.get("enabled", True) is False:
            continue
        out.append(settings)
    out.extend(from_env.values())
    return out


def serves(settings: ProviderSettings) -> tuple[str, ...]:
    """The registry providers whose models ``settings`` serves (besides its explicit ``models``)."""
    explicit = settings.extra.get("serves")
    if explicit is not None:
        return tuple(explicit)
    if settings.name == "ollama" and settings.kind == "openai-compatible":
        return ("ollama",)
    return SERVES.get(settings.kind, ())


# What to set, per registry provider, when none is configured for a model.
NO_PROVIDER_HINTS: dict[str, str] = {
    "openai": "set OPENAI_API_KEY (and OPENAI_BASE_URL for a proxy), or add [providers.openai] with api_key",
    "azure": "set AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY and OPENAI_API_VERSION, or add [providers.azure] "
             "with base_url and api_key (or auth = \"entra\")",
    "anthropic": "set ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL for a proxy), or add [providers.anthropic] "
                 "with api_key",
    "ollama": "set OLLAMA_HOST (e.g. 127.0.0.1:11434), or add [providers.ollama] with "
              "base_url = \"http://127.0.0.1:11434/v1\"",
    "openai-compatible": "add [providers.NAME] with kind = \"openai-compatible\" and base_url = "
                         "\"http://HOST:PORT/v1\" (vLLM, LM Studio)",
    "google": "add [providers.google] with kind = \"openai-compatible\", base_url = "
              "\"https://generativelanguage.googleapis.com/v1beta/openai\", api_key and serves = [\"google\"]",
    "mistral": "add [providers.mistral] with kind = \"openai-compatible\", base_url = \"https://api.mistral.ai/v1\", "
               "api_key and serves = [\"mistral\"]",
}


def hint_for(provider: str) -> str:
    """The sentence that says what to set so that models of registry ``provider`` can run."""
    what = NO_PROVIDER_HINTS.get(provider, f"add [providers.NAME] with serves = [\"{provider}\"]")
    return f"{what} in config.toml; then run `musubi engine reload`"
