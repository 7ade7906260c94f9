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


# -- builds from the token cache equal bm25s's own build (issue 11: one-file re-index speed) --------

CORPUS = {
    100 + i: text for i, text in enumerate([
        "def parse_config(path):\n    # read the config file and parse it\n    return load(path)",
        "def load(path):\n    with open(path) as f:\n        return json.loads(f.read())",
        "class ConfigError(Exception):\n    '''Raised when the config is invalid.'''",
        "def write_config(path, data):\n    # write the config back\n    dump(data, path)",
        "def retry(fn, count=3):\n    for _ in range(count):\n        try: return fn()\n        except Exception: pass",
        "def parse_http_response(raw):\n    headers, body = raw.split(b'\\r\\n\\r\\n', 1)\n    return Response(body)",
        "# 設定ファイルを読む\ndef 読む(パス):\n    return 設定[パス]",
        "def empty():\n    pass",
        "the of and to",  # no terms at all
        "def matrix_determinant(m):\n    # determinant of a square matrix by LU\n    return lu(m).det()",
    ])
}
QUERIES = ["parse config", "load json file", "ConfigError", "write config data", "retry count",
           "http response headers", "設定ファイル", "matrix determinant", "config", "path"]


def _reference(ids: list[int], texts: list[str]) -> dict[str, list[tuple[int, float]]]:
    """Top-k per query from a plain ``bm25s.BM25().index`` over the same tokens (what build did before)."""
    import bm25s
    import numpy as np

    bm25 = bm25s.BM25()
    bm25.index([code_tokens(t) for t in texts], show_progress=False)
    out: dict[str, list[tuple[int, float]]] = {}
    for q in QUERIES:
        tids = list(dict.fromkeys(bm25.vocab_dict[t] for t in code_tokens(q) if t in bm25.vocab_dict and t))
        if not tids:
            out[q] = []
            continue
        scores = np.asarray(bm25.get_scores_from_ids(tids), dtype=np.float64)
        hits = sorted(np.flatnonzero(scores > 0).tolist(), key=lambda i: (-scores[i], ids[i]))[:5]
        out[q] = [(ids[i], float(scores[i])) for i in hits]
    return out


def _top(ix: LexicalIndex) -> dict[str, list[tuple[int, float]]]:
    return {q: ix.search(q, 5) for q in QUERIES}


def test_build_equals_plain_bm25s() -> None:
    ids, texts = list(CORPUS), list(CORPUS.values())
    got, want = _top(LexicalIndex.build(ids, texts)), _reference(ids, texts)
    assert any(want.values())
    assert got == want  # same ids, same order, same float32 scores


def test_rebuild_after_edit_with_warm_cache_equals_fresh_build(tmp_path: Path) -> None:
    from core.rag.lexical import TokenCache

    cache = TokenCache()
    ids, texts = list(CORPUS), list(CORPUS.values())
    before = LexicalIndex.build(ids, texts, cache)
    assert cache.tokenised == len(texts)
    # One file edited (chunk 101 replaced by a new id and text), one deleted (104), one added.
    edited = dict(CORPUS)
    del edited[101], edited[104]
    edited[200] = "def load(path):\n    # load the yaml config\n    return yaml.safe_load(open(path))"
    edited[201] = "def determinant_of_config():\n    return 0"
    e_ids, e_texts = list(edited), list(edited.values())
    after = LexicalIndex.build(e_ids, e_texts, cache)
    assert cache.tokenised == 2  # only the new texts
    assert len(cache.docs) == len(set(e_texts))  # the deleted texts left the cache
    fresh = LexicalIndex.build(e_ids, e_texts)
    assert _top(after) == _top(fresh) == _reference(e_ids, e_texts)
    assert _top(after) != _top(before)  # the edit changed answers (e.g. "retry count" is gone)
    assert after.search("yaml config", 1)[0][0] == 200
    # And what the warm build saves loads back with the same answers.
    after.save(tmp_path / "lex")
    assert _top(LexicalIndex.load(tmp_path / "lex")) == _top(fresh)


