"""An estimate (the engine's ``/v1/cost/estimate`` answer) as JSON, CSV or Markdown.

Pure functions on the JSON the engine returns, so the Cost screen's export and any
script produce the same files.  CSV has one row per model; Markdown has the model
table and the per-file breakdown.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

FORMATS = ("json", "csv", "markdown")
EXTENSIONS = {"json": "json", "csv": "csv", "markdown": "md"}

MODEL_COLUMNS = (
    "model", "provider", "tier", "exact_tokens", "input_expected", "input_low", "input_high", "cached_input_expected",
    "output_expected", "output_low", "output_high", "requests", "cost_usd_low", "cost_usd_expected", "cost_usd_high",
    "fits", "max_chunks", "trips", "trips_high", "prices_checked", "does_not_fit",
)


def model_rows(est: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per model (the CSV columns)."""
    rows = []
    for m in est.get("models", []):
        rows.append({
            "model": m["model"], "provider": m["provider"], "tier": m["tier"], "exact_tokens": m["exact_tokens"],
            "input_expected": m["input_tokens"]["expected"], "input_low": m["input_tokens"]["low"],
            "input_high": m["input_tokens"]["high"], "cached_input_expected": m["cached_input_tokens"]["expected"],
            "output_expected": m["output_tokens"]["expected"], "output_low": m["output_tokens"]["low"],
            "output_high": m["output_tokens"]["high"], "requests": m["requests"],
            "cost_usd_low": m["cost_usd"]["low"], "cost_usd_expected": m["cost_usd"]["expected"],
            "cost_usd_high": m["cost_usd"]["high"], "fits": m["fits"], "max_chunks": m["max_chunks"],
            "trips": "; ".join(m.get("trips") or []), "trips_high": "; ".join(m.get("trips_high") or []),
            "prices_checked": m.get("prices_checked", ""), "does_not_fit": m.get("does_not_fit", ""),
        })
    return rows


def to_json(est: dict[str, Any]) -> str:
    return json.dumps(est, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def to_csv(est: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(MODEL_COLUMNS), lineterminator="\n")
    w.writeheader()
    w.writerows(model_rows(est))
    return buf.getvalue()


def _md_cell(v: Any) -> str:
    text = "yes" if v is True else "no" if v is False else str(v)
    return text.replace("|", "\\|").replace("\n", " ")


def _fits(m: dict[str, Any]) -> str:
    if m.get("does_not_fit"):
        return f"does not fit: {m['does_not_fit']}"
    return "yes" if m["fits"] else f"no ({m['max_chunks']} chunks)"


def to_markdown(est: dict[str, Any]) -> str:
    steps = " → ".join(s["task"] for s in est.get("steps", []))
    what = f"workflow `{est['workflow']}`" if est.get("workflow") else f"task `{est.get('task')}`"
    out = [f"# Cost estimate: {what} ({steps})", ""]
    totals = est.get("totals", {})
    out.append(f"{totals.get('files', 0)} file(s), {totals.get('bytes', 0):,} bytes; costs in US dollars, "
               "expected (low–high).")
    out += ["", "| model | input tokens | output tokens | cost | fits | quota |", "|---|---:|---:|---:|---|---|"]
    for m in est.get("models", []):
        star = "" if m["exact_tokens"] else " *"
        quota = ("would trip " + ", ".join(m["trips"])) if m.get("trips") else (
            ("may trip " + ", ".join(m["trips_high"])) if m.get("trips_high") else "ok")
        out.append("| " + " | ".join(_md_cell(v) for v in (
            m["model"] + star, f"{m['input_tokens']['expected']:,}", f"{m['output_tokens']['expected']:,}",
            f"{m['cost_usd']['expected']} ({m['cost_usd']['low']}–{m['cost_usd']['high']})",
            _fits(m), quota)) + " |")
    for a in est.get("assumptions", []):
        out += ["", f"Assumed {a}"]
    for w in est.get("warnings", []):
        out += ["", f"Warning: {w}"]
    if any(not m["exact_tokens"] for m in est.get("models", [])):
        out += ["", "\\* estimated token counts (no offline tokenizer is published for this model)."]
    files = est.get("files", [])
    if files:
        fams = list(dict.fromkeys(f for x in files for f in x["tokens"]))
        out += ["", "## Files", "", "| file | bytes | " + " | ".join(fams) + " |",
                "|---|---:|" + "---:|" * len(fams)]
        for f in files:
            cells = []
            for fam in fams:
                t = f["tokens"].get(fam)
                cells.append("-" if t is None else f"{t['tokens']:,}" if t["exact"] else f"~{t['tokens']:,}")
            out.append("| " + " | ".join([_md_cell(f["name"]), f"{f['bytes']:,}", *cells]) + " |")
    return "\n".join(out) + "\n"


def render(est: dict[str, Any], fmt: str) -> str:
    """``est`` in ``fmt`` (json, csv or markdown)."""
    if fmt == "json":
        return to_json(est)
    if fmt == "csv":
        return to_csv(est)
    if fmt == "markdown":
        return to_markdown(est)
    raise ValueError(f"unknown export format {fmt!r}: use {', '.join(FORMATS)}")
