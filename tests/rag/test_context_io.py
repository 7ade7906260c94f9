"""Context packs over real files and models: current lines, unreadable paths, tokenizers; the estimate's packs."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from core.api.models import CostEstimate, parse
from core.errors import BadRequest
from core.models.estimate import Document, estimate, single_step
from core.models.registry import load_registry
from core.models.tokens import count_exact, count_tokens
from core.rag.context_io import counter_for, pack_from_files, read_lines

REG = load_registry()
TODAY = date(2026, 6, 1)


def hit(path: str, start: int, end: int, score: float) -> dict[str, object]:
    return {"path": path, "start_line": start, "end_line": end, "score": score, "symbol": "", "language": "python",
            "snippet": "SNIPPET (never packed)"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("import os\r\n\r\ndef f():\r\n    return 1\r\n")  # CRLF: lines as the chunker
    (tmp_path / "secret.py").write_text("TOKEN = 'x'\n")
    os.symlink(tmp_path / "secret.py", root / "src" / "leak.py")
    return root


def test_lines_come_from_the_files_as_they_are_now_and_never_from_outside(project: Path) -> None:
    assert read_lines(project, ["src/a.py", "src/leak.py", "../secret.py", "gone.py"]) == {
        "src/a.py": ["import os", "", "def f():", "    return 1"]}
    p = pack_from_files(project, [hit("src/a.py", 3, 4, 0.9), hit("src/leak.py", 1, 1, 0.8),
                                  hit("../secret.py", 1, 1, 0.7), hit("src/a.py", 3, 9, 0.6)],
                        budget=1000, model="m", count=lambda t: len(t.split()))
    assert p.text == "File src/a.py lines 3-4\n```python\ndef f():\n    return 1\n```\n\n"
    assert [(o.path, o.reason) for o in p.omitted] == [("src/leak.py", "unavailable"), ("../secret.py", "unavailable"),
                                                       ("src/a.py", "unavailable")]  # 3-9: the file has 4 lines now


def test_counter_for_is_exact_for_openai_models_and_the_estimate_elsewhere() -> None:
    text = "def f(x):\n    return x * 2  # 日本語\n"
    assert counter_for(REG.get("gpt-5.4"))(text) == count_exact(text, "o200k_base")
    opus = REG.get("opus")
    assert counter_for(opus)(text) == count_tokens(text, opus.tokenizer).tokens != count_exact(text, "o200k_base")


def test_estimate_takes_retrieval_tokens_per_model() -> None:
    a, b = REG.get("gpt-5.4"), REG.get("opus")
    doc = [Document("n.md", "hello world\n")]
    per = estimate(REG, [a, b], doc, single_step("summarise"), retrieval_tokens={a.id: 100, b.id: 250}, today=TODAY)
    flat = estimate(REG, [a, b], doc, single_step("summarise"), today=TODAY)
    assert per["retrieval_tokens"] == 250
    grew = [m["input_tokens"]["expected"] - f["input_tokens"]["expected"] for m, f in zip(per["models"], flat["models"],
                                                                                          strict=True)]
    assert grew == [100, 250]
    with pytest.raises(BadRequest, match="retrieval_tokens must be >= 0"):
        estimate(REG, [a], doc, single_step("summarise"), retrieval_tokens={a.id: -1}, today=TODAY)


@pytest.mark.parametrize(("body", "message"), [
    ({"retrieval_task": "add retries"}, "retrieval_task needs retrieval_budget"),
    ({"retrieval_budget": 100}, "retrieval_budget needs retrieval_task"),
    ({"retrieval_task": "x", "retrieval_budget": 0}, "retrieval_budget 0 is out of range"),
    ({"retrieval_task": "x", "retrieval_budget": "10000001"}, "retrieval_budget '10000001' is out of range"),
    ({"retrieval_task": "x", "retrieval_budget": 10, "retrieval_tokens": 5}, "not both"),
])
def test_the_estimate_request_refuses_half_or_absurd_retrieval_packs(body: dict[str, object], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse(CostEstimate, {"models": ["gpt-5.4"], **body})
    ok = parse(CostEstimate, {"models": ["gpt-5.4"], "retrieval_task": "add retries", "retrieval_budget": "8_000"})
    assert (ok.retrieval_task, ok.retrieval_budget) == ("add retries", 8000)
