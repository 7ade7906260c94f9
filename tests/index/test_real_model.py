"""End to end with the real all-MiniLM-L6-v2 (no fake embedder): index a small repository, then search."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.helpers import Home

from .helpers import add_project, index, make_repo, search

CODE = {
    "billing/invoice.py": (
        "def total_with_tax(items, rate):\n"
        "    \"\"\"Sum the prices of the items and add value-added tax.\"\"\"\n"
        "    return sum(i.price for i in items) * (1 + rate)\n"
    ),
    "net/http.py": (
        "def fetch_with_retries(url, attempts=3):\n"
        "    \"\"\"Download a web page, trying again when the connection fails.\"\"\"\n"
        "    for _ in range(attempts):\n"
        "        try:\n"
        "            return urlopen(url).read()\n"
        "        except OSError:\n"
        "            continue\n"
    ),
    "text/slug.py": (
        "def slugify(title):\n"
        "    \"\"\"Turn a title into a lowercase URL fragment with dashes.\"\"\"\n"
        "    return '-'.join(title.lower().split())\n"
    ),
}


@pytest.fixture
def real(monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    monkeypatch.delenv("MUSUBI_TEST_FAKE_EMBEDDER", raising=False)
    h = Home()
    try:
        yield h
    finally:
        h.cleanup()


def test_the_real_model_finds_code_by_meaning(real: Home, tmp_path: Path) -> None:
    real.start()
    add_project(real, "default", "demo", make_repo(tmp_path, CODE))
    done = index(real, "default", "demo")
    assert done["embedded"] == done["chunks"] == 3
    _, st = real.raw("GET", "/v1/index/status", tenant="default", project="demo")
    assert st["model"].startswith("all-MiniLM-L6-v2") or "minilm" in st["model"].lower(), st
    # Words that appear in none of the code: only the embedding can connect them.
    for query, path in (("download a web page again after a network error", "net/http.py"),
                        ("compute the invoice amount including VAT", "billing/invoice.py")):
        status, body = search(real, "default", "demo", query, k=3)
        assert status == 200 and body["complete"] is True, body
        assert body["results"][0]["path"] == path, (query, body["results"])
