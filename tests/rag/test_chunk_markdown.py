"""Markdown chunks by heading: heading paths, front matter, fences, setext, Japanese, long sections."""

from __future__ import annotations

from core.rag.chunking import chunk_file
from tests.rag.helpers import check_text, rows

DOC = """\
---
title: Spec
tags: [a, b]
---
Intro before any heading.

# Top

Text of top.

## Setup ##

```sh
# not a heading: inside a fence
echo hi
```

### Deep

## 検索の仕様

日本語の本文。

Other
=====

Under setext.
"""


def test_exact_sections() -> None:
    chunks = chunk_file("docs/spec.md", DOC)
    check_text(chunks, DOC)
    assert rows(chunks) == [
        ("section", "front matter", 1, 4, "---", 0),
        ("section", "", 5, 5, "", 0),
        ("section", "Top", 7, 9, "# Top", 0),
        ("section", "Top > Setup", 11, 16, "## Setup ##", 0),
        ("section", "Top > Setup > Deep", 18, 18, "### Deep", 0),
        ("section", "Top > 検索の仕様", 20, 22, "## 検索の仕様", 0),
        ("section", "Other", 24, 27, "Other\n=====", 0),
    ]
    assert {c.language for c in chunks} == {"markdown"}


def test_tilde_fences_and_an_unclosed_fence_hide_headings() -> None:
    src = "# A\n~~~\n# no\n~~~\n# B\n```\n# never\n"
    assert [c.symbol for c in chunk_file("a.md", src)] == ["A", "B"]


def test_a_thematic_break_after_a_blank_line_is_not_a_heading() -> None:
    src = "# A\n\ntext\n\n---\n\nmore\n"
    assert rows(chunk_file("a.md", src)) == [("section", "A", 1, 7, "# A", 0)]


def test_a_long_section_is_split_at_blank_lines_with_its_heading_on_every_part() -> None:
    paras = "\n\n".join(
        f"Paragraph {i} says something about requirement number {i} and more words."
        for i in range(60)
    )
    src = f"# Intro\n\n## Long part\n\n{paras}\n"
    chunks = [c for c in chunk_file("a.md", src) if c.symbol == "Intro > Long part"]
    check_text(chunks, src)
    assert len(chunks) >= 3 and [c.part for c in chunks] == list(range(1, len(chunks) + 1))
    assert {c.signature for c in chunks} == {"## Long part"}
    lines = src.split("\n")
    assert all(
        lines[c.end_line - 1].startswith("Paragraph") for c in chunks
    )  # cuts fall at blank lines
    assert all(lines[c.start_line - 1].strip() for c in chunks)


def test_an_empty_parent_heading_joins_its_first_child() -> None:
    src = "# Guide\n\n## Install\n\npip install x\n\n## Use\n\nrun it\n\n# Empty end\n"
    assert rows(chunk_file("a.md", src)) == [
        ("section", "Guide > Install", 1, 5, "## Install", 0),
        ("section", "Guide > Use", 7, 9, "## Use", 0),
        ("section", "Empty end", 11, 11, "# Empty end", 0),
    ]


def test_no_headings_is_one_section_without_symbol() -> None:
    assert rows(chunk_file("a.md", "just text\nmore\n")) == [("section", "", 1, 2, "", 0)]
