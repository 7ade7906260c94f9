"""The engine's LLM providers: loaded by entry point, chosen per model, swapped on reload.

* :func:`load_factories` finds the ``musubi.providers`` entry points through
  ``importlib.metadata`` (core never imports ``connectors``);
* :class:`ProviderSet` is one generation of configured providers: ``for_model`` picks the
  provider for a registry model and gives the provider's own model id, ``list`` says what
  is configured (never a key), ``check`` makes one tiny call per provider, ``aclose`` ends
  their sessions;
* :class:`ProviderHub` holds the engine's current set and builds a new one on
  ``musubi engine reload`` / SIGHUP; the old set is closed once its calls in flight end.

Settings and their precedence are in :mod:`core.orchestration.provider_settings`.
"""

from __future__ import annotations

import asyncio
import builtins
import importlib.metadata
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import ConfigError
from core.errors import MusubiError, ProviderNotConfigured
from core.orchestration.contracts import (
    PROVIDER_ENTRY_POINTS,
    ChatProvider,
    ChatRequest,
    ProviderCheck,
    ProviderFactory,
    ProviderSettings,
    StreamEvent,
)
from core.orchestration.provider_settings import KIND_LABELS, hint_for, resolve_settings, serves

if TYPE_CHECKING:
    from core.api.providers import ProviderCheckRow, ProviderInfo, SetupHint
    from core.models.registry import ModelSpec, Registry

log = logging.getLogger("musubi.providers")

REPLAY_LABEL = "replay (recorded responses, not a model)"
"""How the replay provider is shown everywhere it appears."""

EntryPoints = Callable[..., Iterable[Any]]


def load_factories(entry_points: EntryPoints | None = None) -> tuple[dict[str, ProviderFactory], dict[str, str]]:
    """The provider factories by kind, and the entry points that failed to load (kind -> why)."""
    found = (entry_points or importlib.metadata.entry_points)(group=PROVIDER_ENTRY_POINTS)
    factories: dict[str, ProviderFactory] = {}
    problems: dict[str, str] = {}
    for ep in found:
        try:
            factories[ep.name] = ep.load()
        except Exception as exc:  # a broken plug-in must not stop the engine
            problems[ep.name] = f"its entry point {ep.value} failed to load ({type(exc).__name__}: {exc})"
    return factories, problems


def own_model_id(spec: ModelSpec) -> str:
    """The id the provider itself knows a registry model by (Azure: the deployment name)."""
    if spec.deployment:
        return spec.deployment
    prefix = f"{spec.provider}/"
    return spec.id[len(prefix):] if spec.id.startswith(prefix) else spec.id


def shown_url(url: str | None) -> str | None:
    """A base URL fit to show: no user:password, no query (a key may hide in either)."""
    if not url:
        return None
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class _Tracked:
    """A provider as handed out by a set: counts its calls in flight, so a retired set closes
    its providers only when the last call ends (reload never cuts a running call)."""

    def __init__(self, inner: ChatProvider, owner: ProviderSet) -> None:
        self.inner = inner
        self.settings = inner.settings
        self.is_replay = inner.is_replay
        self._owner = owner

    def __repr__(self) -> str:
        return repr(self.inner)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        self._owner.in_flight += 1
        try:
            async for event in self.inner.stream(request):
                yield event
        finally:
            await self._owner.leave()

    async def check(self) -> ProviderCheck:
        self._owner.in_flight += 1
        try:
            return await self.inner.check()
        finally:
            await self._owner.leave()

    async def aclose(self) -> None:
        """Closing is the set's business (when its last call ends)."""


@dataclass
class ProviderSlot:
    """One configured provider: its settings and either the provider or why there is none."""

    settings: ProviderSettings
    provider: _Tracked | None
    problem: str | None = None


