"""The estimator fixes of issue 14, each with its reproduction."""

from __future__ import annotations

import codecs
import os
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.errors import EXIT_USAGE
from core.models import report
from core.models.estimate import (
    SHARED_PREAMBLE,
    Document,
    Step,
    estimate,
    messages,
    single_step,
    workflow,
)
from core.models.files import CachedCounter, read_files
from core.models.pricing import request_cost, to_micros
from core.models.registry import load_registry
from core.models.tokens import CountCache, content_kind, count_exact
from tests.cli.helpers import Cli

TODAY = date(2026, 12, 6)
REG = load_registry()
FIXTURES = Path(__file__).with_name("fixtures")


# 1. Chunks below the long-context premium threshold -----------------------------------------


def test_large_inputs_are_chunked_below_the_premium_threshold_when_cheaper() -> None:
    m = REG.get("gpt-5.4")  # 1.05M window, every token at 2x input above 272k prompt tokens
    assert m.long_context is not None
    big = Document("huge.txt", "", 0)
    n = 1_500_000

    def counter(doc: Document, enc: str) -> int:
        return n

    r = estimate(REG, [m], [big], single_step("summarise"), counter=counter, today=TODAY)["models"][0]
    step = r["steps"][0]
    assert not step["fits"] and "below the 272,000-token long-context threshold" in step["chunking"]
    assert r["chunking"] == step["chunking"]
    per_chunk = step["input_tokens"]["high"] / step["chunks"]
    assert per_chunk <= m.long_context.threshold
    # What the old estimate did: fill each chunk to the window, so every chunk paid the premium.
    tmpl_over = step["input_tokens"]["expected"] // step["chunks"] - n // step["chunks"]
    old_chunks = 2
    old_prompt = n // old_chunks + tmpl_over
    old_out = 4000  # the summarise cap
    old = to_micros(old_chunks * request_cost(m, old_prompt, 0, old_out))
    assert old_prompt > m.long_context.threshold
    assert r["cost_micros"]["expected"] < old * Decimal("0.6")  # about half: the premium was ~2x


def test_chunking_stays_at_the_window_when_that_is_cheaper() -> None:
    # A model without a long-context tier keeps full-window chunks (nothing to save).
    m = REG.get("claude-sonnet-5-5")
    r = estimate(REG, [m], [Document("huge.txt", "", 0)], single_step("summarise"),
                 counter=lambda d, e: 900_000, today=TODAY)["models"][0]
    assert "chunking" not in r and r["max_chunks"] >= 2


# 2. Every file skipped: exit 2, naming each ----------------------------------------------------


