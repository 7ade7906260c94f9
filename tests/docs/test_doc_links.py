"""Links between the engine docs point at files and headings that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
OWN = ("api.md", "schema.md", "rbac.md", "quotas.md", "audit.md", "architecture.md", "cli.md", "quickstart.md",
       "plugins.md")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slugs(text: str) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to '-', repeats numbered."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    out: set[str] = set()
    for m in re.finditer(r"^#{1,6} (.+)$", text, re.M):
        base = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        slug, n = base, 0
        while slug in out:
            n += 1
            slug = f"{base}-{n}"
        out.add(slug)
    return out


@pytest.mark.parametrize("name", OWN)
def test_links_resolve(name: str) -> None:
    text = (DOCS / name).read_text(encoding="utf-8")
    bad = []
    for target in LINK.findall(re.sub(r"```.*?```", "", text, flags=re.S)):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        path = DOCS / file if file else DOCS / name
        if not path.exists():
            bad.append(f"{target}: no file {path.name}")
        elif (
            anchor
            and path.suffix == ".md"
            and anchor not in slugs(path.read_text(encoding="utf-8"))
        ):
            bad.append(f"{target}: no heading #{anchor} in {path.name}")
    assert not bad, f"{name}: " + "; ".join(bad)


def test_slug_rule() -> None:
    assert "get-v1quotas" in slugs("### GET /v1/quotas\n")
    assert "audit_log--append-only-hash-chained-per-tenant" in slugs(
        "### `audit_log` — append-only, hash-chained per tenant\n"
    )
