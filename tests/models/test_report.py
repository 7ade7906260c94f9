"""Estimate exports: JSON, CSV and Markdown of the engine's estimate."""

from __future__ import annotations

import csv
import io
import json

import pytest

from core.models.estimate import Document, estimate, workflow
from core.models.registry import load_registry
from core.models.report import MODEL_COLUMNS, render

REG = load_registry()


@pytest.fixture(scope="module")
def est() -> dict:  # type: ignore[type-arg]
    e = estimate(REG, [REG.get("gpt-5.4"), REG.get("claude-opus-5")],
                 [Document("a|b.md", "Some prose.\n" * 50), Document("x.py", "x = 1\n" * 30)], workflow("spec").steps)
    e.update({"workflow": "spec", "task": None})
    return e


def test_json_round_trips(est: dict) -> None:  # type: ignore[type-arg]
    assert json.loads(render(est, "json")) == json.loads(json.dumps(est))


def test_csv_has_one_row_per_model_with_exact_figures(est: dict) -> None:  # type: ignore[type-arg]
    rows = list(csv.DictReader(io.StringIO(render(est, "csv"))))
    assert [r["model"] for r in rows] == ["gpt-5.4", "claude-opus-5"]
    assert list(rows[0]) == list(MODEL_COLUMNS)
    assert rows[0]["cost_usd_expected"] == est["models"][0]["cost_usd"]["expected"]
    assert rows[1]["exact_tokens"] == "False"


def test_markdown_tables_escape_pipes_and_mark_estimates(est: dict) -> None:  # type: ignore[type-arg]
    md = render(est, "markdown")
    assert md.startswith("# Cost estimate: workflow `spec` (requirements → design → tasks)")
    assert "| claude-opus-5 * |" in md and "estimated token counts" in md
    assert "a\\|b.md" in md and "## Files" in md


def test_unknown_format(est: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match="unknown export format"):
        render(est, "xlsx")