def test_cache_ignores_text_identity_across_ids() -> None:
    from core.rag.lexical import TokenCache

    cache = TokenCache()
    a = LexicalIndex.build([1, 2], ["alpha beta", "alpha beta"], cache)
    assert cache.tokenised == 1  # the same text twice is tokenised once
    b = LexicalIndex.build([3, 1, 2], ["gamma alpha", "alpha beta", "alpha beta"], cache)
    assert cache.tokenised == 1
    assert [i for i, _ in a.search("alpha", 5)] == [1, 2]
    assert [i for i, _ in b.search("alpha", 5)] == [1, 2, 3]
    assert b.search("gamma", 5)[0][0] == 3


def test_token_cache_save_load_round_trip(tmp_path: Path) -> None:
    from core.rag.lexical import TokenCache

    cache = TokenCache()
    ids, texts = list(CORPUS), list(CORPUS.values())
    LexicalIndex.build(ids, texts, cache)
    cache.save(tmp_path / "tokens.npz")
    loaded = TokenCache.load(tmp_path / "tokens.npz")
    assert loaded.terms == cache.terms and set(loaded.docs) == set(cache.docs)
    ix = LexicalIndex.build(ids, texts, loaded)
    assert loaded.tokenised == 0  # every text came from the file
    assert _top(ix) == _reference(ids, texts)


def test_token_cache_load_refuses_torn_or_foreign_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.rag import lexical
    from core.rag.lexical import TokenCache

    cache = TokenCache()
    LexicalIndex.build(list(CORPUS), list(CORPUS.values()), cache)
    f = tmp_path / "tokens.npz"
    assert TokenCache.load(f).docs == {}  # missing
    cache.save(f)
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])  # torn
    assert TokenCache.load(f).docs == {}
    f.write_bytes(b"not a numpy file")
    assert TokenCache.load(f).docs == {}
    cache.save(f)
    monkeypatch.setattr(lexical, "TOKENIZER_VERSION", lexical.TOKENIZER_VERSION + 1)  # other tokens: not used
    assert TokenCache.load(f).docs == {}
    monkeypatch.undo()
    TokenCache().save(f)  # an empty cache round-trips
    assert TokenCache.load(f).docs == {}


def _rows(docs: dict[int, str]) -> list[tuple[object, ...]]:
    return [(cid, f"src/m{cid}.py", 1, 3, "python", "function", f"f{cid}", "", 0, text) for cid, text in docs.items()]


