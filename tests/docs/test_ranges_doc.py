"""docs/api.md#ranges lists every range of core/limits.py, with the numbers the code uses."""

from __future__ import annotations

import re
from pathlib import Path

from core import limits

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _rows() -> dict[str, tuple[str, str, str]]:
    text = DOC.read_text(encoding="utf-8").split("## Ranges", 1)[1].split("\n## ", 1)[0]
    return {
        m[0]: (m[1], m[2], m[3])
        for m in re.findall(r"^\| `([^`]+)` \| ([^|]+?) \| ([^|]+?) \| ([^|]+?) \|", text, re.M)
    }


def test_every_range_is_in_the_table_with_the_code_s_numbers() -> None:
    rows = _rows()
    assert set(rows) == set(limits.FIELDS), "docs/api.md#ranges and core/limits.FIELDS list different fields"
    for name, r in limits.FIELDS.items():
        j = r.as_json()
        lo, hi = (j["min"], j["max"]) if r.money else (f"{r.lo:,}", f"{r.hi:,}")
        assert rows[name] == (lo, hi, j["unit"]), f"{name}: doc says {rows[name]}, code {(lo, hi, j['unit'])}"


def test_the_other_bounds_stated_on_the_page_match_the_code() -> None:
    text = DOC.read_text(encoding="utf-8").split("## Ranges", 1)[1].split("\n## ", 1)[0]
    assert f"at most {limits.MAX_ALERTS} of them" in text
    assert f"`model` ≤ {limits.MAX_MODEL_LEN} characters" in text
    assert f"`reason` and `description` ≤ {limits.MAX_REASON_LEN:,}" in text
    assert f"paths\n≤ {limits.MAX_PATH_LEN:,}" in text or f"paths ≤ {limits.MAX_PATH_LEN:,}" in text
    conventions = DOC.read_text(encoding="utf-8").split("## Conventions", 1)[1].split("\n## ", 1)[0]
    assert f"deeper than {limits.MAX_DEPTH} levels" in conventions
