"""code_tokens and LexicalIndex: exact tokens, BM25 ranking, edge cases, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.rag.lexical import LexicalIndex, LexicalIndexCorrupt, code_tokens


@pytest.mark.parametrize(("text", "tokens"), [
    ("parseHTTPResponse", ["pars", "http", "respons", "parsehttpresponse"]),
    ("get_value", ["get", "valu", "getvalue"]),
    ("MAX_RETRY_COUNT", ["max", "retri", "count", "maxretrycount"]),
    ("sha256 utf8", ["sha", "256", "sha256", "utf", "8", "utf8"]),
    ("os.path.join", ["os", "path", "join"]),
    ("__init__", ["init"]),
    ("日本語の検索", ["日本", "本語", "語の", "の検", "検索"]),
    ("木", ["木"]),
    ("ファイルを開くopenFile", ["ファ", "ァイ", "イル", "ルを", "を開", "開く", "open", "file", "openfile"]),
    ("café Привет", ["café", "привет"]),
    ("e\u0301te\u0301", ["été"]),  # NFKC composes the accents
    ("ＭａｘＳｉｚｅ ﾃｽﾄ", ["max", "size", "maxsize", "テス", "スト"]),  # full-width ASCII, half-width kana
    ("\udcff\x00abc_def", ["abc", "def", "abcdef"]),  # a lone surrogate (undecodable byte) is skipped
    ("Return the value of x", ["return", "valu"]),
])
def test_code_tokens_exact(text: str, tokens: list[str]) -> None:
    assert code_tokens(text) == tokens


@pytest.mark.parametrize("text", ["", "the of and to", "!!! ... -> ==", "a b c", "   \n\t", "QUJD" * 40, "😀"])
def test_code_tokens_nothing_to_index(text: str) -> None:
    assert code_tokens(text) == []


DOCS = {
    7: "def parse(data):\n    # parse the http response, parse headers, parse the body\n    return parse_body(data)",
    11: "def parse_http_response(data):\n    return Response(data)",
    2**40: "class HTTPServer:\n    def serve_forever(self): ...",
    5: "def 検索する(クエリ):\n    # 日本語のコメント: 索引を引く\n    return 索引[クエリ]",
}


@pytest.fixture
def index() -> LexicalIndex:
    return LexicalIndex.build(list(DOCS), list(DOCS.values()))


def test_exact_identifier_ranks_first(index: LexicalIndex) -> None:
    # Chunk 7 says parse/http/response more often; the whole identifier makes 11 win.
    assert [i for i, _ in index.search("parse_http_response", 10)][:2] == [11, 7]
    assert index.search("HTTPServer", 1)[0][0] == 2**40  # int64 ids come back as they went in


def test_search_scores_best_first_and_k(index: LexicalIndex) -> None:
    hits = index.search("parse response", 10)
    assert [i for i, _ in hits] == [7, 11]
    assert hits[0][1] > hits[1][1] > 0
    assert index.search("parse response", 1) == hits[:1]
    assert index.search("parse response", 0) == []


@pytest.mark.parametrize("query", ["the of and", "?!", "", "zzzunknownword"])
def test_queries_without_known_terms_find_nothing(index: LexicalIndex, query: str) -> None:
    assert index.search(query, 10) == []


def test_japanese_query(index: LexicalIndex) -> None:
    assert index.search("検索の関数", 10)[0][0] == 5
    assert index.search("コメント", 10) == [(5, pytest.approx(index.search("コメント", 10)[0][1]))]


def test_equal_scores_order_by_id() -> None:
    ix = LexicalIndex.build([30, 10, 20], ["alpha beta", "alpha beta", "gamma"])
    assert [i for i, _ in ix.search("alpha", 10)] == [10, 30]


def test_empty_index() -> None:
    ix = LexicalIndex.build([], [])
    assert len(ix) == 0
    assert ix.search("anything", 10) == []


def test_chunk_without_tokens_is_indexed_but_never_found() -> None:
    ix = LexicalIndex.build([1, 2], ["...", "real words here"])
    assert len(ix) == 2
    assert [i for i, _ in ix.search("real", 10)] == [2]


@pytest.mark.parametrize(("ids", "texts", "message"), [
    ([1, 2], ["only one"], "2 ids for 1 texts"),
    ([1, 1], ["a b", "c d"], "ids repeat"),
])
def test_build_rejects_bad_input(ids: list[int], texts: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LexicalIndex.build(ids, texts)


def test_save_load_round_trip(index: LexicalIndex, tmp_path: Path) -> None:
    d = tmp_path / "lex"
    index.save(d)
    loaded = LexicalIndex.load(d)
    assert len(loaded) == len(index)
    for q in ("parse_http_response", "HTTPServer serve", "検索"):
        assert loaded.search(q, 10) == index.search(q, 10)
    # Saving again replaces the folder whole, leaving no temporary folders behind.
    LexicalIndex.build([99], ["replacement text"]).save(d)
    assert LexicalIndex.load(d).search("replacement", 5)[0][0] == 99
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lex"]


def test_save_load_empty(tmp_path: Path) -> None:
    LexicalIndex.build([], []).save(tmp_path / "e")
    assert LexicalIndex.load(tmp_path / "e").search("x", 3) == []


def test_load_missing_or_torn(index: LexicalIndex, tmp_path: Path) -> None:
    with pytest.raises(LexicalIndexCorrupt) as exc:
        LexicalIndex.load(tmp_path / "nothing")
    assert exc.value.extra["reason"] == "missing_manifest"
    assert "rebuild" in exc.value.message

    d = tmp_path / "lex"
    index.save(d)
    (d / "ids.npy").unlink()
    with pytest.raises(LexicalIndexCorrupt) as exc:
        LexicalIndex.load(d)
    assert exc.value.extra["reason"] == "unreadable"


def test_load_refuses_other_tokenizer_and_wrong_count(index: LexicalIndex, tmp_path: Path) -> None:
    d = tmp_path / "lex"
    index.save(d)
    manifest = json.loads((d / "manifest.json").read_text())
    (d / "manifest.json").write_text(json.dumps({**manifest, "tokenizer": 0}))
    with pytest.raises(LexicalIndexCorrupt) as exc:
        LexicalIndex.load(d)
    assert exc.value.extra["reason"] == "format"

    (d / "manifest.json").write_text(json.dumps({**manifest, "count": 3}))
    with pytest.raises(LexicalIndexCorrupt) as exc:
        LexicalIndex.load(d)
    assert exc.value.extra["reason"] == "count_mismatch"