class ProviderSet:
    """One generation of configured providers."""

    def __init__(self, slots: Sequence[ProviderSlot] = (), *, registry: Registry | None = None,
                 config_error: str | None = None, generation: int = 0) -> None:
        self.slots = list(slots)
        self.registry = registry
        self.config_error = config_error
        self.generation = generation
        self.loaded_at = time.time()
        self.in_flight = 0
        self.retired = False
        self._closed = False

    @classmethod
    def build(cls, settings: Sequence[ProviderSettings], factories: Mapping[str, ProviderFactory], *,
              load_problems: Mapping[str, str] | None = None, registry: Registry | None = None,
              config_error: str | None = None, generation: int = 0) -> ProviderSet:
        """Make each configured provider (a failure is kept as that provider's problem, not raised)."""
        pset = cls(registry=registry, config_error=config_error, generation=generation)
        for s in settings:
            s = pset._with_check_model(s)
            factory = factories.get(s.kind)
            if factory is None:
                why = (load_problems or {}).get(s.kind) or (
                    f"no provider of kind {s.kind!r} is installed (entry point group {PROVIDER_ENTRY_POINTS}); "
                    "reinstall musubi-workstation")
                pset.slots.append(ProviderSlot(s, None, why))
                continue
            try:
                provider = factory(s)
            except Exception as exc:  # bad settings the factory refused: shown, never raised at the engine
                pset.slots.append(ProviderSlot(s, None, f"{type(exc).__name__}: {_scrub(str(exc), s)}"))
                continue
            pset.slots.append(ProviderSlot(s, _Tracked(provider, pset)))
        return pset

    def _with_check_model(self, s: ProviderSettings) -> ProviderSettings:
        """Give ``providers test`` a model to call: the cheapest chat model the provider serves."""
        if s.extra.get("check_model") or s.kind == "replay" or self.registry is None:
            return s
        from datetime import date

        today = date.today()
        served = [m for m in self.registry.all() if self._serves(s, m) and "chat" in m.capabilities
                  and m.status_on(today) not in ("retired", "deprecated")]
        if not served:
            return s
        cheapest = min(served, key=lambda m: (m.input_per_mtok + m.output_per_mtok, m.id))
        return replace(s, extra={**s.extra, "check_model": own_model_id(cheapest)})

    @staticmethod
    def _serves(s: ProviderSettings, spec: ModelSpec) -> bool:
        return spec.id in s.models or (not s.models and spec.provider in serves(s))

    # -- choosing -------------------------------------------------------------------------------

    def for_model(self, model_id: str, *, replay: bool = False,
                  registry: Registry | None = None) -> tuple[ChatProvider, str]:
        """The provider for registry model ``model_id`` and that provider's own id for it.

        The replay provider is a candidate only when ``replay=True`` (a run that asked for it
        by name), and then the only one.  Raises :class:`ProviderNotConfigured` saying what
        to set when nothing can serve the model.
        """
        reg = registry or self.registry or _builtin_registry()
        spec = reg.get(model_id)
        if replay:
            for slot in self.slots:
                if slot.settings.kind == "replay" and slot.provider is not None:
                    return slot.provider, own_model_id(spec)
            raise ProviderNotConfigured(
                "a replay run needs a replay provider: add [providers.demo] with kind = \"replay\" and "
                "file = \"path/to/replies.toml\" to config.toml, then run `musubi engine reload`.",
                model=spec.id, provider=spec.provider)
        broken: list[str] = []
        for slot in self.slots:
            if slot.settings.kind == "replay" or not self._serves(slot.settings, spec):
                continue
            if slot.provider is not None:
                return slot.provider, own_model_id(spec)
            broken.append(f"{slot.settings.name}: {slot.problem}")
        if broken:
            raise ProviderNotConfigured(
                f"model {spec.id} (provider {spec.provider}) has a configured provider that cannot run: "
                + "; ".join(broken) + ". Fix that, then run `musubi engine reload`.",
                code="provider_unavailable", model=spec.id, provider=spec.provider)
        extra = f" (config.toml has an error: {self.config_error})" if self.config_error else ""
        raise ProviderNotConfigured(
            f"no provider is configured for model {spec.id} (provider {spec.provider}){extra}: "
            f"{hint_for(spec.provider)}.", model=spec.id, provider=spec.provider)

    def get(self, name: str) -> ChatProvider | None:
        """The provider named ``name`` (None when not configured or not loadable)."""
        return next((s.provider for s in self.slots if s.settings.name == name), None)

    # -- showing --------------------------------------------------------------------------------

    def list(self) -> list[ProviderInfo]:
        """What is configured, in the order providers are tried; never a key."""
        out: list[ProviderInfo] = []
        for slot in self.slots:
            s = slot.settings
            info: ProviderInfo = {
                "name": s.name, "kind": s.kind,
                "label": REPLAY_LABEL if s.kind == "replay" else KIND_LABELS.get(s.kind, s.kind),
                "is_replay": s.kind == "replay", "source": s.source, "base_url": shown_url(s.base_url),
                "key_set": bool(s.api_key), "serves": list(serves(s)), "models": list(s.models),
                "check_model": s.extra.get("check_model"),
                "status": "ready" if slot.provider is not None else "unavailable", "problem": slot.problem,
            }
            out.append(info)
        return out

    def setup_hints(self) -> builtins.list[SetupHint]:
        """For each registry provider no configured provider serves: what to set."""
        reg = self.registry or _builtin_registry()
        # a configured provider that cannot load is reported with its own problem, not as "set X"
        covered = {p for slot in self.slots if slot.settings.kind != "replay" for p in serves(slot.settings)}
        covered |= {m.provider for slot in self.slots for m in reg.all() if m.id in slot.settings.models}
        wanted = sorted({m.provider for m in reg.all()} - covered)
        return [{"provider": p, "hint": hint_for(p)} for p in wanted]

    async def check(self, name: str | None = None) -> builtins.list[ProviderCheckRow]:
        """One tiny call per provider (or the one named), all at once."""
        slots = [s for s in self.slots if name is None or s.settings.name == name]
        if name is not None and not slots:
            from core.errors import NotFound

            known = ", ".join(s.settings.name for s in self.slots) or "none"
            raise NotFound(f"no provider named {name!r} is configured (configured: {known}); "
                           "see `musubi providers list`.")

        async def one(slot: ProviderSlot) -> ProviderCheckRow:
            s = slot.settings
            label = REPLAY_LABEL if s.kind == "replay" else KIND_LABELS.get(s.kind, s.kind)
            if slot.provider is None:
                return {"name": s.name, "kind": s.kind, "label": label, "ok": False,
                        "detail": slot.problem or "not loaded", "latency_ms": None}
            try:
                res = await slot.provider.check()
            except Exception as exc:  # a provider's bug: reported as its failure, the others still run
                res = ProviderCheck(False, f"{type(exc).__name__}: {_scrub(str(exc), s)}")
            return {"name": s.name, "kind": s.kind, "label": label, "ok": res.ok, "detail": _scrub(res.detail, s),
                    "latency_ms": None if res.latency_ms is None else round(res.latency_ms, 1)}

        return list(await asyncio.gather(*(one(s) for s in slots)))

    # -- closing --------------------------------------------------------------------------------

    def retire(self) -> None:
        """No new calls come; close the providers when the calls in flight have ended."""
        self.retired = True
        if self.in_flight == 0:
            asyncio.get_running_loop().create_task(self.aclose())

    async def leave(self) -> None:
        self.in_flight -= 1
        if self.retired and self.in_flight == 0:
            await self.aclose()

    async def aclose(self) -> None:
        """Close every provider's session (idempotent; a call that starts later reopens, then closes)."""
        for slot in self.slots:
            if slot.provider is not None:
                try:
                    await slot.provider.inner.aclose()
                except Exception:
                    log.exception("closing provider %s failed", slot.settings.name)
        self._closed = True


