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


def test_the_request_models_check_the_ranges_the_page_lists() -> None:
    # The models (core/api/models.py) check each numeric field against a range; it must be the one
    # docs/api.md#ranges and core/limits.FIELDS give for that field name.
    from core.api import models as m

    checked = set()
    for model in (c for c in vars(m).values() if isinstance(c, type) and issubclass(c, m.Request)):
        for field, check in model.CHECKS.items():
            if isinstance(check, m.RangeCheck):
                assert field in limits.FIELDS, f"{model.__name__}.{field}: no row in docs/api.md#ranges"
                assert check.range == limits.FIELDS[field], f"{model.__name__}.{field}: {check.range} vs the page"
                checked.add(field)
    assert {"input_tokens", "output_tokens", "tokens", "requests", "cost_usd", "ttl_s", "since_hours"} <= checked
