"""Line windows for other files, the chunk hash, the token estimate and decoding files."""

from __future__ import annotations

import codecs
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.rag.chunk_core import estimate_tokens
from core.rag.chunking import chunk_file, decode_bytes, read_text
from tests.rag.helpers import check_text, real_tokenizer, rows


def test_small_yaml_is_one_window() -> None:
    src = "a: 1\nb:\n  - x\n"
    assert rows(chunk_file("conf.yml", src)) == [("window", "", 1, 3, "", 0)]
    assert chunk_file("conf.yml", src)[0].language == "yaml"


def test_long_text_is_cut_at_blank_lines_into_windows_that_fit() -> None:
    blocks = [
        "\n".join(f"key_{b}_{i}: some value number {i} for block {b}" for i in range(6))
        for b in range(40)
    ]
    src = "\n\n".join(blocks) + "\n"
    chunks = chunk_file("big.toml", src)
    check_text(chunks, src)
    lines = src.split("\n")
    assert len(chunks) >= 3 and all(c.kind == "window" and c.part == 0 for c in chunks)
    assert all(lines[c.end_line].strip() == "" for c in chunks[:-1])  # each cut at a blank line
    assert all(estimate_tokens(c.text) <= 254 for c in chunks)
    covered = {i for c in chunks for i in range(c.start_line, c.end_line + 1)}
    assert all(i in covered for i, line in enumerate(lines, 1) if line.strip())


def test_unknown_language_and_a_missing_grammar_fall_back_to_windows() -> None:
    assert rows(chunk_file("x.weird", "a\nb\n")) == [("window", "", 1, 2, "", 0)]
    assert rows(chunk_file("x.kt", "fun f() {}\n", language="kotlin")) == [
        ("window", "", 1, 1, "", 0)
    ]


def test_hash_ignores_the_path_and_changes_with_the_text() -> None:
    src = "def f(x):\n    return x + 1\n"
    a = chunk_file("a/one.py", src)[0]
    b = chunk_file("elsewhere/two.py", "\n\n" + src)[0]  # moved file, moved lines
    assert (a.path, a.start_line) != (b.path, b.start_line)
    assert a.hash == b.hash and len(a.hash) == 64
    assert chunk_file("a/one.py", src.replace("1", "2"))[0].hash != a.hash
    assert chunk_file("a/one.py", src, language="text")[0].hash != a.hash  # language is part of it


def test_estimate_tracks_the_real_tokenizer_on_real_code() -> None:
    import inspect
    import json.decoder

    tok = real_tokenizer()
    chunks = chunk_file("decoder.py", inspect.getsource(json.decoder))
    real = sum(len(tok.encode(c.text, add_special_tokens=False).ids) for c in chunks)
    est = sum(estimate_tokens(c.text) for c in chunks)
    assert 0.8 <= real / est <= 1.1, (real, est)


def test_decoding_never_raises_and_follows_the_documented_rule(tmp_path: Path) -> None:
    text = "名前 = 'ü'\n"
    assert decode_bytes(text.encode("utf-8")) == text
    assert decode_bytes(codecs.BOM_UTF8 + text.encode("utf-8")) == text
    assert decode_bytes(text.encode("utf-16")) == text  # BOM included by Python
    assert decode_bytes(codecs.BOM_UTF16_BE + text.encode("utf-16-be")) == text
    assert decode_bytes(b"abc\x00def") is None  # binary
    mostly = ("x = 1\n" * 400).encode() + b"caf\xe9\n"  # one stray Latin-1 byte in a UTF-8 file
    assert decode_bytes(mostly) == ("x = 1\n" * 400) + "caf\ufffd\n"
    legacy = "façade élève\n".encode("latin-1")
    assert decode_bytes(legacy) == "façade élève\n"
    p = tmp_path / "f.py"
    p.write_bytes(b"\xff\xfe\x00")  # UTF-16 BOM and a dangling byte
    assert read_text(p) == "\ufffd"
    assert read_text(tmp_path / "missing.py") is None
    assert read_text(tmp_path) is None  # a directory


def test_importing_the_chunker_and_the_walk_stays_light() -> None:
    import json
    import subprocess
    import sys

    code = (
        "import sys, json, core.rag, core.rag.chunks, core.rag.walk, core.rag.chunking, core.rag.chunk_treesitter\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    loaded = {m.split(".")[0] for m in json.loads(out.stdout.strip().splitlines()[-1])}
    assert not loaded & {
        "numpy",
        "torch",
        "sentence_transformers",
        "faiss",
        "bm25s",
        "Stemmer",
        "tree_sitter",
    }


_PIECES = ["def f(x):", "    return x", "class A:", "  ", "", "# T", "## U", "```", "}", "function g() {", "@d",
           "\tpass", "x = '''", "é日本", "\r", "---", "impl X {", "fn y() {}", "end", "\x00"]  # fmt: skip


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=12)), max_size=40),
    path=st.sampled_from(["a.py", "a.md", "a.ts", "a.go", "a.rs", "a.rb", "a.c", "a.yml"]),
)
def test_any_text_chunks_into_valid_non_overlapping_ranges(lines: list[str], path: str) -> None:
    src = "\n".join(lines)
    chunks = chunk_file(path, src, max_tokens=40)
    norm = src.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    spans = sorted((c.start_line, c.end_line) for c in chunks)
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
    for c in chunks:
        assert 1 <= c.start_line <= c.end_line <= len(norm)
        assert c.text == "\n".join(norm[c.start_line - 1 : c.end_line])
        assert c.text.strip()
