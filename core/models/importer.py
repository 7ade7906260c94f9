"""Refreshing the registry from a price table in LiteLLM's format, without a release.

LiteLLM's ``model_prices_and_context_window.json`` (the format many gateways and
internal mirrors share) is one JSON object: model key -> fields such as
``litellm_provider``, ``mode``, ``max_input_tokens``, ``max_output_tokens``,
``input_cost_per_token``, ``output_cost_per_token``, ``cache_read_input_token_cost``,
``input_cost_per_token_above_272k_tokens`` (a long-context tier),
``deprecation_date`` (the day the provider stops serving the model),
``successor_model`` and ``supports_*`` flags.  Prices are dollars per token.

:func:`slim_table` keeps the rows of providers we support (chat models, no dated
snapshots) and the fields we read, so a client can send a 1.6 MB table as a few
kilobytes.  :func:`plan_import` maps them onto the registry and returns the diff
(new models, changed prices, windows and dates, models the table no longer lists)
and the override entries to store.  Existing models keep what the table does not
say (tier, capabilities, tokenizer, aliases); a new model gets a tier from its
output price, which an admin should review (``musubi models show``).

Pure code: no network, no files.  The CLI reads the file or fetches the URL (only
when asked); the engine stores the result as the user's or the tenant's override.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import BadRequest
from core.models.registry import ModelSpec, Registry

# LiteLLM provider -> ours.  Vertex, Bedrock and other re-sellers are left out: their
# prices and ids differ from the provider's own API that our connectors call.
PROVIDER_MAP = {"openai": "openai", "azure": "azure", "anthropic": "anthropic", "gemini": "google", "mistral": "mistral"}
TOKENIZER_FOR = {"openai": "o200k_base", "azure": "o200k_base", "anthropic": "anthropic-2026", "google": "gemini",
                 "mistral": "mistral"}
KEPT_FIELDS = frozenset({
    "litellm_provider", "mode", "max_input_tokens", "max_output_tokens", "max_tokens", "input_cost_per_token",
    "output_cost_per_token", "cache_read_input_token_cost", "deprecation_date", "successor_model",
    "supports_reasoning", "source",
})
_TIER_FIELD = re.compile(r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost)_above_(\d+)k_tokens$")
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")
# Chat-mode rows that are not text models for agent work (audio, realtime, image, search, computer use).
_SPECIAL = re.compile(r"audio|realtime|tts|transcribe|image|search|computer-use|moderation|embedding")
MAX_ROWS = 5000
# Output price (dollars per million) -> tier of a model the registry does not know yet.
TIER_BY_OUTPUT = ((Decimal(1), "basic"), (Decimal(6), "standard"), (Decimal(20), "advanced"))
COMPARED = ("input_per_mtok", "cached_input_per_mtok", "output_per_mtok", "context_window", "max_output",
            "long_context", "retires_on", "replacement")


def slim_table(table: Any) -> dict[str, dict[str, Any]]:
    """The rows of ``table`` an import can use, with only the fields it reads."""
    if not isinstance(table, Mapping):
        raise BadRequest("the price table must be a JSON object of model -> fields "
                         "(LiteLLM's model_prices_and_context_window.json format).", field="table")
    out: dict[str, dict[str, Any]] = {}
    for key, row in table.items():
        if not isinstance(key, str) or not isinstance(row, Mapping) or key == "sample_spec":
            continue
        if row.get("litellm_provider") not in PROVIDER_MAP or row.get("mode", "chat") != "chat":
            continue
        if _SNAPSHOT.search(key) or _SPECIAL.search(key) or key.count("/") > 1:
            continue  # dated snapshots repeat their alias's row; azure/<region>/... repeats azure/...
        out[key] = {k: v for k, v in row.items() if k in KEPT_FIELDS or _TIER_FIELD.match(k)}
    return out


def _per_mtok(v: Any, where: str) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise BadRequest(f"{where}: a price must be a number (dollars per token).", field="table")
    try:
        d = Decimal(str(v)) * 1_000_000
    except InvalidOperation:
        raise BadRequest(f"{where}: {v!r} is not a number.", field="table") from None
    if not d.is_finite() or d < 0:
        raise BadRequest(f"{where}: a price must be >= 0.", field="table")
    return d.normalize() if d != d.to_integral() else d.quantize(Decimal(1))


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def _our_name(key: str, provider: str) -> str:
    name = key.split("/", 1)[1] if "/" in key and provider != "azure" else key
    return name


def _long_context(row: Mapping[str, Any], base: dict[str, Decimal], key: str) -> dict[str, Any] | None:
    tiers: dict[int, dict[str, Decimal]] = {}
    for k, v in row.items():
        m = _TIER_FIELD.match(k)
        if m:
            tiers.setdefault(int(m.group(2)) * 1000, {})[m.group(1)] = _per_mtok(v, f"{key}.{k}")
    if not tiers:
        return None
    threshold = min(tiers)  # one tier is all the registry models; the first is where the premium starts
    t = tiers[threshold]
    if "input_cost_per_token" not in t:
        return None
    return {
        "threshold": threshold, "input_per_mtok": t["input_cost_per_token"],
        "output_per_mtok": t.get("output_cost_per_token", base["output_per_mtok"]),
        "cached_input_per_mtok": t.get("cache_read_input_token_cost", base["cached_input_per_mtok"]),
    }


def _entry(key: str, row: Mapping[str, Any], today: date, source: str) -> tuple[str, dict[str, Any]] | None:
    """(provider, fields) of one table row, or None when it lacks a price or a window."""
    provider = PROVIDER_MAP[row["litellm_provider"]]
    window = _int(row.get("max_input_tokens")) or _int(row.get("max_tokens"))
    if window is None or "input_cost_per_token" not in row or "output_cost_per_token" not in row:
        return None
    inp = _per_mtok(row["input_cost_per_token"], f"{key}.input_cost_per_token")
    out = _per_mtok(row["output_cost_per_token"], f"{key}.output_cost_per_token")
    cached = _per_mtok(row["cache_read_input_token_cost"], f"{key}.cache_read_input_token_cost") \
        if "cache_read_input_token_cost" in row else inp
    fields: dict[str, Any] = {
        "context_window": window, "max_output": min(_int(row.get("max_output_tokens")) or window, window),
        "input_per_mtok": inp, "output_per_mtok": out, "cached_input_per_mtok": min(cached, inp),
        "prices_checked": today, "source": f"imported from {source} ({key})",
    }
    fields["long_context"] = _long_context(row, fields, key)
    dep = row.get("deprecation_date")
    if isinstance(dep, str):
        try:
            fields["retires_on"] = date.fromisoformat(dep)
        except ValueError:
            raise BadRequest(f"{key}.deprecation_date: {dep!r} is not a date (YYYY-MM-DD).", field="table") from None
    if isinstance(row.get("successor_model"), str):
        fields["successor"] = row["successor_model"]
    fields["reasoning"] = bool(row.get("supports_reasoning"))
    return provider, fields


def _new_model(mid: str, provider: str, key: str, f: dict[str, Any]) -> dict[str, Any]:
    tier = next((t for limit, t in TIER_BY_OUTPUT if f["output_per_mtok"] < limit), "frontier")
    caps = ["chat", "code"] + (["reasoning"] if f["reasoning"] else []) + (
        ["long_context"] if f["context_window"] >= 400_000 else [])
    d = {"id": mid, "provider": provider, "aliases": [key] if key != mid else [], "tokenizer": TOKENIZER_FOR[provider],
         "tier": tier, "capabilities": caps}
    if provider == "azure":
        d["deployment"] = mid.split("/", 1)[1]
    return d


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _current(m: ModelSpec, field: str) -> Any:
    v = getattr(m, field)
    if field == "long_context" and v is not None:
        return {"threshold": v.threshold, "input_per_mtok": v.input_per_mtok, "output_per_mtok": v.output_per_mtok,
                "cached_input_per_mtok": v.cached_input_per_mtok}
    return v


def plan_import(registry: Registry, table: Any, source: str, today: date) -> dict[str, Any]:
    """The diff of importing ``table`` into ``registry`` and the override entries that apply it.

    Returns ``{"new": [...], "changed": [...], "removed": [...], "unchanged": n, "skipped": [...],
    "entries": [...]}``; ``entries`` are registry fields (JSON-ready) keyed by ``id``.
    """
    rows = slim_table(table)
    if len(rows) > MAX_ROWS:
        raise BadRequest(f"the table has {len(rows)} usable rows, more than an import takes ({MAX_ROWS}).", field="table")
    if not rows:
        raise BadRequest("the table has no chat model of a supported provider (openai, azure, anthropic, gemini, "
                         "mistral): is it LiteLLM's model_prices_and_context_window.json format?", field="table")
    seen: set[str] = set()
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    entries: list[dict[str, Any]] = []
    unchanged = 0
    successors: dict[str, str] = {}
    for key in sorted(rows):
        got = _entry(key, rows[key], today, source)
        if got is None:
            skipped.append({"key": key, "reason": "no input/output price or context window"})
            continue
        provider, f = got
        name = _our_name(key, provider)
        known = next((registry.get(n) for n in (key, name) if n in registry), None)
        if known is not None and known.provider != provider:
            known = None  # e.g. an OpenAI id that our registry serves through another provider
        if known is not None and known.id in seen:
            continue  # two table rows for one model (an alias): the first wins
        successor = f.pop("successor", None)
        reasoning = f.pop("reasoning")
        if known is None:
            mid = name
            if mid in seen:
                continue  # gemini/x and x: one model
            if f.get("retires_on") is not None and f["retires_on"] <= today:
                skipped.append({"key": key, "reason": f"retired on {f['retires_on']}: not added"})
                continue
            if mid in registry:
                skipped.append({"key": key, "reason": f"{mid} is a {registry.get(mid).provider} model here"})
                continue
            entry = {**_new_model(mid, provider, key, {**f, "reasoning": reasoning}), **f}
            if entry["long_context"] is None:
                entry.pop("long_context")
            new.append({"model": mid, "provider": provider, "tier": entry["tier"], "input_per_mtok": str(f["input_per_mtok"]),
                        "output_per_mtok": str(f["output_per_mtok"]), "context_window": f["context_window"],
                        "retires_on": _jsonable(f.get("retires_on"))})
        else:
            mid = known.id
            diffs = {}
            for fld in COMPARED:
                if fld not in f:
                    continue
                old, nv = _current(known, fld), f[fld]
                if old != nv:
                    diffs[fld] = {"old": _jsonable(old), "new": _jsonable(nv)}
            if not diffs:
                unchanged += 1
                seen.add(mid)
                continue
            entry = {"id": mid, **{k: f[k] for k in diffs}, "prices_checked": f["prices_checked"], "source": f["source"]}
            changed.append({"model": mid, "changes": diffs})
        if successor:
            successors[mid] = successor
        seen.add(mid)
        entries.append(entry)
    # Successors name table keys; keep only those that map onto a model the registry will know.
    ids = {e["id"] for e in entries} | set(registry.models)
    for e in entries:
        s = successors.get(e["id"])
        if s:
            target = next((n for n in (s, s.split("/", 1)[-1]) if n in ids or n in registry), None)
            if target is not None:
                e["replacement"] = registry.get(target).id if target in registry else target
    providers = {PROVIDER_MAP[r["litellm_provider"]] for r in rows.values()}
    removed = [{"model": m.id, "provider": m.provider,
                "note": "not in the table: kept as it is; check whether the provider retired it"}
               for m in registry.all() if m.provider in providers and m.id not in seen and not m.is_local
               and m.status_on(today) != "retired"]
    return {"source": source, "new": new, "changed": changed, "removed": removed, "unchanged": unchanged,
            "skipped": skipped, "entries": [_jsonable(e) for e in entries]}