def _scrub(text: str, s: ProviderSettings) -> str:
    """A last guard: the key never leaves in a message, whatever a provider wrote."""
    for secret in (s.api_key, s.extra.get("client_secret")):
        if secret and len(str(secret)) >= 4:
            text = text.replace(str(secret), "[redacted]")
    return text


_REGISTRY: Registry | None = None


def _builtin_registry() -> Registry:
    global _REGISTRY
    if _REGISTRY is None:
        from core.models.registry import load_registry

        _REGISTRY = load_registry()
    return _REGISTRY


class ProviderHub:
    """The engine's current :class:`ProviderSet`, rebuilt by :meth:`reload`."""

    def __init__(self, config_file: Callable[[], Path], *, environ: Mapping[str, str] | None = None,
                 entry_points: EntryPoints | None = None) -> None:
        self._config_file = config_file
        self._environ = dict(environ) if environ is not None else None  # None: the process's own
        self._entry_points = entry_points
        self.current = self._build(0, strict=False)

    def config_path(self) -> Path:
        """The config file the providers are read from."""
        return self._config_file()

    def _build(self, generation: int, *, strict: bool, environ: Mapping[str, str] | None = None) -> ProviderSet:
        env_now = self._environ if environ is None else environ
        path = self._config_file()
        config_error: str | None = None
        registry: Registry | None = None
        try:
            settings, registry = read_provider_config(path, env_now)
        except ConfigError as exc:
            if strict:
                raise
            config_error, settings = exc.message, []
            log.error("providers: %s", exc.message)
        factories, problems = load_factories(self._entry_points)
        return ProviderSet.build(settings, factories, load_problems=problems, registry=registry,
                                 config_error=config_error, generation=generation)

    async def reload(self, environ: Mapping[str, str] | None = None) -> ProviderSet:
        """Re-read config.toml (and take ``environ`` as the provider variables, when given) and swap.

        A bad config file raises :class:`ConfigError` and changes nothing; calls in flight on
        the old set finish on it, and it is closed after the last one.
        """
        new = self._build(self.current.generation + 1, strict=True, environ=environ)
        if environ is not None:
            self._environ = dict(environ)
        old, self.current = self.current, new
        old.retire()
        log.info("providers reloaded (generation %d): %s", new.generation,
                 ", ".join(s.settings.name for s in new.slots) or "none")
        return new

    def reload_soon(self) -> None:
        """SIGHUP: reload in a task; a bad config file is logged and the current set kept."""

        async def go() -> None:
            try:
                await self.reload()
            except MusubiError as exc:
                log.error("SIGHUP reload refused, providers unchanged: %s", exc.message)

        asyncio.get_running_loop().create_task(go())

    async def aclose(self) -> None:
        await self.current.aclose()


def read_provider_config(path: Path, environ: Mapping[str, str] | None) -> tuple[list[ProviderSettings], Registry]:
    """Providers and the model registry from ``path`` (validated whole) and the variables."""
    from core.config import parse_config, read_toml
    from core.models.registry import load_registry

    got = read_toml(path)
    if got is None:
        return resolve_settings({}, environ), load_registry()
    data, text = got
    cfg = parse_config(data, str(path), text, check_models=False)
    registry = load_registry(cfg.registry_input(), f"config file {path}")
    return resolve_settings(cfg.providers, environ, source=str(path), text=text), registry
