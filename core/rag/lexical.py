"""BM25 over code-aware tokens (heavy: imports bm25s, numpy and PyStemmer inside the functions that use them).

``code_tokens`` turns code or prose into the terms both the index and the queries use:

* identifiers are split at underscores and camelCase humps (``parseHTTPResponse`` -> parse, http,
  response; ``MAX_RETRY_COUNT`` -> max, retry, count), digits apart (``sha256`` -> sha, 256),
  lowercased, English stop words and one-letter words dropped, then Snowball-stemmed, so a query's
  "parses responses" meets the code's ``parse_response``;
* a compound identifier is also kept whole, lowercased and unstemmed (``parsehttpresponse``), so a
  query naming the exact identifier ranks it first;
* text is NFKC-normalised first (full-width ``ＡＢＣ`` is ``ABC``, half-width ``ﾃｽﾄ`` is ``テスト``);
  words longer than ``MAX_WORD`` characters (base64, hex dumps) are skipped;
* CJK text (Japanese kana and kanji, Chinese, Korean) has no spaces to split at: each run becomes its
  character bigrams (a one-character run stays one token), the usual dictionary-free way to index it.
  bm25s's own tokenizer would drop these characters; ours keeps them, so Japanese comments and
  identifiers are searchable.

``LexicalIndex`` maps int64 chunk ids to BM25 scores (bm25s, Lucene variant, k1 1.5, b 0.75).

A rebuild after a small change must not re-tokenise 100k unchanged chunks (tokenising is ~80 % of
a build), so ``LexicalIndex.build`` takes a :class:`TokenCache`: each text's term counts, keyed by a
digest of the text, kept between builds in the process that builds.  The index is still built whole
(BM25's idf and average length depend on every chunk): from the cached counts, the term and
document frequencies and the scores are computed in a few numpy passes with bm25s's own idf and
term-frequency formulas, into bm25s's score matrix, so the result is the one ``bm25s.BM25.index``
builds from the same tokens (tests/rag/test_lexical.py checks scores against it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import MusubiError

if TYPE_CHECKING:
    import numpy as np

#: Bumped when code_tokens changes: an index saved with other tokens must be rebuilt, not searched.
TOKENIZER_VERSION = 1
FORMAT = 1
#: Longer "words" are data (base64, hex dumps, minified code), not identifiers: they are skipped.
MAX_WORD = 64

#: CJK characters (a regex character-class body): kana, CJK ideographs, half-width katakana, Hangul.
CJK_CHARS = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\uac00-\ud7af"
_CJK = CJK_CHARS
# A CJK run, or a word: letters/digits/underscores that are not CJK.
_TOKEN = re.compile(rf"([{_CJK}]+)|([^\W{_CJK}]+)")
# Pieces of an ASCII identifier part: "HTTPResponse" -> HTTP, Response; "utf8" -> utf, 8.
_HUMP = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


class LexicalIndexCorrupt(MusubiError):
    """A saved lexical index is missing, torn or was built with another tokenizer: rebuild it from the chunks."""

    code = "index_corrupt"
    http_status = 503


@functools.cache
def _stop_words() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


@functools.cache
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return str(_stemmer().stemWord(word))


def _word_pieces(word: str) -> list[str]:
    """Lowercased pieces of one identifier-like word (underscore and camelCase split; digits apart)."""
    pieces: list[str] = []
    for part in word.split("_"):
        if not part:
            continue
        if part.isascii():
            pieces.extend(p.lower() for p in _HUMP.findall(part))
        else:
            pieces.append(part.lower())
    return pieces


def code_tokens(text: str) -> list[str]:
    """The BM25 terms of ``text`` in order (see the module docstring for the rules)."""
    stop = _stop_words()
    out: list[str] = []
    # NFKC: full-width ASCII and half-width katakana (common in Japanese text) meet their usual forms.
    for cjk, word in _TOKEN.findall(unicodedata.normalize("NFKC", text)):
        if cjk:
            if len(cjk) == 1:
                out.append(cjk)
            else:
                out.extend(cjk[i:i + 2] for i in range(len(cjk) - 1))
            continue
        if len(word) > MAX_WORD:
            continue
        pieces = _word_pieces(word)
        kept = 0
        for p in pieces:
            if p in stop or (len(p) == 1 and not p.isdigit()):
                continue
            out.append(_stem(p) if not p.isdigit() else p)
            kept += 1
        if len(pieces) > 1 and kept:
            out.append("".join(pieces))
    return out


class TokenCache:
    """Each indexed text's term counts, by a digest of the text, so a rebuild tokenises only new texts.

    Term ids are this cache's own (``terms``); a build keeps only the entries its texts use, so
    deleted chunks do not pile up.  Not thread-safe: one builder at a time (the ``lex`` helper).
    """

    def __init__(self) -> None:
        self.term_ids: dict[str, int] = {}
        self.terms: list[str] = []
        # digest -> (term ids, counts as float32, document length in tokens)
        self.docs: dict[bytes, tuple[np.ndarray, np.ndarray, int]] = {}
        self.tokenised = 0  # texts tokenised by the last build (the others came from the cache)

    def counts(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """The term counts of each text, tokenising only texts not seen by the previous build."""
        old = self.docs
        new: dict[bytes, tuple[np.ndarray, np.ndarray, int]] = {}
        out = []
        self.tokenised = 0
        for text in texts:
            key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            got = new.get(key) or old.get(key)
            if got is None:
                got = self.term_counts(text)
                self.tokenised += 1
            new[key] = got
            out.append(got)
        self.docs = new
        return out

    def add(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """Like :meth:`counts` for a few new texts of an incremental update: nothing is dropped from the cache."""
        out = []
        self.tokenised = 0
        for text in texts:
            key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            got = self.docs.get(key)
            if got is None:
                got = self.docs[key] = self.term_counts(text)
                self.tokenised += 1
            out.append(got)
        return out

    def term_counts(self, text: str) -> tuple[np.ndarray, np.ndarray, int]:
        """(term ids, counts as float32, length in tokens) of one text; new terms join the vocabulary."""
        import numpy as np

        tokens = code_tokens(text)
        ids: dict[int, int] = {}
        for t in tokens:
            tid = self.term_ids.get(t)
            if tid is None:
                tid = self.term_ids[t] = len(self.terms)
                self.terms.append(t)
            ids[tid] = ids.get(tid, 0) + 1
        return (np.fromiter(ids.keys(), dtype=np.int64, count=len(ids)),
                np.fromiter(ids.values(), dtype=np.float32, count=len(ids)), len(tokens))

    def save(self, path: str | Path) -> None:
        """Write the cache to ``path`` (new file, fsync, rename).  It is only a cache: any version is valid."""
        import numpy as np

        final = Path(path)
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        docs = list(self.docs.items())
        vocab = "\n".join(self.terms).encode("utf-8", "surrogatepass")
        with open(tmp, "wb") as f:
            np.savez(f, version=np.asarray([TOKENIZER_VERSION, len(self.terms)], dtype=np.int64),
                     keys=np.frombuffer(b"".join(k for k, _ in docs), dtype=np.uint8).reshape(len(docs), 16),
                     sizes=np.asarray([len(v[0]) for _, v in docs], dtype=np.int64),
                     lens=np.asarray([v[2] for _, v in docs], dtype=np.int64),
                     terms=np.concatenate([v[0] for _, v in docs] or [np.zeros(0, np.int64)]).astype(np.int32),
                     counts=np.concatenate([v[1] for _, v in docs] or [np.zeros(0, np.float32)]),
                     vocab=np.frombuffer(vocab, dtype=np.uint8))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)

    @classmethod
    def load(cls, path: str | Path) -> TokenCache:
        """The cache ``save`` wrote; an empty cache when the file is missing, torn or of another tokenizer."""
        import zipfile

        import numpy as np

        cache = cls()
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                version, n_terms = (int(v) for v in z["version"])
                keys, sizes, lens = z["keys"], z["sizes"], z["lens"]
                terms, counts = z["terms"].astype(np.int64), z["counts"]
                vocab = bytes(z["vocab"]).decode("utf-8", "surrogatepass").split("\n") if n_terms else []
        except (OSError, ValueError, KeyError, UnicodeDecodeError, TypeError, EOFError, zipfile.BadZipFile):
            return cache
        ok = (version == TOKENIZER_VERSION and len(vocab) == n_terms and keys.ndim == 2 and keys.shape[1] == 16
              and len(keys) == len(sizes) == len(lens) and int(sizes.sum()) == len(terms) == len(counts)
              and (not len(terms) or (int(terms.min()) >= 0 and int(terms.max()) < n_terms)))
        if not ok:
            return cache
        cache.terms = vocab
        cache.term_ids = {t: i for i, t in enumerate(vocab)}
        if not len(keys):
            return cache
        bounds = np.cumsum(sizes)[:-1]
        cache.docs = {bytes(k): (t, c, int(n)) for k, t, c, n in
                      zip(keys, np.split(terms, bounds), np.split(counts, bounds), lens.tolist(), strict=True)}
        return cache


def _bm25_from_counts(docs: list[tuple[np.ndarray, np.ndarray, int]], cache: TokenCache) -> Any:
    """A ``bm25s.BM25`` (defaults: Lucene, k1 1.5, b 0.75) over documents given as term counts.

    What ``BM25.build_index_from_ids`` computes per document in Python, done over all documents at
    once with the same formulas (bm25s.scoring's idf and tfc functions), float64 then float32 as there.
    """
    import bm25s
    import numpy as np
    from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer

    bm25 = bm25s.BM25()
    n_docs = len(docs)
    lens = np.asarray([d[2] for d in docs])
    avg_len = lens.mean()
    sizes = np.asarray([len(d[0]) for d in docs], dtype=np.int64)
    terms = np.concatenate([d[0] for d in docs]) if n_docs else np.zeros(0, dtype=np.int64)
    tf = np.concatenate([d[1] for d in docs]) if n_docs else np.zeros(0, dtype=np.float32)
    doc_idx = np.repeat(np.arange(n_docs, dtype=np.int64), sizes)
    df_all = np.bincount(terms, minlength=len(cache.terms))
    present = np.flatnonzero(df_all)  # the index's vocabulary: terms some document has
    remap = np.full(len(cache.terms), -1, dtype=np.int64)
    remap[present] = np.arange(len(present))
    cols = remap[terms]
    idf_fn = _select_idf_scorer(bm25.idf_method)
    df = df_all[present]
    uniq, inv = np.unique(df, return_inverse=True)
    idf = np.asarray([idf_fn(int(v), N=n_docs) for v in uniq], dtype=np.float64).astype(bm25.dtype)[inv]
    tfc = _select_tfc_scorer(bm25.method)(tf_array=tf, l_d=lens[doc_idx].astype(np.float64), l_avg=avg_len,
                                          k1=bm25.k1, b=bm25.b, delta=bm25.delta)
    scores_flat = (idf[cols] * tfc).astype(bm25.dtype)
    data, indices, indptr = bm25._np_csc(data=scores_flat, rows=doc_idx.astype(bm25.int_dtype),
                                         cols=cols.astype(bm25.int_dtype), shape=(n_docs, len(present)))
    bm25.scores = {"data": data.astype(bm25.dtype), "indices": indices, "indptr": indptr, "num_docs": n_docs}
    vocab = {cache.terms[int(t)]: i for i, t in enumerate(present)}
    vocab.setdefault("", len(present))
    bm25.vocab_dict = vocab
    bm25.nonoccurrence_array = None
    bm25.unique_token_ids_set = set(vocab.values())
    return bm25


class LexicalIndex:
    """A BM25 index over chunk texts, keyed by int64 chunk ids.  Build it whole; it is not updated in place."""

    def __init__(self, ids: np.ndarray, bm25: Any | None) -> None:
        self._ids = ids
        self._bm25 = bm25

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    @classmethod
    def build(cls, ids: Sequence[int], texts: Sequence[str], cache: TokenCache | None = None) -> LexicalIndex:
        """Index ``texts[i]`` under ``ids[i]`` (ids unique; an empty index is allowed and finds nothing).

        Pass the same ``cache`` to successive builds so unchanged texts are not tokenised again.
        """
        import numpy as np

        if len(ids) != len(texts):
            raise ValueError(f"LexicalIndex.build: {len(ids)} ids for {len(texts)} texts; pass one id per text")
        id_arr = np.asarray(list(ids), dtype=np.int64)
        if len(np.unique(id_arr)) != len(id_arr):
            raise ValueError("LexicalIndex.build: chunk ids repeat; pass each chunk once")
        if not len(id_arr):
            return cls(id_arr, None)
        cache = cache if cache is not None else TokenCache()
        return cls(id_arr, _bm25_from_counts(cache.counts(texts), cache))

    @classmethod
    def from_counts(cls, ids: Sequence[int], docs: Sequence[tuple[np.ndarray, np.ndarray, int]],
                    cache: TokenCache) -> LexicalIndex:
        """The index of documents already counted (term ids of ``cache``): what :meth:`build` makes of their texts.

        An incremental update keeps each chunk's counts and calls this; the scores equal a build from the texts.
        """
        import numpy as np

        id_arr = np.asarray(list(ids), dtype=np.int64)
        if len(id_arr) != len(docs):
            raise ValueError(f"LexicalIndex.from_counts: {len(id_arr)} ids for {len(docs)} documents")
        return cls(id_arr, _bm25_from_counts(list(docs), cache) if len(id_arr) else None)

    def search(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        """The ``k`` best ``(chunk id, score)`` pairs, best first (ties by id); only chunks sharing a term."""
        import numpy as np

        if self._bm25 is None or k <= 0:
            return []
        vocab = self._bm25.vocab_dict
        term_ids = list(dict.fromkeys(vocab[t] for t in code_tokens(query) if t in vocab and t))
        if not term_ids:
            return []
        scores = np.asarray(self._bm25.get_scores_from_ids(term_ids), dtype=np.float64)
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        order = sorted(hits.tolist(), key=lambda i: (-scores[i], int(self._ids[i])))
        return [(int(self._ids[i]), float(scores[i])) for i in order]

    def save(self, directory: str | Path) -> None:
        """Write the index to ``directory`` (replaced whole: a new folder is written, fsynced and renamed in)."""
        import numpy as np

        final = Path(directory)
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        np.save(tmp / "ids.npy", self._ids)
        if self._bm25 is not None:
            self._bm25.save(str(tmp / "bm25"), show_progress=False)
        manifest = {"format": FORMAT, "tokenizer": TOKENIZER_VERSION, "count": len(self)}
        (tmp / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        for f in sorted(tmp.rglob("*")):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @classmethod
    def load(cls, directory: str | Path) -> LexicalIndex:
        """Read an index ``save`` wrote; raises ``LexicalIndexCorrupt`` (with ``reason``) for anything else."""
        import numpy as np

        d = Path(directory)
        try:
            manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LexicalIndexCorrupt(
                f"lexical index {d}: no readable manifest ({exc}); rebuild it from the chunks",
                reason="missing_manifest") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
                or manifest.get("tokenizer") != TOKENIZER_VERSION:
            raise LexicalIndexCorrupt(
                f"lexical index {d}: written by another version ({manifest!r}); rebuild it from the chunks",
                reason="format")
        try:
            ids = np.load(d / "ids.npy", allow_pickle=False)
            bm25 = None
            if int(manifest.get("count", -1)) > 0:
                import bm25s

                bm25 = bm25s.BM25.load(str(d / "bm25"), show_progress=False)
        except (OSError, ValueError, KeyError) as exc:
            raise LexicalIndexCorrupt(
                f"lexical index {d}: unreadable ({exc}); rebuild it from the chunks", reason="unreadable") from exc
        if ids.dtype != np.int64 or ids.ndim != 1 or len(ids) != manifest.get("count") \
                or (bm25 is not None and int(bm25.scores["num_docs"]) != len(ids)):
            raise LexicalIndexCorrupt(
                f"lexical index {d}: its parts disagree on the chunk count; rebuild it from the chunks",
                reason="count_mismatch")
        return cls(ids, bm25)
