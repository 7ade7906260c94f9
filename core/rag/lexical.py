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
"""

from __future__ import annotations

import functools
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

_CJK = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\uac00-\ud7af"
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


class LexicalIndex:
    """A BM25 index over chunk texts, keyed by int64 chunk ids.  Build it whole; it is not updated in place."""

    def __init__(self, ids: np.ndarray, bm25: Any | None) -> None:
        self._ids = ids
        self._bm25 = bm25

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    @classmethod
    def build(cls, ids: Sequence[int], texts: Sequence[str]) -> LexicalIndex:
        """Index ``texts[i]`` under ``ids[i]`` (ids unique; an empty index is allowed and finds nothing)."""
        import numpy as np

        if len(ids) != len(texts):
            raise ValueError(f"LexicalIndex.build: {len(ids)} ids for {len(texts)} texts; pass one id per text")
        id_arr = np.asarray(list(ids), dtype=np.int64)
        if len(np.unique(id_arr)) != len(id_arr):
            raise ValueError("LexicalIndex.build: chunk ids repeat; pass each chunk once")
        if not len(id_arr):
            return cls(id_arr, None)
        import bm25s

        bm25 = bm25s.BM25()
        bm25.index([code_tokens(t) for t in texts], show_progress=False)
        return cls(id_arr, bm25)

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