def test_lex_build_after_a_helper_restart_reads_the_saved_tokens(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from core.rag import prep

    folder = str(tmp_path / "lexical")
    monkeypatch.setattr(prep, "TOKENS_SAVE_MIN", 5)
    prep.lex_build(folder, _rows(CORPUS))  # a big build (all 10 texts new): saves its tokens
    assert (tmp_path / "lexical" / prep.TOKENS_FILE).is_file()
    prep._TOKENS.clear()  # as in a new helper process
    prep._LOADED.clear()
    edited = dict(CORPUS)
    edited[300] = "def yaml_config():\n    return load_yaml()"
    prep.lex_build(folder, _rows(edited))
    assert prep._TOKENS[folder].tokenised == 1  # only the new chunk was tokenised
    got = prep.lex_search(folder, "yaml config", 3, None, None)
    assert got is not None and got[0][0] == 300
    rows = prep.lex_rows(folder, [300, 100, 104], None, None)
    assert rows[300] == ("src/m300.py", 1, 3, "f300", "python", edited[300])
    assert rows[100][0] == "src/m100.py" and set(rows) == {300, 100, 104}
    mtime = (tmp_path / "lexical" / prep.TOKENS_FILE).stat().st_mtime_ns
    prep.lex_build(folder, _rows(CORPUS))  # a small build does not rewrite the file
    assert (tmp_path / "lexical" / prep.TOKENS_FILE).stat().st_mtime_ns == mtime
    assert prep.lex_rows(folder, [300], None, None) == {}  # the deleted chunk left the metadata
    prep.lex_forget(folder)
    assert folder not in prep._TOKENS


def _hits(folder: str, queries: list[str]) -> list[list[tuple[int, float]] | None]:
    from core.rag import prep

    return [prep.lex_search(folder, q, 20, None, None) for q in queries]


QUERIES = ["parse response", "yaml config", "retry count", "検索 索引", "determinant", "http server"]


def test_lex_update_equals_a_full_build_and_survives_a_helper_restart(tmp_path: Path) -> None:
    from array import array

    from core.rag import prep

    inc, full = str(tmp_path / "inc"), str(tmp_path / "full")
    base = dict(CORPUS)
    prep.lex_build(inc, _rows(base), 1000)
    # One file edited: chunk 101 replaced (new id, new text), 104 deleted, 1001 added.
    edited = dict(base)
    del edited[101], edited[104]
    edited[1000] = "def load(path):\n    # load the yaml config\n    return yaml.safe_load(open(path))"
    edited[1001] = "def determinant_of_config():\n    return 0"
    live = array("q", edited).tobytes()
    new_rows = _rows({k: edited[k] for k in (1000, 1001)})
    assert prep.lex_update(inc, 999, live, new_rows, 1002) is None  # not the state it is based on: refused
    assert prep.lex_update(inc, 1000, live, new_rows[:1], 1002) is None  # the ids do not add up: refused
    assert prep.lex_state(inc) == {"gen": 1, "chunks": len(base), "mark": 1000}  # a refusal changed nothing
    got = prep.lex_update(inc, 1000, live, new_rows, 1002)
    assert got is not None and (got["added"], got["removed"]) == (2, 2) and got["chunks"] == len(edited)
    assert prep._TOKENS[inc].tokenised == 2  # only the new chunks were tokenised
    prep.lex_build(full, _rows(edited), 1002)
    assert _hits(inc, QUERIES) == _hits(full, QUERIES)
    assert prep.lex_rows(inc, list(edited), None, None) == prep.lex_rows(full, list(edited), None, None)
    assert prep.lex_search(inc, "yaml", 3, None, None, expect=1000) is None  # a stale mark is refused
    # Written later (lex_persist); a new helper reads that generation and applies the next update from its counts.
    assert prep.lex_persist(inc) and not prep.lex_persist(inc)
    for f in (inc, full):
        prep.lex_forget(f)
    prep._LOADED.clear()
    assert prep.lex_state(inc) == {"gen": 2, "chunks": len(edited), "mark": 1002}
    assert _hits(inc, QUERIES) == _hits(full, QUERIES)
    del edited[1001]
    edited[1002] = "def retry_count_limit():\n    return MAX_RETRY_COUNT"
    assert prep.lex_update(inc, 1002, array("q", edited).tobytes(), _rows({1002: edited[1002]}), 1003)
    prep.lex_build(full, _rows(edited), 1003)
    assert _hits(inc, QUERIES) == _hits(full, QUERIES)
    for f in (inc, full):
        prep.lex_forget(f)


def test_lex_update_without_usable_counts_is_refused(tmp_path: Path) -> None:
    from array import array

    from core.rag import prep

    folder = str(tmp_path / "lex")
    prep.lex_build(folder, _rows(CORPUS), 1000)
    prep.lex_forget(folder)
    prep._LOADED.clear()
    (tmp_path / "lex" / "docs-1.npz").write_bytes(b"torn")
    live = array("q", [*CORPUS, 1000]).tobytes()
    assert prep.lex_update(folder, 1000, live, _rows({1000: "def new(): pass"}), 1001) is None
    prep.lex_build(folder, _rows(CORPUS), None)  # an index of unknown mark (an older version's) is never updated
    assert prep.lex_update(folder, 1000, live, _rows({1000: "def new(): pass"}), 1001) is None
    prep.lex_forget(folder)
    prep._LOADED.clear()
