"""The code-search routes of the fake engine (``/v1/index/status``, ``/v1/search``, ``/v1/index``), answering
in the engine contract's shapes (core.api.responses) from a tiny in-memory corpus.

Test code only.  Scoring is a plain word count, so a test knows which chunk comes first.  A test can hold
the answer to one query back (``gate``) to make answers arrive out of order, switch the index state
(``state``: none / indexing / ready / stale / failed; ``project`` None: no project here), make the next
calls fail (``fail``), and write the corpus to a folder so the preview reads real files (``write``).
"""

from __future__ import annotations

import asyncio
import copy
import fnmatch
import re
from pathlib import Path
from typing import Any

from core.api import models as m
from core.errors import MusubiError, NotFound, from_dict

CORPUS: dict[str, str] = {
    "src/shop/cart.py": (
        '"""The shopping cart."""\n'
        "\n"
        "from decimal import Decimal\n"
        "\n"
        "\n"
        "class Cart:\n"
        '    """Items a customer is about to buy."""\n'
        "\n"
        "    def __init__(self) -> None:\n"
        "        self.items: dict[str, int] = {}\n"
        "\n"
        "    def add_item(self, sku: str, qty: int = 1) -> None:\n"
        '        """Add qty of sku to the cart."""\n'
        "        self.items[sku] = self.items.get(sku, 0) + qty\n"
        "\n"
        "    def total_price(self, prices: dict[str, Decimal]) -> Decimal:\n"
        '        """Total price of the cart in the shop currency."""\n'
        "        return sum((prices[s] * q for s, q in self.items.items()), Decimal(0))\n"
        "\n"
        "\n"
        "def empty_cart() -> Cart:\n"
        "    return Cart()\n"
    ),
    "src/shop/payment.py": (
        '"""Payments through the card provider."""\n'
        "\n"
        "\n"
        "def charge_card(token: str, amount_cents: int) -> str:\n"
        '    """Charge a card token and return the payment id."""\n'
        "    if amount_cents <= 0:\n"
        '        raise ValueError("amount must be positive")\n'
        '    return f"pay-{token[:6]}-{amount_cents}"\n'
        "\n"
        "\n"
        "def refund_payment(payment_id: str) -> bool:\n"
        '    """Refund a payment in full."""\n'
        "    return payment_id.startswith(\"pay-\")\n"
    ),
    "web/checkout.ts": (
        "import { api } from './api';\n"
        "\n"
        "export async function submitCheckout(cartId: string): Promise<string> {\n"
        "  // Send the cart to the payment endpoint and return the order id.\n"
        "  const res = await api.post(`/checkout/${cartId}`);\n"
        "  return res.orderId;\n"
        "}\n"
    ),
    "docs/payments.md": (
        "# Payments\n"
        "\n"
        "## Refunds\n"
        "\n"
        "A refund returns the full payment to the card it came from.\n"
    ),
}

# (path, start_line, end_line, symbol, language): what the chunker would have cut.
CHUNKS: list[tuple[str, int, int, str, str]] = [
    ("src/shop/cart.py", 6, 10, "Cart", "python"),
    ("src/shop/cart.py", 12, 14, "Cart.add_item", "python"),
    ("src/shop/cart.py", 16, 18, "Cart.total_price", "python"),
    ("src/shop/cart.py", 21, 22, "empty_cart", "python"),
    ("src/shop/payment.py", 4, 8, "charge_card", "python"),
    ("src/shop/payment.py", 11, 13, "refund_payment", "python"),
    ("web/checkout.ts", 3, 7, "submitCheckout", "typescript"),
    ("docs/payments.md", 3, 5, "Payments > Refunds", "markdown"),
]

MODEL = "all-MiniLM-L6-v2@1f0c3b9e2a7d4c5b"
UPDATED = "2026-01-15T14:02:00.000000Z"


def words(text: str) -> list[str]:
    """Lower-case words, camelCase and snake_case split."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    return [w.lower() for w in re.findall(r"[A-Za-z0-9]+", spaced)]


def snippet(path: str, start: int, end: int) -> str:
    return "\n".join(CORPUS[path].splitlines()[start - 1: end])


def job_row(job_id: str, state: str, done: int, total: int | None, *, error: str | None = None,
            rate: float | None = None, eta_s: float | None = None) -> dict[str, Any]:
    """A job of kind ``index`` for the project ``webshop``, as the engine's job service shows it (``Job``)."""
    finished = "2026-01-15T14:20:00.000000Z" if state in ("done", "failed", "cancelled", "interrupted") else None
    return {
        "id": job_id, "kind": "index", "tenant": "acme", "project": "webshop", "state": state,
        "created_by": "alice", "created_at": "2026-01-15T14:10:00.000000Z",
        "started_at": None if state == "queued" else "2026-01-15T14:10:00.000000Z", "finished_at": finished,
        "updated_at": "2026-01-15T14:10:00.000000Z",
        "progress": {"done": done, "total": total, "unit": "files", "rate": rate, "eta_s": eta_s},
        "error": error, "params": {"force": False}, "checkpoint": None, "checkpoint_at": None, "result": None,
        "attempts": 0 if state == "queued" else 1, "cancelled_by": None,
    }


