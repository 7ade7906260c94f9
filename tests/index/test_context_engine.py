"""Context packs and suggested trace links through a real engine with an index (fake embedder)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.api import responses as a
from core.models.tokens import count_exact
from core.trace.suggest import THRESHOLD
from tests.cli.helpers import Cli
from tests.engine.helpers import Home, poll
from tests.engine.test_api_models import _exactly
from tests.trace.fixture import build_repo

from .helpers import add_project, cli_with_project, git, index, make_repo

CODE = {
    "src/billing/invoice.py": "def create_invoice(tenant):\n    \"\"\"One invoice per tenant.\"\"\"\n"
                              "    return {'tenant': tenant}\n\n\ndef invoice_total(lines):\n"
                              "    return sum(x.amount for x in lines)\n",
    "src/billing/currency.py": "def price_in_currency(amount, currency):\n    return round(amount, 2), currency\n",
    "README.md": "# Billing\n\nInvoices.\n",
}


@pytest.fixture
def world(fhome: Home, tmp_path: Path) -> tuple[Home, Path]:
    fhome.start()
    repo = make_repo(tmp_path, CODE)
    add_project(fhome, "default", "bill", repo)
    return fhome, repo


def ctx(h: Home, body: dict[str, object], project: str = "bill") -> tuple[int, dict[str, object]]:
    return h.raw("POST", "/v1/context", body, tenant="default", project=project, timeout=60)


def test_a_pack_from_the_index_has_the_shape_and_exact_counts(world: tuple[Home, Path]) -> None:
    h, _repo = world
    status, body = ctx(h, {"task": "invoice", "budget": 1000, "model": "gpt-5.4"})
    assert status == 400 and body["error"]["code"] == "not_indexed" and "musubi index" in body["error"]["message"]
    index(h, "default", "bill")
    status, body = ctx(h, {"task": "create an invoice per tenant", "budget": 1000, "model": "gpt-5.4", "k": 5})
    assert status == 200, body
    _exactly(body, a.ContextPack)
    assert body["exact"] is True and body["tokenizer"] == "o200k_base" and body["model"] == "gpt-5.4"
    assert body["used"] == count_exact(body["text"], "o200k_base") and body["remaining"] == 1000 - body["used"]
    paths = [(b["path"], b["start_line"]) for b in body["included"]]
    assert paths == sorted(paths) and ("src/billing/invoice.py", 1) in paths
    # The two functions of invoice.py are separated by blank lines only: one merged block.
    inv = next(b for b in body["included"] if b["path"] == "src/billing/invoice.py")
    assert (inv["start_line"], inv["end_line"], inv["symbols"]) == (1, 7, ["create_invoice", "invoice_total"])
    small = ctx(h, {"task": "create an invoice per tenant", "budget": 30, "model": "gpt-5.4", "k": 5})[1]
    assert small["used"] <= 30 and any(o["reason"] == "over_budget" for o in small["omitted"])


@pytest.mark.parametrize(("body", "status", "code", "words"), [
    ({"task": "x", "budget": 0, "model": "gpt-5.4"}, 400, "bad_request", "from 1 to 10,000,000"),
    ({"task": "x", "budget": 10**9, "model": "gpt-5.4"}, 400, "bad_request", "from 1 to 10,000,000"),
    ({"task": "  ", "budget": 10, "model": "gpt-5.4"}, 400, "bad_request", "task is empty"),
    ({"task": "x", "budget": 10, "model": "gpt-5-4"}, 404, "unknown_model", "Did you mean"),
    ({"task": "x", "budget": 10, "model": "gpt-5.4", "k": 101}, 400, "bad_request", "k"),
])
def test_bad_requests_name_the_problem(world: tuple[Home, Path], body: dict[str, object], status: int, code: str,
                                       words: str) -> None:
    got, answer = ctx(world[0], body)
    assert got == status and answer["error"]["code"] == code and words in answer["error"]["message"], answer


def test_the_estimate_counts_an_actual_pack_per_model(world: tuple[Home, Path]) -> None:
    h, _repo = world
    index(h, "default", "bill")
    body = {"models": ["gpt-5.4", "opus"], "task": "implementation", "retrieval_task": "price in a currency",
            "retrieval_budget": 500}
    status, est = h.raw("POST", "/v1/cost/estimate", body, tenant="default", project="bill", timeout=60)
    assert status == 200, est
    packs = est["retrieval"]["models"]
    gpt = ctx(h, {"task": "price in a currency", "budget": 500, "model": "gpt-5.4"})[1]
    assert packs["gpt-5.4"]["used"] == gpt["used"] > 0
    assert est["retrieval_tokens"] == max(p["used"] for p in packs.values())
    assert packs[next(k for k in packs if k != "gpt-5.4")]["used"] != gpt["used"]  # the other tokenizer's count


def test_trace_reads_get_suggestions_from_the_index_in_the_background(fhome: Home, tmp_path: Path) -> None:
    h = fhome
    h.start()
    repo = build_repo(tmp_path / "trace", git=False)
    (repo / "src" / "auth" / "logout.py").write_text("def logout(session):\n    \"\"\"Revoke the session token.\"\"\"\n"
                                                    "    session.revoke()\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    add_project(h, "default", "tr", repo)

    def report() -> dict[str, object]:
        status, body = h.raw("GET", "/v1/trace?view=full", tenant="default", project="tr", timeout=60)
        assert status == 200, body
        return dict(body)

    first = report()
    assert first["suggestions"]["state"] == "none" and "musubi index" in first["suggestions"]["note"]
    index(h, "default", "tr")
    assert report()["suggestions"]["state"] in ("updating", "ready")  # the read itself never waits
    ready = poll(lambda: (r := report())["suggestions"]["state"] == "ready" and r, timeout=60, interval=0.2)
    assert ready["suggestions"]["threshold"] == THRESHOLD
    links = [lk for r in ready["requirements"] for c in ("code", "tests") for lk in r["links"][c]
             if lk["state"] == "suggested"]
    assert ready["suggestions"]["count"] == len(links)
    assert all(lk["source"] == "suggested" and lk["context"].startswith("score ") for lk in links)
    assert ready["summary"] == first["summary"]  # suggestions never count toward coverage


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, Path]]:
    with cli_with_project(tmp_path_factory.mktemp("ctxcli"), CODE, "bill") as world:
        yield world


def test_cli_context(cli: tuple[Cli, Path]) -> None:
    c, repo = cli
    r = c.fails(1, "context", "invoice", "--budget", "100", "--model", "gpt-5.4", cwd=str(repo))
    assert "not indexed yet" in r.err and "musubi index" in r.err
    c.js("index", cwd=str(repo))
    out = c.ok("context", "create an invoice", "--budget", "2000", "--model", "gpt-5.4", cwd=str(repo)).out
    assert "File src/billing/invoice.py lines 1-7" in out and "Included" in out and "tokens used (exact" in out
    d = c.js("context", "create an invoice", "--budget", "2000", "--model", "gpt-5.4", cwd=str(repo))
    assert d["used"] == count_exact(d["text"], "o200k_base")
    bad = c.fails(2, "context", "x", "--budget", "0", "--model", "gpt-5.4", cwd=str(repo))
    assert "from 1 to 10,000,000" in bad.err
    unknown = c.fails(1, "context", "x", "--budget", "10", "--model", "gpt-5-4", cwd=str(repo))
    assert "Did you mean" in unknown.err and "gpt-5.4" in unknown.err
    est = c.js("cost", "estimate", "--model", "gpt-5.4", "--retrieval-task", "create an invoice",
               "--retrieval-budget", "2000", cwd=str(repo))
    assert est["retrieval_tokens"] == d["used"]