def test_all_files_skipped_is_a_usage_error_naming_each(cli: Cli, tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\x01\x02binary")
    blob2 = tmp_path / "img.png"
    blob2.write_bytes(b"\x89PNG\x00\x00")
    r = cli("cost", "estimate", "--model", "gpt-6.1-sol", "--file", str(blob), "--file", str(blob2), "--task", "review")
    assert r.rc == EXIT_USAGE, r.out
    assert "blob.bin: binary file" in r.err and "img.png: binary file" in r.err and "prompts only" not in r.out
    j = cli("cost", "estimate", "--model", "gpt-6.1-sol", "--file", str(blob), "--json")
    err = j.json()["error"]
    assert err["code"] == "no_countable_files" and [s["name"] for s in err["skipped"]] == [str(blob)]


# 3. The count cache cannot return a stale count --------------------------------------------


def test_count_cache_sees_a_same_size_rewrite_with_a_restored_mtime(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_text("alpha beta gamma delta\n")
    st = os.stat(p)
    cache = CountCache()
    fs = read_files([str(p)])
    first = CachedCounter(cache, fs.keys)(fs.docs[0], "o200k_base")
    # rsync -t / cp -p / tar: same size, mtime put back.
    p.write_text("a b c d e f g h i j kk\n")
    assert os.path.getsize(p) == st.st_size
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(p).st_mtime_ns == st.st_mtime_ns
    fs2 = read_files([str(p)])
    second = CachedCounter(cache, fs2.keys)(fs2.docs[0], "o200k_base")
    assert first == count_exact("alpha beta gamma delta\n")
    assert second == count_exact("a b c d e f g h i j kk\n") != first
    # Unchanged content is still a hit.
    fs3 = read_files([str(p)])
    hits = cache.hits
    CachedCounter(cache, fs3.keys)(fs3.docs[0], "o200k_base")
    assert cache.hits == hits + 1


# 4. A model too small for the run keeps the other rows ------------------------------------


def test_a_too_small_model_shows_does_not_fit_and_keeps_the_others() -> None:
    tiny = {"id": "tiny", "provider": "openai-compatible", "context_window": 600, "max_output": 500,
            "input_per_mtok": 0, "output_per_mtok": 0, "cached_input_per_mtok": 0, "tokenizer": "local",
            "tier": "basic", "prices_checked": "2026-12-01", "source": "test"}
    reg = load_registry({"models": [tiny]})
    e = estimate(reg, [reg.get("tiny"), reg.get("gpt-5.4")], [], list(workflow("full").steps), today=TODAY)
    rows = {m["model"]: m for m in e["models"]}
    assert "cannot hold even the" in rows["tiny"]["does_not_fit"] and rows["tiny"]["fits"] is False
    assert rows["gpt-5.4"]["fits"] and rows["gpt-5.4"]["cost_micros"]["expected"] > 0
    md = report.to_markdown(e)
    assert "| tiny * |" in md and "does not fit" in md and "| gpt-5.4 |" in md
    assert "does_not_fit" in report.to_csv(e).splitlines()[0]


def test_cli_renders_does_not_fit(capsys: pytest.CaptureFixture[str]) -> None:
    from tui.commands.cost import render

    tiny = {"id": "tiny", "provider": "openai-compatible", "context_window": 600, "max_output": 500,
            "input_per_mtok": 0, "output_per_mtok": 0, "cached_input_per_mtok": 0, "tokenizer": "local",
            "tier": "basic", "prices_checked": "2026-12-01", "source": "test"}
    reg = load_registry({"models": [tiny]})
    e = estimate(reg, [reg.get("tiny"), reg.get("gpt-5.4")], [], list(workflow("full").steps), today=TODAY)
    e.update({"workflow": "full", "skipped": []})
    render(e)
    out = capsys.readouterr().out
    assert "does not fit" in out and "gpt-5.4" in out and "tiny does not fit: its context window" in out


# 5. Prompt layout: the shared part is the prefix; the assumption is stated ----------------


def test_steps_after_the_first_cache_the_shared_prefix_not_their_own_template() -> None:
    text = "def f(x):\n    return x * 2\n" * 400
    m = REG.get("gpt-5.4")
    e = estimate(REG, [m], [Document("a.py", text)], list(workflow("implement").steps), today=TODAY)
    steps = e["models"][0]["steps"]
    shared = count_exact(text) + count_exact(SHARED_PREAMBLE)
    assert steps[0]["cached_input_tokens"]["expected"] == 0
    for s in steps[1:]:
        # Exactly the prefix (preamble + files) is cached; the step's own instructions are not.
        assert s["cached_input_tokens"]["expected"] == shared
        assert s["input_tokens"]["expected"] - s["cached_input_tokens"]["expected"] >= s["prompt_tokens"]
    assert any("prompt layout" in a for a in e["assumptions"]) and any("cache" in a for a in e["assumptions"])
    msgs = messages(Step("review", "Review it."), text)
    assert [x["content"] for x in msgs] == [SHARED_PREAMBLE, text, "Review it."]
    no_cache = estimate(REG, [m], [Document("a.py", text)], list(workflow("implement").steps), cache=False, today=TODAY)
    assert len(no_cache["assumptions"]) == 1  # no cache assumption when pricing without one


# 6. UTF-16/32 text files are counted -------------------------------------------------------


@pytest.mark.parametrize("enc", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_bom_marked_text_files_are_counted(tmp_path: Path, enc: str) -> None:
    text = "Hello, wide world.\nこんにちは\n"
    p = tmp_path / "notes.txt"
    data = text.encode(enc)
    if enc == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    p.write_bytes(data)
    assert b"\x00" in data[:64] or enc == "utf-8-sig"
    fs = read_files([str(p)])
    assert fs.skipped == [] and fs.docs[0].text == text


def test_a_nul_byte_without_a_bom_is_still_binary(tmp_path: Path) -> None:
    p = tmp_path / "x.bin"
    p.write_bytes(b"abc\x00def")
    assert read_files([str(p)]).skipped == [{"name": str(p), "reason": "binary file"}]


# 7. Prose and CJK by content -----------------------------------------------------------------


def test_markdown_is_classified_by_content() -> None:
    # Reproduction: both were "code" (Markdown punctuation counted as code symbols).
    assert content_kind((FIXTURES / "setup_ja.md").read_text(), "setup_ja.md") == "cjk"
    assert content_kind((FIXTURES / "setup_en.md").read_text(), "setup_en.md") == "prose"
    fenced = "Intro line.\n```python\n" + "x = compute(1)\n" * 20 + "```\n"
    assert content_kind(fenced, "snippet.md") == "code"
    assert content_kind("x = 1\n", "a.py") == "code"
    # The band follows the kind: the Japanese doc gets the CJK ratio.
    e = estimate(REG, [REG.get("claude-sonnet-5-5")], [Document("setup_ja.md", (FIXTURES / "setup_ja.md").read_text())],
                 single_step("summarise"), today=TODAY)
    assert e["files"][0]["tokens"]["anthropic-2026"]["kind"] == "cjk"


# 8. models show formats numbers like models list and long_context readably ---------------


def test_models_show_and_list_format(cli: Cli) -> None:
    show = cli.ok("models", "show", "gpt-6.1-sol").out
    assert "2.0" not in show.replace("2.00", "") and " 2 " in show.replace("│", " ")
    assert "above 272,000 prompt tokens: in 4 / cached 0.2 / out 15 $/M" in show
    assert "{" not in show  # no raw JSON
    assert "922,000" in show and "active" in show
    lst = cli.ok("models", "list").out
    assert "● active" in lst and "○ legacy" in lst and "✕ retired" not in lst
    assert "azure/gpt-4.1 " not in lst
    every = cli.ok("models", "list", "--all").out
    assert "✕ retired" in every and "azure/gpt-4.1" in every
    j = cli.ok("models", "list", "--stale", "30", "--json").json()
    cutoff = date.fromisoformat(j["today"]) - timedelta(days=30)
    assert j["models"] and all(date.fromisoformat(m["prices_checked"]) < cutoff for m in j["models"])
    assert "gpt-5.4" in {m["id"] for m in j["models"]}  # checked 2026-05-04
    assert "prices not checked since" in cli.ok("models", "list", "--stale", "30").out
    retired = cli("cost", "estimate", "--model", "gemini-2.5-pro", "--workflow", "spec")
    assert retired.rc == EXIT_USAGE and "Use gemini-3.8-flash instead" in retired.err
    old = cli.ok("cost", "estimate", "--model", "claude-sonnet-5", "--workflow", "spec")
    assert "claude-sonnet-5 is legacy; use claude-sonnet-5-5 instead." in old.err