def not_indexed(project: str) -> MusubiError:
    """The engine's refusal of a search before the first index, as the client rebuilds it (400, exit 1)."""
    return from_dict({"code": "not_indexed",
                      "message": f"project {project!r} is not indexed yet; index it with: musubi index"}, 400)


class FakeSearch:
    """State and answers of the fake code-search routes (one per fake engine)."""

    def __init__(self) -> None:
        self.project: str | None = "webshop"
        self.root: Path | None = None
        self.state = "ready"
        self.dense_coverage = 1.0
        self.job: dict[str, Any] | None = None
        self.searches: list[dict[str, Any]] = []  # every search body, in the order sent
        self.index_calls: list[dict[str, Any]] = []
        self.gates: dict[str, asyncio.Event] = {}  # query -> its answer waits until the event is set
        self.fail: MusubiError | Exception | None = None  # raised by every code-search call while set
        self.jobs = 0

    def write(self, root: Path) -> Path:
        """Write the corpus under ``root`` and make it the project root the status names."""
        for rel, text in CORPUS.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
        self.root = root
        return root

    def status(self) -> dict[str, Any]:
        indexed = self.state != "none"
        dense = round(len(CHUNKS) * self.dense_coverage) if indexed else 0
        return {
            "project": self.project, "root": str(self.root) if self.root and self.project else None,
            "state": self.state if self.project else "none",
            "files": len(CORPUS) if indexed else 0, "chunks": len(CHUNKS) if indexed else 0,
            "dense_chunks": dense, "dense_coverage": self.dense_coverage if indexed else 0.0,
            "model": MODEL if indexed else None, "updated_at": UPDATED if indexed else None,
            "job": copy.deepcopy(self.job),
        }

    def results(self, query: str, k: int, glob: str | None, lang: str | None) -> list[dict[str, Any]]:
        q = set(words(query))
        out: list[dict[str, Any]] = []
        for path, start, end, symbol, language in CHUNKS:
            if glob and not fnmatch.fnmatch(path, glob):
                continue
            if lang and language != lang:
                continue
            text = snippet(path, start, end)
            found = q & set(words(f"{path} {symbol} {text}"))
            if found:
                out.append({"path": path, "start_line": start, "end_line": end, "symbol": symbol, "language": language,
                            "score": round(len(found) / len(q), 4), "snippet": text})
        out.sort(key=lambda r: (-r["score"], r["path"], r["start_line"]))
        return out[:k]

    async def answer(self, method: str, path: str, body: dict[str, Any] | None, project: str | None = None,
                     registered: dict[str, str] | None = None) -> Any:
        """``project``: the one the request names (else :attr:`project`); ``registered``: name -> root."""
        if self.fail is not None:
            raise self.fail
        if project is not None and project != self.project and project in (registered or {}):
            return self._never_indexed(method, path, body or {}, project, (registered or {})[project])
        if self.project is None:  # as the engine: every code-search route, the status too (resource "project")
            raise NotFound("no project: run inside a registered project of tenant 'acme', pass one with --project, "
                           "or register it with: musubi project add PATH", resource="project")
        if path == "/v1/index/status" and method == "GET":
            return self.status()
        if path == "/v1/search" and method == "POST":
            return await self._search(body or {})
        if path == "/v1/index" and method == "POST":
            self.index_calls.append(dict(body or {}))
            self.jobs += 1
            self.job = job_row(f"job-{self.jobs}", "queued", 0, None)
            self.state = "indexing"
            return {"job": copy.deepcopy(self.job)}
        raise NotFound(f"fake engine has no route {method} {path}")

    def _never_indexed(self, method: str, path: str, body: dict[str, Any], project: str, root: str) -> Any:
        """A registered project with no index: its status says ``none``; a valid search is ``not_indexed``."""
        if path == "/v1/index/status" and method == "GET":
            return {"project": project, "root": root, "state": "none", "files": 0, "chunks": 0, "dense_chunks": 0,
                    "dense_coverage": 0.0, "model": None, "updated_at": None, "job": None}
        if path == "/v1/search" and method == "POST":
            m.parse(m.SearchQuery, body)  # bad input is refused first, as by the engine's request model
            raise not_indexed(project)
        raise NotFound(f"fake engine has no route {method} {path} for a project without an index")

    async def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        self.searches.append(dict(body))
        query = str(body.get("query", ""))
        gate = self.gates.get(query)
        if gate is not None:
            await gate.wait()
        if self.state == "none":
            raise not_indexed(str(self.project))
        results = self.results(query, int(body.get("k", 10)), body.get("path"), body.get("lang"))
        return {"query": query, "results": results, "dense_coverage": self.dense_coverage,
                "complete": self.dense_coverage >= 1.0, "took_ms": 3.0}
