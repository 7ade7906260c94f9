"""Fusing the dense (FAISS) and lexical (BM25) result lists into one ranking (light: no numpy).

``zsum`` (the shipped method): each list's scores are z-normalised within that list, and a chunk's
fused score is ``w_dense * z_dense + w_lexical * z_lexical``.  A chunk missing from one list gets
that list's lowest z (it scored no better than the worst result the list returned), so results
found by only one side still rank.  A list with one result, or all scores equal, has no spread to
normalise by: its z-scores are all 0 (it neither helps nor hurts any candidate), never a division by
zero.  Equal fused scores are ordered by the better dense rank, then the better lexical rank, then
the smaller id, so the order is deterministic.

``rrf``: reciprocal-rank fusion, ``w / (RRF_K + rank)`` summed over the lists (rank 1-based).

The default weights were chosen on the tuning split of the standard-library evaluation
(benchmarks/bench_retrieval_quality.py, docs/search.md "Retrieval quality").

``weights_for(query)``: the weights for one query.  all-MiniLM-L6-v2 was trained on English; a
query written in Japanese, Chinese or Korean gets little from it (its CJK word pieces carry almost
no meaning for the model), while BM25 matches CJK text by character bigrams and the query's ASCII
words exactly.  So the dense weight shrinks with the share of CJK characters among the query's
letters and digits: ``w_dense = W_DENSE * (1 - share)``, ``w_lexical = 1 - w_dense``.  An English
query (share 0) keeps the measured weights exactly; an all-Japanese one is ranked by BM25 alone.
The rule was set from what the model is, not tuned on queries; docs/search.md reports its effect.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal

from core.rag.lexical import CJK_CHARS

#: Shipped weights (the tuning split's best MRR on a 0.05 grid; 0.55-0.7 all within 0.004 of it).
W_DENSE = 0.6
W_LEXICAL = 0.4
#: How many candidates each side should hand to ``fuse`` (z-scores are computed over these).
CANDIDATES = 100
RRF_K = 60

Method = Literal["zsum", "rrf"]
_CJK_CHAR = re.compile(f"[{CJK_CHARS}]")
_WORD_CHAR = re.compile(r"[^\W_]")


def cjk_share(query: str) -> float:
    """The share of CJK characters among the letters and digits of ``query`` (0 when it has none)."""
    letters = len(_WORD_CHAR.findall(query))
    return len(_CJK_CHAR.findall(query)) / letters if letters else 0.0


def weights_for(query: str) -> tuple[float, float]:
    """(w_dense, w_lexical) for ``query``: the shipped weights, the dense one scaled down by its CJK share."""
    share = cjk_share(query)
    if not share:
        return W_DENSE, W_LEXICAL
    w_dense = W_DENSE * (1.0 - share)
    return w_dense, 1.0 - w_dense


def _zscores(results: Sequence[tuple[int, float]]) -> dict[int, float]:
    """id -> z-score within ``results`` (first occurrence of an id wins); all 0 when there is no spread."""
    scores: dict[int, float] = {}
    for cid, score in results:
        scores.setdefault(cid, float(score))
    if not scores:
        return {}
    n = len(scores)
    mean = math.fsum(scores.values()) / n
    std = math.sqrt(math.fsum((s - mean) ** 2 for s in scores.values()) / n)
    if not std > 1e-12 or not math.isfinite(std):
        return dict.fromkeys(scores, 0.0)
    return {cid: (s - mean) / std for cid, s in scores.items()}


def _ranks(results: Sequence[tuple[int, float]]) -> dict[int, int]:
    ranks: dict[int, int] = {}
    for cid, _ in results:
        ranks.setdefault(cid, len(ranks) + 1)
    return ranks


def fuse(dense: Sequence[tuple[int, float]], lexical: Sequence[tuple[int, float]], *,
         w_dense: float = W_DENSE, w_lexical: float = W_LEXICAL,
         method: Method = "zsum") -> list[tuple[int, float]]:
    """One ranking of every id in ``dense`` or ``lexical`` (each best first), as ``(id, fused score)`` best first."""
    dense_rank, lex_rank = _ranks(dense), _ranks(lexical)
    ids = list(dict.fromkeys([*dense_rank, *lex_rank]))
    if method == "zsum":
        zd, zl = _zscores(dense), _zscores(lexical)
        floor_d = min(zd.values(), default=0.0)
        floor_l = min(zl.values(), default=0.0)
        fused = {cid: w_dense * zd.get(cid, floor_d) + w_lexical * zl.get(cid, floor_l) for cid in ids}
    elif method == "rrf":
        fused = {cid: (w_dense / (RRF_K + dense_rank[cid]) if cid in dense_rank else 0.0)
                 + (w_lexical / (RRF_K + lex_rank[cid]) if cid in lex_rank else 0.0) for cid in ids}
    else:
        raise ValueError(f"fuse: unknown method {method!r}; use 'zsum' or 'rrf'")
    missing = len(ids) + 1
    ids.sort(key=lambda c: (-fused[c], dense_rank.get(c, missing), lex_rank.get(c, missing), c))
    return [(cid, fused[cid]) for cid in ids]
