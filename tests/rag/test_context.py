"""Context packs: exact packs for de-duplication, merging, ordering, budget and floor (core/rag/context.py)."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import BadRequest
from core.models.tokens import count_exact
from core.rag.context import pack


def words(text: str) -> int:
    """A transparent counter for exact expectations: whitespace-separated words."""
    return len(text.split())


def hit(path: str, start: int, end: int, score: float, text: str | None, symbol: str = "",
        lang: str = "python") -> dict[str, Any]:
    return {"path": path, "start_line": start, "end_line": end, "score": score, "text": text, "symbol": symbol,
            "language": lang}


F = hit("a.py", 3, 4, 0.9, "def f():\n    return 1", "f")
G = hit("a.py", 5, 6, 0.5, "def g():\n    return 2", "g")
H = hit("b.py", 1, 2, 0.7, "def h():\n    return 3", "h")


def test_blocks_ordered_by_file_then_line_with_exact_text_and_manifest() -> None:
    p = pack([G, H, F], budget=1000, model="gpt-5.4", count=words)
    # f and g touch (4 + 1 == 5): one block; b.py after a.py whatever the scores.
    assert p.text == (
        "File a.py lines 3-6 (f, g)\n```python\ndef f():\n    return 1\ndef g():\n    return 2\n```\n\n"
        "File b.py lines 1-2 (h)\n```python\ndef h():\n    return 3\n```\n\n"
    )
    m = p.manifest()
    assert m["included"] == [
        {"path": "a.py", "start_line": 3, "end_line": 6, "symbols": ["f", "g"], "language": "python", "score": 0.9,
         "tokens": 16, "hits": 2},
        {"path": "b.py", "start_line": 1, "end_line": 2, "symbols": ["h"], "language": "python", "score": 0.7,
         "tokens": 11, "hits": 1},
    ]
    assert (m["budget"], m["used"], m["remaining"], m["omitted"]) == (1000, 27, 973, [])
    assert p.used == words(p.text)


def test_over_budget_is_left_out_and_a_smaller_later_hit_still_fits() -> None:
    big = hit("c.py", 1, 3, 0.95, "def big():\n    x = 1 2 3 4 5 6 7 8 9 10\n    return x", "big")
    p = pack([big, F, H], budget=22, model="m", count=words)
    assert [(b.path, b.start_line) for b in p.blocks] == [("a.py", 3), ("b.py", 1)]
    assert p.used == 22 and p.remaining == 0
    assert [o.manifest() for o in p.omitted] == [
        {"path": "c.py", "start_line": 1, "end_line": 3, "symbol": "big", "score": 0.95, "reason": "over_budget",
         "detail": "needs 23 tokens, 22 left", "tokens": 23},
    ]
    assert p.manifest()["omitted_by_reason"] == {"over_budget": 1, "duplicate": 0, "below_floor": 0, "unavailable": 0}


def test_a_merge_that_does_not_fit_leaves_the_block_as_it_was() -> None:
    p = pack([F, G], budget=12, model="m", count=words)
    assert [(b.start_line, b.end_line, b.tokens) for b in p.blocks] == [(3, 4, 11)]
    assert [(o.start_line, o.reason, o.tokens) for o in p.omitted] == [(5, "over_budget", 5)]


def test_same_text_elsewhere_and_lines_inside_a_block_are_duplicates() -> None:
    copy = hit("vendor/a.py", 30, 31, 0.8, F["text"], "f")
    inner = hit("a.py", 4, 4, 0.6, "    return 1", "f")
    p = pack([F, copy, inner], budget=100, model="m", count=words)
    assert [(b.path, b.start_line, b.end_line) for b in p.blocks] == [("a.py", 3, 4)]
    assert [(o.path, o.reason, o.detail) for o in p.omitted] == [
        ("vendor/a.py", "duplicate", "same lines as a.py:3-4"),
        ("a.py", "duplicate", "inside a.py:3-4"),
    ]


def test_overlapping_hits_merge_into_the_union_of_their_lines() -> None:
    cls = hit("k.py", 1, 3, 0.4, "class K:\n    def m(self):\n        pass", "K")
    part = hit("k.py", 2, 5, 0.8, "    def m(self):\n        pass\n    def n(self):\n        pass", "K.m")
    p = pack([cls, part], budget=100, model="m", count=words)
    (b,) = p.blocks
    assert (b.start_line, b.end_line, b.symbols, b.score, b.merged) == (1, 5, ["K", "K.m"], 0.8, 2)
    assert b.lines == ["class K:", "    def m(self):", "        pass", "    def n(self):", "        pass"]


def test_a_hit_joining_two_blocks_merges_all_three() -> None:
    a = hit("j.py", 1, 1, 0.9, "a = 1")
    c = hit("j.py", 3, 3, 0.8, "c = 3")
    b = hit("j.py", 2, 2, 0.1, "b = 2")
    p = pack([a, c, b], budget=100, model="m", count=words)
    assert [(x.start_line, x.end_line, x.lines, x.merged) for x in p.blocks] == [(1, 3, ["a = 1", "b = 2", "c = 3"], 3)]
    assert p.used == words(p.text)


def test_with_the_files_blocks_separated_by_blank_lines_merge_and_text_is_current() -> None:
    src = ["import os", "", "def f():", "    return 1", "", "", "def g():", "    return 2", "x = 1", "",
           "def z(): pass"]
    f = hit("a.py", 3, 4, 0.9, "stale text", "f")
    g = hit("a.py", 7, 8, 0.8, "stale", "g")
    z = hit("a.py", 11, 11, 0.7, "stale", "z")
    p = pack([f, g, z], budget=100, model="m", count=words, files={"a.py": src})
    # f..g: only blank lines between (merged, blanks kept); g..z: "x = 1" between (not merged).
    assert [(b.start_line, b.end_line, b.lines) for b in p.blocks] == [
        (3, 8, ["def f():", "    return 1", "", "", "def g():", "    return 2"]),
        (11, 11, ["def z(): pass"]),
    ]


def test_below_the_floor_and_unreadable_hits_are_left_out_with_reasons() -> None:
    gone = {**H, "path": "gone.py", "text": None}
    p = pack([F, G, gone], budget=100, model="m", count=words, min_score=0.6)
    assert [b.path for b in p.blocks] == ["a.py"]
    assert [(o.path, o.reason, o.detail) for o in p.omitted] == [
        ("gone.py", "unavailable", "its lines could not be read (file moved or deleted since it was indexed)"),
        ("a.py", "below_floor", "score 0.5 < 0.6"),
    ]


def test_a_fence_longer_than_any_backtick_run_in_the_text() -> None:
    md = hit("d.md", 1, 3, 1.0, "# T\n````\ncode", "T", lang="markdown")
    text = pack([md], budget=100, model="m", count=words).text
    assert text == "File d.md lines 1-3 (T)\n`````markdown\n# T\n````\ncode\n`````\n\n"


def test_nothing_fits_or_nothing_found_is_an_empty_pack() -> None:
    assert pack([], budget=5, model="m", count=words).manifest() == {
        "model": "m", "budget": 5, "used": 0, "remaining": 5, "included": [], "omitted": [],
        "omitted_by_reason": {"over_budget": 0, "duplicate": 0, "below_floor": 0, "unavailable": 0}}
    p = pack([F], budget=1, model="m", count=words)
    assert (p.text, p.used, [o.reason for o in p.omitted]) == ("", 0, ["over_budget"])


@pytest.mark.parametrize("budget", [0, -1, 10_000_001, True, 2.5, "100"])
def test_bad_budgets_are_refused_with_the_range(budget: Any) -> None:
    with pytest.raises(BadRequest, match="budget .* must be a whole number of tokens from 1 to 10,000,000") as ei:
        pack([F], budget=budget, model="m", count=words)
    assert ei.value.extra.get("field") == "budget"


@pytest.mark.parametrize("enc", ["o200k_base", "cl100k_base"])
def test_exact_encodings_count_the_whole_pack_exactly(enc: str) -> None:
    hits = [hit(f"src/m{i}.py", 10 * i + 1, 10 * i + 3, 1.0 - i / 10,
                f"def fn_{i}(x):\n    '''Ünïcode ✓ {i}'''\n    return x ** {i}  # 日本語", f"fn_{i}") for i in range(6)]
    hits.append(hit("README.md", 1, 2, 0.05, "Plain prose.\n\n", lang="markdown"))
    p = pack(hits, budget=10_000, model="gpt", count=lambda t: count_exact(t, enc))
    assert len(p.blocks) == 7
    assert p.used == count_exact(p.text, enc)
    tight = pack(hits, budget=p.used - 1, model="gpt", count=lambda t: count_exact(t, enc))
    assert tight.used <= p.used - 1 and tight.used == count_exact(tight.text, enc)
    assert [o.reason for o in tight.omitted] == ["over_budget"]
